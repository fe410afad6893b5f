// A reader for safetensors files (Hugging Face's checkpoint format): an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte range, then the packed
// tensor data. The file is memory-mapped; tensors are copied out on request.
//
// The header is checked as the reference implementation checks it: a header length past the end
// of the file, malformed JSON, an unknown dtype, byte ranges outside the data section, gaps,
// overlaps, or a range whose size disagrees with dtype and shape throw ValueError with a message
// that starts "[safetensors] '<path>': ".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/array.h"
#include "kiln/io/mapped_file.h"

namespace kiln::io {

struct SafeTensorInfo {
  std::string name;
  std::string dtype_name;     // as stored: "F32", "BF16", "F8_E4M3", ...
  std::optional<Dtype> dtype;  // the kiln dtype; absent for stored types kiln has none of (F8_*)
  Shape shape;
  uint64_t begin = 0;  // byte range within the data section
  uint64_t end = 0;
};

class SafeTensorsFile {
 public:
  // Maps and parses `path`. Throws FileError when it cannot be opened and ValueError when it is
  // not a valid safetensors file.
  static SafeTensorsFile open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  // File offset of the data section (8 + header length).
  uint64_t data_offset() const { return data_offset_; }

  // The tensors, in order of their data offsets.
  const std::vector<SafeTensorInfo>& tensors() const { return tensors_; }
  bool has_tensor(const std::string& name) const { return index_.count(name) != 0; }
  const SafeTensorInfo& tensor(const std::string& name) const;  // ValueError when absent
  // The "__metadata__" string map (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // Copies a tensor out of the mapping as a row-major array of its stored dtype, or cast to
  // `target`. F8_* tensors throw TypeError (kiln has no 8-bit float type).
  array load_tensor(const std::string& name, std::optional<Dtype> target = std::nullopt) const;
  std::map<std::string, array> load_all(std::optional<Dtype> target = std::nullopt) const;

 private:
  SafeTensorsFile() = default;

  std::shared_ptr<MappedFile> file_;
  uint64_t data_offset_ = 0;
  std::vector<SafeTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Every tensor of one file.
std::map<std::string, array> load_safetensors(const std::string& path, std::optional<Dtype> target = std::nullopt);

// A sharded checkpoint: `path` is a model.safetensors.index.json (its "weight_map" maps each
// tensor name to a file beside it) or a directory holding one; a directory with only a
// model.safetensors loads that. Each shard is opened once; only the names the index lists are
// loaded, and a name it maps to a shard that lacks it throws ValueError.
std::map<std::string, array> load_sharded(const std::string& path, std::optional<Dtype> target = std::nullopt);

}  // namespace kiln::io
