#include "kiln/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <nlohmann/json.hpp>

#include "kiln/device.h"
#include "kiln/memory.h"
#include "kiln/ops_elementwise.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace kiln::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

// The reference implementation's cap; a larger header is corruption, not a model.
constexpr uint64_t kMaxHeaderSize = 100'000'000;
// Real headers nest three deep (object, tensor entry, shape array).
constexpr int kMaxDepth = 8;

struct StoredType {
  const char* name;
  std::optional<Dtype> dtype;
  uint64_t size;
};

const StoredType kTypes[] = {
    {"BOOL", bool_, 1},        {"U8", uint8, 1},          {"I8", int8, 1},
    {"U16", uint16, 2},        {"I16", int16, 2},         {"F16", float16, 2},
    {"BF16", bfloat16, 2},     {"U32", uint32, 4},        {"I32", int32, 4},
    {"F32", float32, 4},       {"U64", uint64, 8},        {"I64", int64, 8},
    {"F64", float64, 8},       {"C64", complex64, 8},     {"F8_E4M3", std::nullopt, 1},
    {"F8_E5M2", std::nullopt, 1}, {"F8_E8M0", std::nullopt, 1},
};

const StoredType* find_type(const std::string& name) {
  for (const auto& t : kTypes) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

std::string known_types() {
  std::string s;
  for (const auto& t : kTypes) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

template <class... Parts>
[[noreturn]] void bad(const std::string& path, const Parts&... parts) {
  fail<ValueError>("[safetensors] '", path, "': ", parts...);
}

// Parses JSON text, rejecting duplicate keys (which nlohmann would silently overwrite) and
// nesting deeper than kMaxDepth.
json parse_json(const char* begin, const char* end, const std::string& path, const char* what) {
  std::vector<std::set<std::string>> keys;
  auto cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxDepth) bad(path, what, " nests deeper than ", kMaxDepth, " levels");
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(k).second) bad(path, what, " has the key '", k, "' twice");
    }
    return true;
  };
  try {
    return json::parse(begin, end, cb);
  } catch (const json::exception& e) {
    bad(path, what, " is not valid JSON: ", e.what());
  }
}

uint64_t as_u64(const json& v, const std::string& path, const std::string& field) {
  if (!v.is_number_unsigned()) bad(path, field, " must be a non-negative integer, not ", v.dump());
  return v.get<uint64_t>();
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

SafeTensorInfo parse_entry(const std::string& name, const json& v, const std::string& path) {
  std::string where = "tensor '" + name + "'";
  if (!v.is_object()) bad(path, where, " must be an object, not ", v.dump());
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!v.contains(field)) bad(path, where, " has no \"", field, "\"");
  }
  SafeTensorInfo t;
  t.name = name;
  const json& dt = v["dtype"];
  if (!dt.is_string()) bad(path, where, " has a dtype that is not a string: ", dt.dump());
  t.dtype_name = dt.get<std::string>();
  const StoredType* st = find_type(t.dtype_name);
  if (!st) bad(path, where, " has unknown dtype '", t.dtype_name, "' (known: ", known_types(), ")");
  t.dtype = st->dtype;

  const json& sh = v["shape"];
  if (!sh.is_array()) bad(path, where, " has a shape that is not an array: ", sh.dump());
  uint64_t count = 1;
  bool overflow = false;
  for (const auto& d : sh) {
    uint64_t n = as_u64(d, path, where + " shape entry");
    if (n > static_cast<uint64_t>(INT64_MAX)) bad(path, where, " has shape entry ", n, ", too large");
    t.shape.push_back(static_cast<int64_t>(n));
    overflow = overflow || __builtin_mul_overflow(count, n, &count);
  }
  uint64_t nbytes = 0;
  overflow = overflow || __builtin_mul_overflow(count, st->size, &nbytes) || count > static_cast<uint64_t>(INT64_MAX);
  if (overflow) bad(path, where, " has shape ", t.shape, " whose size overflows");

  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2) bad(path, where, " has data_offsets that are not [begin, end]: ", off.dump());
  t.begin = as_u64(off[0], path, where + " data_offsets[0]");
  t.end = as_u64(off[1], path, where + " data_offsets[1]");
  if (t.end < t.begin) bad(path, where, " has data_offsets [", t.begin, ", ", t.end, "] that end before they begin");
  if (t.end - t.begin != nbytes) {
    bad(path, where, " of dtype ", t.dtype_name, " and shape ", t.shape, " needs ", nbytes,
        " bytes but data_offsets [", t.begin, ", ", t.end, "] hold ", t.end - t.begin);
  }
  return t;
}

}  // namespace

