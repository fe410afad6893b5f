// A reader for GGUF files (versions 2 and 3), the format of llama.cpp / ggml models: a header,
// typed metadata key/values, tensor descriptions, and an aligned data section. The file is
// memory-mapped; tensors are copied out (and dequantized) on request.
//
// Every read is bounds-checked: a truncated or corrupt file throws ValueError with a message
// that starts "[gguf]" and names the file, the field and the offending value.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/array.h"
#include "kiln/io/dequantize.h"
#include "kiln/io/mapped_file.h"

namespace kiln::io {

// Whether `path` is a regular file that starts with GGUF's magic bytes.
bool is_gguf_file(const std::string& path);

// Metadata value types, numbered as in the file.
enum class GGUFType : uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  bool_ = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};
const char* gguf_type_name(GGUFType t);

// One metadata value. Scalars: unsigned integers and bools in `u`, signed integers in `i`,
// floats in `f`, strings in `s`. Arrays: `elem_type` and `count`, with the elements in `raw`
// (numbers and bools, little-endian as stored), `strings`, or `items` (nested arrays); `item(k)`
// gives any element as a value.
struct GGUFValue {
  GGUFType type = GGUFType::uint8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string s;
  GGUFType elem_type = GGUFType::uint8;
  uint64_t count = 0;
  std::vector<uint8_t> raw;
  std::vector<std::string> strings;
  std::vector<GGUFValue> items;

  bool is_integer() const;
  bool is_float() const { return type == GGUFType::float32 || type == GGUFType::float64; }
  GGUFValue item(uint64_t k) const;
};

struct GGUFTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;  // as stored: dims[0] varies fastest
  GGMLType type = GGMLType::F32;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t nbytes = 0;
  int64_t size = 0;  // elements

  // The kiln (row-major) shape: the stored dims reversed.
  Shape shape() const;
};

class GGUFFile {
 public:
  // Maps and parses `path`. Throws FileError when it cannot be opened and ValueError when it is
  // not a valid GGUF v2/v3 file.
  static GGUFFile open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // File offset of the tensor data section.
  uint64_t data_offset() const { return data_offset_; }

  // Metadata, in file order.
  const std::vector<std::string>& keys() const { return keys_; }
  bool has_key(const std::string& key) const { return metadata_.count(key) != 0; }
  // Throws ValueError for a missing key.
  const GGUFValue& get(const std::string& key) const;

  // Typed getters. A missing key throws ValueError (or gives `fallback` where one is passed);
  // a value of another type throws TypeError. Integer getters take any integer type (and throw
  // ValueError for a uint64 above INT64_MAX); float getters take floats and integers.
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_float(const std::string& key) const;
  double get_float(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;

  const std::vector<GGUFTensorInfo>& tensors() const { return tensors_; }
  bool has_tensor(const std::string& name) const { return tensor_index_.count(name) != 0; }
  const GGUFTensorInfo& tensor(const std::string& name) const;  // ValueError when absent

  // The natural kiln dtype of a tensor: float32/float16/bfloat16/float64 and the integer types
  // as stored; float32 for quantized types.
  Dtype natural_dtype(const GGUFTensorInfo& t) const;

  // Copies a tensor out of the file as a row-major array (stored dims reversed). F32, F16 and
  // BF16 load directly; Q8_0, Q4_0, Q4_1, Q4_K and Q6_K dequantize. `target` picks the dtype
  // (float16, bfloat16, float32 or float64 for float and quantized tensors; any dtype through a
  // cast for the integer and F64 types); by default the natural dtype.
  array load_tensor(const std::string& name, std::optional<Dtype> target = std::nullopt) const;
  std::map<std::string, array> load_all(std::optional<Dtype> target = std::nullopt) const;

 private:
  GGUFFile() = default;

  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, GGUFValue> metadata_;
  std::vector<GGUFTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace kiln::io
