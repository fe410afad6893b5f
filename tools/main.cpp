// `kiln`: the command-line program.
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "tools/commands.h"

namespace {

void usage() {
  std::cout << "usage: kiln <command> [options]\n\n"
               "commands:\n"
               "  info [--ops]   version, build options and devices; --ops lists every operation\n"
               "                 with the backends that implement it\n"
               "  demo [--size N] a short tour of lazy arrays on the default device\n"
               "  generate       generate text from a prompt with a Llama-family model\n"
               "  chat           an interactive chat with a Llama-family model\n"
               "  tokenize       text to token ids (or --decode ids to text) with a model's tokenizer\n"
               "  classify       ImageNet labels for photos with a pretrained network (EfficientNet-Lite0)\n"
               "Each command takes --help.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage();
    return argc < 2 ? 1 : 0;
  }
  std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (command == "info") return kiln::tools::info(args);
    if (command == "demo") return kiln::tools::demo(args);
    if (command == "generate") return kiln::tools::generate(args);
    if (command == "chat") return kiln::tools::chat(args);
    if (command == "tokenize") return kiln::tools::tokenize(args);
    if (command == "classify") return kiln::tools::classify(args);
    std::cerr << "kiln: unknown command '" << command << "'\n";
    usage();
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kiln " << command << ": " << e.what() << "\n";
    return 1;
  }
}
