#include "kiln/io/gguf.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <filesystem>
#include <functional>
#include <limits>

#include "kiln/device.h"
#include "kiln/memory.h"
#include "kiln/ops_elementwise.h"

namespace kiln::io {

namespace {

constexpr int kMaxDims = 4;          // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;    // arrays of arrays; real files use none
constexpr uint64_t kDefaultAlignment = 32;

// Bytes of one scalar of type t in the file; 0 for strings and arrays.
size_t scalar_size(GGUFType t) {
  switch (t) {
    case GGUFType::uint8:
    case GGUFType::int8:
    case GGUFType::bool_:
      return 1;
    case GGUFType::uint16:
    case GGUFType::int16:
      return 2;
    case GGUFType::uint32:
    case GGUFType::int32:
    case GGUFType::float32:
      return 4;
    case GGUFType::uint64:
    case GGUFType::int64:
    case GGUFType::float64:
      return 8;
    default:
      return 0;
  }
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GGUFType::float64); }

// The fewest bytes one element of type t takes in the file: caps element counts so that a
// corrupt count fails on the count, before any allocation.
uint64_t min_size(GGUFType t) {
  if (t == GGUFType::string) return 8;  // the length
  if (t == GGUFType::array) return 12;  // element type and count
  return scalar_size(t);
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

GGUFValue scalar_from(GGUFType t, const uint8_t* p) {
  GGUFValue v;
  v.type = t;
  switch (t) {
    case GGUFType::uint8: v.u = load<uint8_t>(p); break;
    case GGUFType::bool_: v.u = load<uint8_t>(p); break;
    case GGUFType::int8: v.i = load<int8_t>(p); break;
    case GGUFType::uint16: v.u = load<uint16_t>(p); break;
    case GGUFType::int16: v.i = load<int16_t>(p); break;
    case GGUFType::uint32: v.u = load<uint32_t>(p); break;
    case GGUFType::int32: v.i = load<int32_t>(p); break;
    case GGUFType::uint64: v.u = load<uint64_t>(p); break;
    case GGUFType::int64: v.i = load<int64_t>(p); break;
    case GGUFType::float32: v.f = load<float>(p); break;
    case GGUFType::float64: v.f = load<double>(p); break;
    default: break;
  }
  return v;
}

// Bounds-checked reads from the mapping; every failure names the file, the field and the value.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  template <class... Parts>
  [[noreturn]] void bad(const Parts&... parts) const {
    fail<ValueError>("[gguf] '", path_, "': ", parts...);
  }

  size_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  const uint8_t* take(uint64_t n, const std::string& field) {
    if (n > left()) {
      bad("truncated: ", field, " at offset ", pos_, " needs ", n, " bytes but only ", left(), " remain");
    }
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }

  template <class T>
  T read(const std::string& field) {
    return load<T>(take(sizeof(T), field));
  }

  std::string read_string(const std::string& field) {
    uint64_t n = read<uint64_t>(field + " length");
    if (n > left()) {
      bad(field, " has length ", n, " at offset ", pos_ - 8, ", past the end of the file (", left(), " bytes remain)");
    }
    const uint8_t* p = take(n, field);
    return std::string(reinterpret_cast<const char*>(p), n);
  }

  GGUFValue read_value(uint32_t type, const std::string& field, int depth) {
    if (!valid_type(type)) bad("unknown value type ", type, " of ", field);
    auto t = static_cast<GGUFType>(type);
    if (t == GGUFType::string) {
      GGUFValue v;
      v.type = t;
      v.s = read_string(field);
      return v;
    }
    if (t != GGUFType::array) return scalar_from(t, take(scalar_size(t), field));

    if (depth >= kMaxArrayDepth) bad(field, " nests arrays deeper than ", kMaxArrayDepth);
    uint32_t et = read<uint32_t>(field + " element type");
    if (!valid_type(et)) bad("unknown array element type ", et, " of ", field);
    GGUFValue v;
    v.type = t;
    v.elem_type = static_cast<GGUFType>(et);
    v.count = read<uint64_t>(field + " element count");
    if (v.count > left() / min_size(v.elem_type)) {
      bad(field, " claims ", v.count, " elements of ", gguf_type_name(v.elem_type), " but only ", left(),
          " bytes remain");
    }
    if (v.elem_type == GGUFType::string) {
      v.strings.reserve(v.count);
      for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(read_string(field + " element " + std::to_string(k)));
    } else if (v.elem_type == GGUFType::array) {
      for (uint64_t k = 0; k < v.count; ++k) {
        v.items.push_back(read_value(et, field + " element " + std::to_string(k), depth + 1));
      }
    } else {
      const uint8_t* p = take(v.count * scalar_size(v.elem_type), field);
      v.raw.assign(p, p + v.count * scalar_size(v.elem_type));
    }
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A fresh evaluated array whose bytes `fill` writes on the host.
array make_array(const Shape& shape, Dtype dtype, const std::function<void(void*)>& fill) {
  array out(shape, dtype, nullptr, {}, default_stream(default_device()));
  auto buffer = std::make_shared<Buffer>(out.nbytes());
  if (out.nbytes()) fill(buffer->write_host());
  out.set_data(std::move(buffer));
  out.detach();
  return out;
}

}  // namespace

const char* gguf_type_name(GGUFType t) {
  switch (t) {
    case GGUFType::uint8: return "uint8";
    case GGUFType::int8: return "int8";
    case GGUFType::uint16: return "uint16";
    case GGUFType::int16: return "int16";
    case GGUFType::uint32: return "uint32";
    case GGUFType::int32: return "int32";
    case GGUFType::float32: return "float32";
    case GGUFType::bool_: return "bool";
    case GGUFType::string: return "string";
    case GGUFType::array: return "array";
    case GGUFType::uint64: return "uint64";
    case GGUFType::int64: return "int64";
    case GGUFType::float64: return "float64";
  }
  return "unknown";
}

bool GGUFValue::is_integer() const {
  switch (type) {
    case GGUFType::uint8:
    case GGUFType::int8:
    case GGUFType::uint16:
    case GGUFType::int16:
    case GGUFType::uint32:
    case GGUFType::int32:
    case GGUFType::uint64:
    case GGUFType::int64:
      return true;
    default:
      return false;
  }
}

GGUFValue GGUFValue::item(uint64_t k) const {
  if (type != GGUFType::array) fail<TypeError>("[gguf] item() of a ", gguf_type_name(type), ", not an array");
  if (k >= count) fail<IndexError>("[gguf] item ", k, " of an array of ", count);
  if (elem_type == GGUFType::string) {
    GGUFValue v;
    v.type = GGUFType::string;
    v.s = strings[k];
    return v;
  }
  if (elem_type == GGUFType::array) return items[k];
  return scalar_from(elem_type, raw.data() + k * scalar_size(elem_type));
}

Shape GGUFTensorInfo::shape() const {
  Shape s;
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) s.push_back(static_cast<int64_t>(*it));
  return s;
}

GGUFFile GGUFFile::open(const std::string& path) {
  GGUFFile g;
  g.file_ = std::make_shared<MappedFile>(path, "gguf");
  Reader r(g.file_->data(), g.file_->size(), path);

  if (g.file_->size() < 4) r.bad("file of ", g.file_->size(), " bytes is too short for the GGUF magic");
  uint32_t magic = r.read<uint32_t>("magic");
  if (std::memcmp(g.file_->data(), "GGUF", 4) != 0) {
    r.bad("bad magic ", hex32(magic), " (expected \"GGUF\"); not a GGUF file");
  }
  g.version_ = r.read<uint32_t>("version");
  if (g.version_ != 2 && g.version_ != 3) {
    if (g.version_ == 1) r.bad("version 1 is not supported (only versions 2 and 3)");
    if ((g.version_ & 0xFFFF) == 0) {
      r.bad("version field ", hex32(g.version_), " looks byte-swapped: big-endian GGUF files are not supported");
    }
    r.bad("unsupported version ", g.version_, " (only versions 2 and 3)");
  }
  uint64_t n_tensors = r.read<uint64_t>("tensor count");
  uint64_t n_kv = r.read<uint64_t>("metadata count");
  if (n_kv > r.left() / 13) r.bad("metadata count ", n_kv, " is more than the ", r.left(), " remaining bytes can hold");
  if (n_tensors > r.left() / 24) {
    r.bad("tensor count ", n_tensors, " is more than the ", r.left(), " remaining bytes can hold");
  }

  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.read_string("key of metadata entry " + std::to_string(k));
    std::string field = "metadata '" + key + "'";
    uint32_t type = r.read<uint32_t>(field + " type");
    GGUFValue v = r.read_value(type, field, 0);
    if (!g.metadata_.emplace(key, std::move(v)).second) r.bad("duplicate metadata key '", key, "'");
    g.keys_.push_back(key);
  }

