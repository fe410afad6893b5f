// `kiln tokenize`: text on standard input -> token ids, or ids -> text with --decode, so that a
// tokenizer can be checked against any other implementation.
#include <iostream>
#include <iterator>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/io/gguf.h"
#include "kiln/text/tokenizer.h"
#include "tools/commands.h"
#include "tools/llm_common.h"

namespace kiln::tools {

namespace {

text::Tokenizer load_tokenizer(const std::string& path) {
  if (io::is_gguf_file(path)) return text::Tokenizer::from_gguf(io::GGUFFile::open(path));
  std::filesystem::path p(path);
  if (std::filesystem::is_directory(p)) p /= "tokenizer.json";
  return text::Tokenizer::from_tokenizer_json(p.string());
}

}  // namespace

int tokenize(const std::vector<std::string>& argv) {
  Args args(argv);
  if (args.flag("--help")) {
    std::cout << "usage: kiln tokenize [--model PATH] [--decode] [--add-special] < input\n"
                 "  reads text and prints its token ids, space-separated, on one line;\n"
                 "  --decode reads ids (whitespace-separated) and writes their text\n"
                 "  --add-special adds BOS/EOS as the model asks\n";
    return 0;
  }
  std::string path = model_path(args, nullptr);
  bool decode = args.flag("--decode");
  bool special = args.flag("--add-special");
  args.finish();
  text::Tokenizer tok = load_tokenizer(path);
  std::string input(std::istreambuf_iterator<char>(std::cin), {});
  if (decode) {
    std::istringstream ss(input);
    std::vector<int32_t> ids;
    std::string word;
    while (ss >> word) {
      size_t end = 0;
      long long v = 0;
      try {
        v = std::stoll(word, &end);
      } catch (const std::exception&) {
        end = 0;
      }
      if (end != word.size()) fail<ValueError>("--decode expects integer ids, got '", word, "'");
      if (v < 0 || v >= tok.vocab_size()) fail<ValueError>("token id ", v, " is outside the vocabulary (", tok.vocab_size(), ")");
      ids.push_back(static_cast<int32_t>(v));
    }
    std::cout << tok.decode(ids);
    return 0;
  }
  auto ids = tok.encode(input, special);
  for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
  std::cout << "\n";
  return 0;
}

}  // namespace kiln::tools
