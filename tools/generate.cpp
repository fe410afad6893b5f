// `kiln generate`: one prompt in, text streamed out, then a line of statistics.
#include <iostream>
#include <iterator>

#include "kiln/text/chat_template.h"
#include "tools/commands.h"
#include "tools/llm_common.h"

namespace kiln::tools {

int generate(const std::vector<std::string>& argv) {
  Args args(argv);
  if (args.flag("--help")) {
    std::cout << "usage: kiln generate [--model PATH] --prompt TEXT [options]\n"
                 "  --model PATH            GGUF file or Hugging Face directory (default: SmolLM2-135M-Instruct)\n"
                 "  --prompt TEXT           the prompt; '-' reads it from standard input\n"
                 "  --system TEXT           a system message for the chat template\n"
                 "  --raw                   use the prompt as it is, without the chat template\n"
              << kSamplingHelp;
    return 0;
  }
  std::string path = model_path(args, nullptr);
  auto prompt = args.value("--prompt");
  auto system = args.value("--system");
  bool raw = args.flag("--raw");
  auto dtype = device_and_dtype(args);
  auto options = generation_options(args);
  args.finish();
  if (!prompt) fail<ValueError>("--prompt is required");
  if (*prompt == "-") prompt = std::string(std::istreambuf_iterator<char>(std::cin), {});

  text::LanguageModel lm = text::load_language_model(path, dtype);
  std::vector<int32_t> ids;
  if (!raw && !lm.chat_template.empty()) {
    std::vector<text::ChatMessage> messages;
    if (system) messages.push_back({"system", *system});
    messages.push_back({"user", *prompt});
    std::string rendered =
        text::ChatTemplate(lm.chat_template).apply(messages, {true, lm.bos_token, lm.eos_token});
    ids = lm.tokenizer->encode(rendered, /*add_special=*/false);
    // Templates that do not write BOS themselves rely on the tokenizer adding it.
    if (lm.tokenizer->add_bos() && lm.tokenizer->bos_id() >= 0 && (ids.empty() || ids[0] != lm.tokenizer->bos_id())) {
      ids.insert(ids.begin(), lm.tokenizer->bos_id());
    }
  } else {
    ids = lm.tokenizer->encode(*prompt, /*add_special=*/true);
  }
  auto stats = text::generate(lm, ids, options, [](const std::string& piece) {
    std::cout << piece << std::flush;
    return true;
  });
  std::cout << "\n";
  std::cerr << stats_line(stats, lm.load_seconds) << "\n";
  return 0;
}

}  // namespace kiln::tools