  g.alignment_ = kDefaultAlignment;
  if (auto it = g.metadata_.find("general.alignment"); it != g.metadata_.end()) {
    const GGUFValue& v = it->second;
    if (!v.is_integer()) r.bad("general.alignment has type ", gguf_type_name(v.type), ", expected an integer");
    bool neg = v.type == GGUFType::int8 || v.type == GGUFType::int16 || v.type == GGUFType::int32 ||
               v.type == GGUFType::int64;
    uint64_t a = neg ? (v.i < 0 ? 0 : static_cast<uint64_t>(v.i)) : v.u;
    if (a == 0 || (a & (a - 1)) != 0) {
      r.bad("general.alignment = ", neg ? std::to_string(v.i) : std::to_string(v.u), " is not a power of two");
    }
    g.alignment_ = a;
  }

  for (uint64_t k = 0; k < n_tensors; ++k) {
    GGUFTensorInfo t;
    t.name = r.read_string("name of tensor " + std::to_string(k));
    std::string field = "tensor '" + t.name + "'";
    uint32_t n_dims = r.read<uint32_t>(field + " n_dims");
    if (n_dims > kMaxDims) r.bad(field, " has ", n_dims, " dims; at most ", kMaxDims, " are allowed");
    uint64_t size = 1;
    bool overflow = false;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim = r.read<uint64_t>(field + " dim " + std::to_string(d));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        r.bad(field, " dim ", d, " = ", dim, " is out of range");
      }
      t.dims.push_back(dim);
      overflow |= __builtin_mul_overflow(size, dim, &size);
    }
    if (overflow || size > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      r.bad(field, " dims ", t.dims, " overflow a 64-bit element count");
    }
    uint32_t type = r.read<uint32_t>(field + " type");
    const GGMLTypeInfo* info = ggml_type_info(type);
    if (!info) r.bad(field, " has unknown tensor type ", type);
    t.type = static_cast<GGMLType>(type);
    uint64_t row = n_dims ? t.dims[0] : 1;
    if (row % info->block_size != 0) {
      r.bad(field, " of type ", info->name, " has dim 0 = ", row, ", not a multiple of the block size ",
            info->block_size);
    }
    if (__builtin_mul_overflow(size / info->block_size, static_cast<uint64_t>(info->type_size), &t.nbytes)) {
      r.bad(field, " dims ", t.dims, " of type ", info->name, " overflow a 64-bit byte count");
    }
    t.size = static_cast<int64_t>(size);
    t.offset = r.read<uint64_t>(field + " offset");
    if (t.offset % g.alignment_ != 0) {
      r.bad(field, " offset ", t.offset, " is not a multiple of the alignment ", g.alignment_);
    }
    if (!g.tensor_index_.emplace(t.name, g.tensors_.size()).second) r.bad("duplicate tensor name '", t.name, "'");
    g.tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment; with no tensors a file may
  // end before it.
  uint64_t end = r.pos();
  g.data_offset_ = (end + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  uint64_t data_size = g.file_->size() > g.data_offset_ ? g.file_->size() - g.data_offset_ : 0;
  for (const auto& t : g.tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      r.bad("data of tensor '", t.name, "' (", t.nbytes, " bytes at data offset ", t.offset,
            ") runs past the end of the file (the data section holds ", data_size, " bytes from file offset ",
            g.data_offset_, ")");
    }
  }
  return g;
}

