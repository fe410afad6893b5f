// `kiln chat`: an interactive conversation. Each turn renders the whole history with the
// model's chat template; the KV cache keeps what the model has already read, so only the new
// tokens are processed.
#include <unistd.h>

#include <iostream>

#include "kiln/text/chat_template.h"
#include "tools/commands.h"
#include "tools/llm_common.h"

namespace kiln::tools {

int chat(const std::vector<std::string>& argv) {
  Args args(argv);
  if (args.flag("--help")) {
    std::cout << "usage: kiln chat [--model PATH] [--system TEXT] [options]\n"
                 "  type a message and press enter; /reset forgets the conversation, /quit ends it\n"
              << kSamplingHelp << "  --stats                 print the statistics line after each reply\n";
    return 0;
  }
  std::string path = model_path(args, nullptr);
  auto system = args.value("--system");
  bool show_stats = args.flag("--stats");
  auto dtype = device_and_dtype(args);
  auto options = generation_options(args);
  if (!args.value("--max-tokens")) options.max_tokens = 1024;
  args.finish();

  text::LanguageModel lm = text::load_language_model(path, dtype);
  if (lm.chat_template.empty()) fail<ValueError>("the model '", path, "' has no chat template");
  text::ChatTemplate tmpl(lm.chat_template);
  bool tty = isatty(STDIN_FILENO);
  std::vector<text::ChatMessage> messages;
  if (system) messages.push_back({"system", *system});
  models::KVCache cache = lm.model->make_cache();
  std::vector<int32_t> cached;  // the tokens whose keys and values the cache holds
  std::string line;
  for (;;) {
    if (tty) std::cout << ">>> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      messages.resize(system ? 1 : 0);
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({"user", line});
    std::vector<int32_t> ids =
        lm.tokenizer->encode(tmpl.apply(messages, {true, lm.bos_token, lm.eos_token}), /*add_special=*/false);
    if (lm.tokenizer->add_bos() && lm.tokenizer->bos_id() >= 0 && (ids.empty() || ids[0] != lm.tokenizer->bos_id())) {
      ids.insert(ids.begin(), lm.tokenizer->bos_id());
    }
    // Reuse the cached prefix (at least one token is left to run).
    size_t common = 0;
    while (common < cached.size() && common + 1 < ids.size() && cached[common] == ids[common]) ++common;
    cache.trim(static_cast<int64_t>(common));
    std::vector<int32_t> fresh(ids.begin() + static_cast<std::ptrdiff_t>(common), ids.end());
    std::string reply;
    std::vector<int32_t> generated;
    options.sampling.seed += 1;  // a new draw each turn, still reproducible
    auto stats = text::generate(
        lm, fresh, options,
        [&](const std::string& piece) {
          reply += piece;
          std::cout << piece << std::flush;
          return true;
        },
        &cache, &generated);
    std::cout << "\n";
    if (show_stats) std::cerr << stats_line(stats, lm.load_seconds) << "\n";
    cached = ids;
    if (!generated.empty()) cached.insert(cached.end(), generated.begin(), generated.end() - 1);
    messages.push_back({"assistant", reply});
  }
  return 0;
}

}  // namespace kiln::tools
