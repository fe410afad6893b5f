// Loading tensors from model files (kiln/io): safetensors and GGUF.
#include <nanobind/stl/map.h>

#include <string>

#include "common.h"
#include "kiln/io/gguf.h"
#include "kiln/io/safetensors.h"

namespace kiln_py {

void init_io(nb::module_& m) {
  m.def("load_safetensors", &kiln::io::load_safetensors, "path"_a, "target"_a = nb::none(),
        "Every tensor of a safetensors file, by name (cast to target when given).");
  m.def(
      "load_gguf",
      [](const std::string& path, std::optional<kiln::Dtype> target) {
        return kiln::io::GGUFFile::open(path).load_all(target);
      },
      "path"_a, "target"_a = nb::none(),
      "Every tensor of a GGUF file, by name, dequantized (cast to target when given).");
  m.def(
      "load",
      [](const std::string& path, std::optional<kiln::Dtype> target) {
        auto ends = [&](const std::string& ext) {
          return path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0;
        };
        if (ends(".gguf")) return kiln::io::GGUFFile::open(path).load_all(target);
        if (ends(".safetensors")) return kiln::io::load_safetensors(path, target);
        return kiln::io::load_sharded(path, target);  // an index .json or a folder of shards
      },
      "path"_a, "target"_a = nb::none(),
      "The tensors of a .gguf or .safetensors file, a model.safetensors.index.json, or a folder holding one.");
}

}  // namespace kiln_py