const GGUFValue& GGUFFile::get(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) fail<ValueError>("[gguf] '", path(), "': no metadata key '", key, "'");
  return it->second;
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, const std::string& key, const GGUFValue& v,
                             const char* wanted) {
  std::string got = gguf_type_name(v.type);
  if (v.type == GGUFType::array) got += std::string(" of ") + gguf_type_name(v.elem_type);
  fail<TypeError>("[gguf] '", path, "': metadata '", key, "' is ", got, ", not ", wanted);
}

int64_t int_of(const std::string& path, const std::string& key, const GGUFValue& v) {
  if (!v.is_integer()) wrong_type(path, key, v, "an integer");
  bool is_unsigned = v.type == GGUFType::uint8 || v.type == GGUFType::uint16 || v.type == GGUFType::uint32 ||
                     v.type == GGUFType::uint64;
  if (!is_unsigned) return v.i;
  if (v.u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail<ValueError>("[gguf] '", path, "': metadata '", key, "' = ", v.u, " does not fit in int64");
  }
  return static_cast<int64_t>(v.u);
}

double float_of(const std::string& path, const std::string& key, const GGUFValue& v) {
  if (v.is_float()) return v.f;
  if (v.is_integer()) {
    bool is_unsigned = v.type == GGUFType::uint8 || v.type == GGUFType::uint16 || v.type == GGUFType::uint32 ||
                       v.type == GGUFType::uint64;
    return is_unsigned ? static_cast<double>(v.u) : static_cast<double>(v.i);
  }
  wrong_type(path, key, v, "a number");
}

const GGUFValue& array_of(const std::string& path, const std::string& key, const GGUFValue& v, bool ok,
                          const char* wanted) {
  if (v.type != GGUFType::array || !ok) wrong_type(path, key, v, wanted);
  return v;
}

}  // namespace

