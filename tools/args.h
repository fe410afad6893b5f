// A small command-line parser for the `kiln` subcommands: `--name value`, `--name=value` and
// flags. Mistakes throw ValueError naming the option, which main() prints.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kiln/errors.h"

namespace kiln::tools {

class Args {
 public:
  explicit Args(std::vector<std::string> args) : args_(std::move(args)), used_(args_.size(), false) {}

  // The value of the last --name (all of them with values()); empty when absent.
  std::optional<std::string> value(const std::string& name) {
    auto all = values(name);
    if (all.empty()) return std::nullopt;
    return all.back();
  }
  std::vector<std::string> values(const std::string& name) {
    std::vector<std::string> out;
    std::string eq = name + "=";
    for (size_t i = 0; i < args_.size(); ++i) {
      if (args_[i] == name) {
        if (i + 1 >= args_.size()) fail<ValueError>("option ", name, " needs a value");
        used_[i] = used_[i + 1] = true;
        out.push_back(args_[++i]);
      } else if (args_[i].rfind(eq, 0) == 0) {
        used_[i] = true;
        out.push_back(args_[i].substr(eq.size()));
      }
    }
    return out;
  }
  bool flag(const std::string& name) {
    bool found = false;
    for (size_t i = 0; i < args_.size(); ++i) {
      if (args_[i] == name) used_[i] = found = true;
    }
    return found;
  }
  double number(const std::string& name, double fallback) {
    auto v = value(name);
    if (!v) return fallback;
    try {
      size_t end = 0;
      double d = std::stod(*v, &end);
      if (end == v->size()) return d;
    } catch (const std::exception&) {
    }
    fail<ValueError>("option ", name, " needs a number, got '", *v, "'");
  }
  // Throws for anything not consumed by the calls above.
  void finish() const {
    for (size_t i = 0; i < args_.size(); ++i)
      if (!used_[i]) fail<ValueError>("unknown option '", args_[i], "' (see --help)");
  }

 private:
  std::vector<std::string> args_;
  std::vector<bool> used_;
};

}  // namespace kiln::tools