SafeTensorsFile SafeTensorsFile::open(const std::string& path) {
  SafeTensorsFile f;
  f.file_ = std::make_shared<MappedFile>(path, "safetensors");
  const uint8_t* data = f.file_->data();
  uint64_t size = f.file_->size();
  if (size < 8) bad(path, "file of ", size, " bytes is too short for the 8-byte header length");
  uint64_t n;
  std::memcpy(&n, data, 8);
  if (n > size - 8) bad(path, "header length ", n, " runs past the end of the file (", size - 8, " bytes follow)");
  if (n > kMaxHeaderSize) bad(path, "header length ", n, " exceeds the limit of ", kMaxHeaderSize, " bytes");
  f.data_offset_ = 8 + n;
  uint64_t data_size = size - f.data_offset_;

  const char* text = reinterpret_cast<const char*>(data + 8);
  json header = parse_json(text, text + n, path, "header");
  if (!header.is_object()) bad(path, "header is not a JSON object");

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;  // as the reference reader allows
      if (!value.is_object()) bad(path, "__metadata__ must be an object of strings, not ", value.dump());
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) bad(path, "__metadata__ entry '", mk, "' is not a string: ", mv.dump());
        f.metadata_.emplace(mk, mv.get<std::string>());
      }
      continue;
    }
    f.tensors_.push_back(parse_entry(key, value, path));
  }

  // The tensors must tile the data section exactly: no gaps, no overlaps, nothing left over.
  std::stable_sort(f.tensors_.begin(), f.tensors_.end(), [](const SafeTensorInfo& a, const SafeTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const SafeTensorInfo* prev = nullptr;
  for (const auto& t : f.tensors_) {
    if (t.begin < expected) {
      bad(path, "tensor '", t.name, "' at bytes [", t.begin, ", ", t.end, ") overlaps tensor '", prev->name,
          "' at [", prev->begin, ", ", prev->end, ")");
    }
    if (t.begin > expected) bad(path, "gap in the data section: bytes [", expected, ", ", t.begin, ") belong to no tensor");
    if (t.end > data_size) {
      bad(path, "tensor '", t.name, "' at bytes [", t.begin, ", ", t.end, ") lies outside the data section of ",
          data_size, " bytes");
    }
    expected = t.end;
    prev = &t;
  }
  if (expected != data_size) {
    bad(path, "the data section has ", data_size, " bytes but the tensors cover only ", expected);
  }
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_.emplace(f.tensors_[i].name, i);
  return f;
}

const SafeTensorInfo& SafeTensorsFile::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail<ValueError>("[safetensors] '", path(), "': no tensor named '", name, "'");
  return tensors_[it->second];
}

array SafeTensorsFile::load_tensor(const std::string& name, std::optional<Dtype> target) const {
  const SafeTensorInfo& t = tensor(name);
  if (!t.dtype) {
    fail<TypeError>("[safetensors] '", path(), "': tensor '", name, "' has dtype ", t.dtype_name,
                    ", which kiln cannot represent");
  }
  const uint8_t* src = file_->data() + data_offset_ + t.begin;
  uint64_t nbytes = t.end - t.begin;
  array a = make_array(t.shape, *t.dtype, [&](void* dst) {
    if (*t.dtype == bool_) {
      // Any nonzero byte is true; a C++ bool must hold exactly 0 or 1.
      auto* d = static_cast<uint8_t*>(dst);
      for (uint64_t i = 0; i < nbytes; ++i) d[i] = src[i] != 0;
    } else {
      std::memcpy(dst, src, nbytes);
    }
  });
  if (!target || *target == *t.dtype) return a;
  array c = astype(a, *target, Device(Device::cpu));
  c.eval();
  return c;
}

std::map<std::string, array> SafeTensorsFile::load_all(std::optional<Dtype> target) const {
  std::map<std::string, array> out;
  for (const auto& t : tensors_) out.emplace(t.name, load_tensor(t.name, target));
  return out;
}

std::map<std::string, array> load_safetensors(const std::string& path, std::optional<Dtype> target) {
  return SafeTensorsFile::open(path).load_all(target);
}

std::map<std::string, array> load_sharded(const std::string& path, std::optional<Dtype> target) {
  fs::path index = path;
  std::error_code ec;
  if (fs::is_directory(index, ec)) {
    fs::path single = index / "model.safetensors";
    index /= "model.safetensors.index.json";
    if (!fs::exists(index, ec) && fs::exists(single, ec)) return load_safetensors(single.string(), target);
  }
  std::string ipath = index.string();
  MappedFile file(ipath, "safetensors");
  const char* text = reinterpret_cast<const char*>(file.data());
  json j = parse_json(text, text + file.size(), ipath, "index");
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    bad(ipath, "index has no \"weight_map\" object");
  }
  // Shard file -> the names it holds, so each shard is opened once.
  std::map<std::string, std::vector<std::string>> shards;
  for (const auto& [name, file_name] : j["weight_map"].items()) {
    if (!file_name.is_string()) bad(ipath, "weight_map entry '", name, "' is not a file name: ", file_name.dump());
    std::string f = file_name.get<std::string>();
    fs::path p(f);
    bool escapes = f.empty() || p.is_absolute() || std::any_of(p.begin(), p.end(), [](const fs::path& c) {
                     return c == "..";
                   });
    if (escapes) bad(ipath, "weight_map entry '", name, "' names '", f, "', which is not a file beside the index");
    shards[f].push_back(name);
  }
  std::map<std::string, array> out;
  for (const auto& [f, names] : shards) {
    SafeTensorsFile shard = SafeTensorsFile::open((index.parent_path() / f).string());
    for (const auto& name : names) {
      if (!shard.has_tensor(name)) bad(ipath, "weight_map maps '", name, "' to '", f, "', which has no such tensor");
      out.emplace(name, shard.load_tensor(name, target));
    }
  }
  return out;
}

}  // namespace kiln::io