std::string GGUFFile::get_string(const std::string& key) const {
  const GGUFValue& v = get(key);
  if (v.type != GGUFType::string) wrong_type(path(), key, v, "a string");
  return v.s;
}
std::string GGUFFile::get_string(const std::string& key, const std::string& fallback) const {
  return has_key(key) ? get_string(key) : fallback;
}
int64_t GGUFFile::get_int(const std::string& key) const { return int_of(path(), key, get(key)); }
int64_t GGUFFile::get_int(const std::string& key, int64_t fallback) const {
  return has_key(key) ? get_int(key) : fallback;
}
double GGUFFile::get_float(const std::string& key) const { return float_of(path(), key, get(key)); }
double GGUFFile::get_float(const std::string& key, double fallback) const {
  return has_key(key) ? get_float(key) : fallback;
}
bool GGUFFile::get_bool(const std::string& key) const {
  const GGUFValue& v = get(key);
  if (v.type != GGUFType::bool_) wrong_type(path(), key, v, "a bool");
  return v.u != 0;
}
bool GGUFFile::get_bool(const std::string& key, bool fallback) const {
  return has_key(key) ? get_bool(key) : fallback;
}

std::vector<std::string> GGUFFile::get_string_array(const std::string& key) const {
  const GGUFValue& v = get(key);
  return array_of(path(), key, v, v.elem_type == GGUFType::string, "an array of strings").strings;
}

std::vector<int64_t> GGUFFile::get_int_array(const std::string& key) const {
  const GGUFValue& v = get(key);
  GGUFValue probe;
  probe.type = v.elem_type;
  array_of(path(), key, v, probe.is_integer(), "an array of integers");
  std::vector<int64_t> out;
  out.reserve(v.count);
  for (uint64_t k = 0; k < v.count; ++k) out.push_back(int_of(path(), key, v.item(k)));
  return out;
}

std::vector<double> GGUFFile::get_float_array(const std::string& key) const {
  const GGUFValue& v = get(key);
  GGUFValue probe;
  probe.type = v.elem_type;
  array_of(path(), key, v, probe.is_float() || probe.is_integer(), "an array of numbers");
  std::vector<double> out;
  out.reserve(v.count);
  for (uint64_t k = 0; k < v.count; ++k) out.push_back(float_of(path(), key, v.item(k)));
  return out;
}

const GGUFTensorInfo& GGUFFile::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  if (it == tensor_index_.end()) fail<ValueError>("[gguf] '", path(), "': no tensor named '", name, "'");
  return tensors_[it->second];
}

Dtype GGUFFile::natural_dtype(const GGUFTensorInfo& t) const {
  switch (t.type) {
    case GGMLType::F16: return float16;
    case GGMLType::BF16: return bfloat16;
    case GGMLType::F64: return float64;
    case GGMLType::I8: return int8;
    case GGMLType::I16: return int16;
    case GGMLType::I32: return int32;
    case GGMLType::I64: return int64;
    default: return float32;
  }
}

array GGUFFile::load_tensor(const std::string& name, std::optional<Dtype> target) const {
  const GGUFTensorInfo& t = tensor(name);
  Dtype natural = natural_dtype(t);
  Dtype out = target.value_or(natural);
  const uint8_t* src = file_->data() ? file_->data() + data_offset_ + t.offset : nullptr;
  auto copy = [&](void* dst) { std::memcpy(dst, src, t.nbytes); };

  if (can_dequantize(t.type)) {
    if (out != float16 && out != bfloat16 && out != float32 && out != float64) {
      fail<TypeError>("[gguf] '", path(), "': tensor '", name, "' of type ", ggml_type_name(t.type),
                      " loads as float16, bfloat16, float32 or float64, not ", out);
    }
    if (out == natural && (t.type == GGMLType::F32 || t.type == GGMLType::F16 || t.type == GGMLType::BF16)) {
      return make_array(t.shape(), out, copy);
    }
    return make_array(t.shape(), out, [&](void* dst) { dequantize(t.type, src, t.size, dst, out); });
  }
  switch (t.type) {
    case GGMLType::F64:
    case GGMLType::I8:
    case GGMLType::I16:
    case GGMLType::I32:
    case GGMLType::I64: {
      array a = make_array(t.shape(), natural, copy);
      if (out == natural) return a;
      array c = astype(a, out, Device(Device::cpu));
      c.eval();
      return c;
    }
    default:
      fail<ValueError>("[gguf] '", path(), "': tensor '", name, "' has type ", ggml_type_name(t.type),
                       ", which this reader cannot decode (supported: F32, F16, BF16, F64, I8-I64, Q8_0, Q4_0, "
                       "Q4_1, Q4_K, Q6_K)");
  }
}

std::map<std::string, array> GGUFFile::load_all(std::optional<Dtype> target) const {
  std::map<std::string, array> out;
  for (const auto& t : tensors_) out.emplace(t.name, load_tensor(t.name, target));
  return out;
}

bool is_gguf_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "GGUF";
}

}  // namespace kiln::io
