// The subcommands of the `kiln` program.
#pragma once

#include <string>
#include <vector>

namespace kiln::tools {

int info(const std::vector<std::string>& args);
int demo(const std::vector<std::string>& args);
int generate(const std::vector<std::string>& args);
int chat(const std::vector<std::string>& args);
int tokenize(const std::vector<std::string>& args);
int classify(const std::vector<std::string>& args);

}  // namespace kiln::tools
