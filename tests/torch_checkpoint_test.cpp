// Tests of the PyTorch checkpoint reader. Checkpoints written by torch.save
// (tests/fixtures/make_torch_checkpoint.py) are compared exactly with what torch reads back from
// them (a safetensors file beside each): those committed under tests/fixtures/torch_checkpoint/
// always, fresh ones when torch is importable. Archives and pickles built here cover views on
// random storages and the error paths; truncations and corruptions of real files must end in a
// ValueError, never a crash.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "kiln/io/safetensors.h"
#include "kiln/io/torch_checkpoint.h"
#include "file_utils.h"
#include "test_utils.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::string_literals;

namespace kiln {
namespace {

using io::TorchCheckpoint;
using io::TorchScalar;
using test::read_file;
using test::write_file;
// Each suite's temporary files get their own prefix. These live in /dev/shm where there is one:
// the fuzz tests write thousands of small files, which a disk-backed /tmp makes slow.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("kiln_pth") {
    std::error_code ec;
    fs::path shm = fs::path("/dev/shm") / path.filename();
    if (fs::is_directory("/dev/shm", ec) && fs::create_directories(shm, ec)) {
      fs::remove_all(path, ec);
      path = shm;
    }
  }
};

// The bytes of an array, row-major.
std::string bytes_of(array a) {
  a = contiguous(a, Device(Device::cpu));
  a.eval();
  if (a.nbytes() == 0) return {};
  const char* p = static_cast<const char*>(a.buffer()->read_host()) + a.offset() * a.itemsize();
  return std::string(p, a.nbytes());
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// ---- zip archives built and read here (stored entries, as torch writes them) ----

uint32_t crc32_bitwise(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : s) {
    c ^= ch;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

template <class T>
void put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

struct Record {
  std::string name, data;
  uint16_t method = 0;  // 0: stored
};

// With zip64, every size and offset is given in the 64-bit fields, as archives over 4 GiB need.
std::string make_zip(const std::vector<Record>& records, bool zip64 = false) {
  const uint32_t big = 0xFFFFFFFF;
  std::string out, cd;
  for (const auto& r : records) {
    uint32_t offset = static_cast<uint32_t>(out.size()), crc = crc32_bitwise(r.data);
    auto n = static_cast<uint32_t>(r.data.size());
    put<uint32_t>(out, 0x04034b50);
    for (uint16_t v : {uint16_t(20), uint16_t(0), r.method, uint16_t(0), uint16_t(0)}) put(out, v);
    for (uint32_t v : {crc, n, n}) put(out, v);
    put<uint16_t>(out, static_cast<uint16_t>(r.name.size()));
    put<uint16_t>(out, 0);
    out += r.name + r.data;
    put<uint32_t>(cd, 0x02014b50);
    for (uint16_t v : {uint16_t(45), uint16_t(45), uint16_t(0), r.method, uint16_t(0), uint16_t(0)}) put(cd, v);
    for (uint32_t v : {crc, zip64 ? big : n, zip64 ? big : n}) put(cd, v);
    put<uint16_t>(cd, static_cast<uint16_t>(r.name.size()));
    put<uint16_t>(cd, zip64 ? 28 : 0);  // extra field
    for (int k = 0; k < 3; ++k) put<uint16_t>(cd, 0);
    put<uint32_t>(cd, 0);
    put<uint32_t>(cd, zip64 ? big : offset);
    cd += r.name;
    if (zip64) {
      put<uint16_t>(cd, 1);
      put<uint16_t>(cd, 24);
      for (uint64_t v : {uint64_t(n), uint64_t(n), uint64_t(offset)}) put(cd, v);
    }
  }
  uint64_t cd_offset = out.size(), count = records.size();
  out += cd;
  if (zip64) {
    uint64_t z = out.size();
    put<uint32_t>(out, 0x06064b50);
    put<uint64_t>(out, 44);
    put<uint16_t>(out, 45);
    put<uint16_t>(out, 45);
    put<uint32_t>(out, 0);
    put<uint32_t>(out, 0);
    for (uint64_t v : {count, count, uint64_t(cd.size()), cd_offset}) put(out, v);
    put<uint32_t>(out, 0x07064b50);
    put<uint32_t>(out, 0);
    put<uint64_t>(out, z);
    put<uint32_t>(out, 1);
  }
  put<uint32_t>(out, 0x06054b50);
  put<uint32_t>(out, 0);
  put<uint16_t>(out, zip64 ? 0xFFFF : static_cast<uint16_t>(count));
  put<uint16_t>(out, zip64 ? 0xFFFF : static_cast<uint16_t>(count));
  put<uint32_t>(out, zip64 ? big : static_cast<uint32_t>(cd.size()));
  put<uint32_t>(out, zip64 ? big : static_cast<uint32_t>(cd_offset));
  put<uint16_t>(out, 0);
  return out;
}

template <class T>
T get(const std::string& s, size_t at) {
  T v;
  std::memcpy(&v, s.data() + at, sizeof(T));
  return v;
}

// The records of a well-formed archive without zip64 (the fixtures), through its central directory.
std::vector<Record> read_zip(const std::string& z) {
  size_t eocd = z.size() - 22;
  EXPECT_EQ(get<uint32_t>(z, eocd), 0x06054b50u);
  size_t p = get<uint32_t>(z, eocd + 16);
  std::vector<Record> out;
  for (int i = 0, n = get<uint16_t>(z, eocd + 10); i < n; ++i) {
    size_t name_len = get<uint16_t>(z, p + 28), extra = get<uint16_t>(z, p + 30), comment = get<uint16_t>(z, p + 32);
    size_t size = get<uint32_t>(z, p + 24), local = get<uint32_t>(z, p + 42);
    Record r;
    r.name = z.substr(p + 46, name_len);
    size_t data = local + 30 + get<uint16_t>(z, local + 26) + get<uint16_t>(z, local + 28);
    r.data = z.substr(data, size);
    out.push_back(r);
    p += 46 + name_len + extra + comment;
  }
  return out;
}

std::string& data_pkl(std::vector<Record>& records) {
  for (auto& r : records)
    if (r.name.size() >= 9 && r.name.compare(r.name.size() - 9, 9, "/data.pkl") == 0) return r.data;
  ADD_FAILURE() << "no data.pkl";
  return records[0].data;
}

// ---- pickles built here (protocol 2, as torch.save writes them) ----

namespace pk {
std::string str(const std::string& s) {
  std::string o = "X";
  put<uint32_t>(o, static_cast<uint32_t>(s.size()));
  return o + s;
}
std::string integer(int32_t v) {
  std::string o = "J";
  put(o, v);
  return o;
}
std::string global(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
std::string ints(const std::vector<int32_t>& v) {
  std::string o = "(";
  for (int32_t x : v) o += integer(x);
  return o + "t";
}
std::string odict() { return global("collections", "OrderedDict") + ")R"; }
std::string pid(const std::string& type, const std::string& key, int32_t numel,
                const std::string& module = "torch") {
  return "(" + str("storage") + global(module, type) + str(key) + str("cpu") + integer(numel) + "tQ";
}
std::string tensor(const std::string& pid, int32_t offset, const std::vector<int32_t>& size,
                   const std::vector<int32_t>& stride) {
  return global("torch._utils", "_rebuild_tensor_v2") + "(" + pid + integer(offset) + ints(size) + ints(stride) +
         "\x89" + odict() + "tR";
}
std::string dict(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string o = "}(";
  for (const auto& [k, v] : items) o += str(k) + v;
  return o + "u";
}
std::string whole(const std::string& body) { return "\x80\x02" + body + "."; }
}  // namespace pk

// A checkpoint archive of `pickle` (a whole pickle) and storage records "0", "1", ...
std::string checkpoint(const std::string& pickle, const std::vector<std::string>& storages = {},
                       const std::string& byteorder = "little", bool zip64 = false) {
  std::vector<Record> r{{"archive/data.pkl", pickle}, {"archive/byteorder", byteorder}};
  for (size_t i = 0; i < storages.size(); ++i) r.push_back({"archive/data/" + std::to_string(i), storages[i]});
  r.push_back({"archive/version", "3\n"});
  return make_zip(r, zip64);
}

// Writes `bytes`, opens and loads it, and expects ValueError "[torch_checkpoint] '<path>': ...<needle>".
void expect_bad(const std::string& bytes, const std::string& needle) {
  TempDir dir;
  std::string path = dir.file("bad.pth");
  write_file(path, bytes);
  std::string prefix = "[torch_checkpoint] '" + path + "': ";
  try {
    io::load_torch_checkpoint(path);
    ADD_FAILURE() << "expected ValueError containing '" << needle << "'";
  } catch (const ValueError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "wanted '" << needle << "' in: " << msg;
  }
}

// The values of a strided view of `storage`, computed directly from as_strided's definition.
std::vector<float> as_strided(const std::vector<float>& storage, const Shape& shape, const Strides& strides,
                              int64_t offset) {
  std::vector<float> out;
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t n = shape_size(shape), i = 0; i < n; ++i) {
    int64_t at = offset;
    for (size_t d = 0; d < shape.size(); ++d) at += idx[d] * strides[d];
    out.push_back(storage.at(static_cast<size_t>(at)));
    for (size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

TEST(TorchCheckpoint, HandBuiltViewsOfRandomStorages) {
  std::uniform_int_distribution<int> small(1, 5);
  for (int trial = 0; trial < 20; ++trial) {
    // A random view (shape, strides, offset) of a random storage just large enough to hold it.
    int nd = small(test::rng()) - 1;
    Shape shape;
    Strides strides;
    int64_t last = 0;
    for (int d = 0; d < nd; ++d) {
      shape.push_back(small(test::rng()) - 1 + (trial % 2));  // odd trials: no empty dims
      strides.push_back(small(test::rng()) - 1);              // zero strides included
      if (shape.back() > 0) last += (shape.back() - 1) * strides.back();
    }
    int64_t offset = small(test::rng()) - 1;
    int64_t numel = offset + last + 1 + small(test::rng());
    std::vector<float> storage;
    for (double x : test::uniform_values(numel, -3, 3)) storage.push_back(static_cast<float>(x));
    std::vector<int32_t> sh(shape.begin(), shape.end()), st(strides.begin(), strides.end());
    std::string p0 = pk::pid("FloatStorage", "0", static_cast<int32_t>(numel));
    // "whole" is the storage as a vector; "view" the random view; "again" the same tensor object
    // through the memo; "p" a parameter of the view.
    std::string pickle = pk::whole(
        pk::dict({{"whole", pk::tensor(p0 + "q\x01", 0, {static_cast<int32_t>(numel)}, {1})},
                  {"view", pk::tensor("h\x01", static_cast<int32_t>(offset), sh, st) + "q\x02"},
                  {"again", "h\x02"},
                  {"p", pk::global("torch._utils", "_rebuild_parameter") + "(h\x02\x88" + pk::odict() + "tR"}}));
    TempDir dir;
    std::string path = dir.file("v.pth");
    write_file(path, checkpoint(pickle, {raw(storage)}, "little", /*zip64=*/trial % 3 == 0));
    SCOPED_TRACE("shape " + ::testing::PrintToString(shape) + " strides " + ::testing::PrintToString(strides));
    auto ck = TorchCheckpoint::open(path);
    EXPECT_FALSE(ck.is_legacy());
    ASSERT_EQ(ck.tensors().size(), 4u);
    EXPECT_EQ(ck.tensor("view").shape, shape);
    EXPECT_EQ(ck.tensor("view").strides, strides);
    EXPECT_EQ(ck.tensor("view").storage_offset, offset);
    EXPECT_EQ(ck.tensor("view").storage_key, "0");
    EXPECT_TRUE(ck.tensor("p").is_parameter && ck.tensor("p").requires_grad);
    EXPECT_FALSE(ck.tensor("view").is_parameter || ck.tensor("view").requires_grad);
    auto want = as_strided(storage, shape, strides, offset);
    auto all = ck.load_all();
    for (const char* name : {"view", "again", "p"}) {
      EXPECT_EQ(all.at(name).dtype(), float32);
      EXPECT_EQ(all.at(name).shape(), shape);
      EXPECT_EQ(all.at(name).to_vector<float>(), want) << name;
    }
    EXPECT_EQ(all.at("whole").to_vector<float>(), storage);
    auto as64 = ck.load_tensor("view", float64);
    EXPECT_EQ(as64.dtype(), float64);
    EXPECT_EQ(as64.to_vector<double>(), std::vector<double>(want.begin(), want.end()));
  }
}

TEST(TorchCheckpoint, HandBuiltUntypedStorageWithDtype) {
  // What torch writes for dtypes with no storage class: _rebuild_tensor_v3 and an untyped storage.
  auto values = test::int_values(6, 0, 65535);
  std::vector<uint16_t> v(values.begin(), values.end());
  std::string t = pk::global("torch._utils", "_rebuild_tensor_v3") + "(" +
                  pk::pid("UntypedStorage", "0", 12, "torch.storage") + pk::integer(1) + pk::ints({2, 2}) +
                  pk::ints({1, 2}) + "\x89" + pk::odict() + pk::global("torch", "uint16") + "tR";
  TempDir dir;
  write_file(dir.file("u.pth"), checkpoint(pk::whole(pk::dict({{"u", t}})), {raw(v)}));
  array a = io::load_torch_checkpoint(dir.file("u.pth")).at("u");
  EXPECT_EQ(a.dtype(), uint16);
  EXPECT_EQ(a.to_vector<uint16_t>(), (std::vector<uint16_t>{v[1], v[3], v[2], v[4]}));
}

TEST(TorchCheckpoint, HandBuiltErrors) {
  std::string f6 = raw(std::vector<float>(6, 1.5f));
  std::string p0 = pk::pid("FloatStorage", "0", 6);
  auto one = [&](const std::string& tensor) { return pk::whole(pk::dict({{"w", tensor}})); };
  std::string ok = one(pk::tensor(p0, 0, {2, 3}, {3, 1}));
  {
    TempDir dir;
    write_file(dir.file("ok.pth"), checkpoint(ok, {f6}));
    EXPECT_EQ(io::load_torch_checkpoint(dir.file("ok.pth")).at("w").to_vector<float>(), std::vector<float>(6, 1.5f));
  }
  // Globals are refused by name before anything is called.
  for (auto [m, n] : {std::pair{"os", "system"}, {"builtins", "eval"}, {"__builtin__", "exec"},
                      {"torch.nn.modules.linear", "Linear"}, {"numpy.core.multiarray", "scalar"},
                      {"torch._utils", "_rebuild_qtensor"}, {"torch", "float8_e4m3fn"}}) {
    std::string evil = pk::whole(pk::global(m, n) + "(" + pk::str("echo hacked") + "tR");
    expect_bad(checkpoint(evil), std::string("unsupported global '") + m + "." + n + "'");
    // The same through STACK_GLOBAL (protocol 4).
    expect_bad(checkpoint(pk::whole(pk::str(m) + pk::str(n) + "\x93)R")), std::string("'") + m + "." + n + "'");
  }
  expect_bad(checkpoint(pk::whole("I5\n")), "unsupported pickle opcode 0x49 ('I')");
  expect_bad(checkpoint(pk::whole("\xff")), "unsupported pickle opcode 0xff");
  expect_bad(checkpoint("\x80\x02}"), "without a STOP");
  expect_bad(checkpoint("\x80\x06}."), "pickle protocol 6");
  expect_bad(checkpoint(pk::whole("X\x10\x00\x00\x00"s + "ab")), "ends inside opcode 0x58");
  expect_bad(checkpoint(pk::whole("h\x03")), "memo entry 3 is read before it is written");
  expect_bad(checkpoint(pk::whole("t")), "needs a MARK");
  expect_bad(checkpoint(pk::whole("}a")), "stack underflow");
  expect_bad(checkpoint(pk::whole("\x8a\x09" + std::string(9, '\x01'))), "does not fit in 64 bits");
  expect_bad(checkpoint(pk::whole("}G" + std::string(8, '\0') + "Ns")), "dict keys must be str or int, not float");
  expect_bad(checkpoint(pk::whole(pk::odict() + "N" + "b" + "]Nb")), "BUILD on a list");
  expect_bad(checkpoint(one(pk::tensor(p0, 0, {2, 3}, {3, 2}))), "reaches element 7 of storage '0', which holds 6");
  expect_bad(checkpoint(one(pk::tensor(p0, 1, {6}, {1}))), "reaches element 6");
  expect_bad(checkpoint(one(pk::tensor(p0, 0, {2, -3}, {3, 1}))), "negative entry -3");
  expect_bad(checkpoint(one(pk::tensor(p0, -1, {2}, {1}))), "negative storage offset");
  expect_bad(checkpoint(one(pk::tensor(p0, 0, {2, 3}, {1}))), "has size (2, 3) but stride (1,)");
  expect_bad(checkpoint(one(pk::tensor(p0, 0, {1 << 20, 1 << 20}, {0, 0}))), "repeats the 6 elements");
  expect_bad(checkpoint(one(pk::tensor(pk::pid("UntypedStorage", "0", 24, "torch.storage"), 0, {6}, {1})), {f6}),
             "without naming a dtype");
  expect_bad(checkpoint(one(pk::tensor("(" + pk::str("storage") + pk::global("torch", "FloatStorage") + "tQ", 0,
                                       {6}, {1}))),
             "persistent id is not a 5-tuple");
  expect_bad(checkpoint(one(pk::tensor(pk::pid("FloatStorage", "0", 6) + "0" +
                                           pk::pid("DoubleStorage", "0", 6), 0, {6}, {1})), {f6}),
             "declared twice");
  expect_bad(checkpoint(ok), "storage '0' has no record 'archive/data/0'");
  expect_bad(checkpoint(ok, {f6 + "xx"}), "'archive/data/0' holds 26 bytes but its storage needs 24");
  expect_bad(checkpoint(ok, {f6}, "big"), "only little-endian");
  expect_bad(make_zip({{"archive/other", "x"}}), "no 'archive/data.pkl' record");
  expect_bad(make_zip({{"archive/data.pkl", ok, 8}}), "is compressed (method 8)");
  expect_bad(make_zip({}), "not laid out as torch.save");
  expect_bad("", "not a PyTorch checkpoint");
  expect_bad("hello, world", "not a PyTorch checkpoint");
  expect_bad(ok, "not a PyTorch checkpoint");  // a bare pickle
  // Names must stay unique after flattening; nesting and sharing are bounded.
  std::string t = pk::tensor(p0, 0, {6}, {1});
  expect_bad(checkpoint(pk::whole(pk::dict({{"a.b", t}, {"a", pk::dict({{"b", t}})}})), {f6}),
             "two entries flatten to the same name 'a.b'");
  expect_bad(checkpoint(pk::whole(std::string(100, ']') + std::string(99, 'a'))), "nests deeper than 64 levels");
  expect_bad(checkpoint(pk::whole("]q\x00h\x00"s + "a")), "nests deeper than 64 levels");  // a list inside itself
  std::string doubling = "Nq\x00"s;
  for (int i = 0; i < 60; ++i) doubling += "(h\x00h\x00tq\x00"s;
  expect_bad(checkpoint(pk::whole(doubling)), "repeats shared containers");
  expect_bad(checkpoint(pk::whole(pk::global("torch", "FloatStorage"))), "holds torch.FloatStorage");

  // Corrupt bytes inside the archive fail its CRC-32s.
  {
    std::string z = checkpoint(ok, {f6});
    z[z.find(f6) + 3] ^= 1;
    TempDir dir;
    write_file(dir.file("crc.pth"), z);
    auto ck = TorchCheckpoint::open(dir.file("crc.pth"));  // the pickle is intact
    KILN_EXPECT_THROW_MSG(ck.load_tensor("w"), ValueError, "fails its CRC-32 check");
    z = checkpoint(ok, {f6});
    z[z.find(ok) + 5] ^= 1;
    expect_bad(z, "zip record 'archive/data.pkl' fails its CRC-32 check");
  }
  // Lookups and prefixes.
  {
    TempDir dir;
    std::string pickle = pk::whole(pk::dict({{"sd", pk::dict({{"w", t}})}, {"n", "K\x03"}}));
    write_file(dir.file("ok.pth"), checkpoint(pickle, {f6}));
    auto ck = TorchCheckpoint::open(dir.file("ok.pth"));
    EXPECT_EQ(ck.load_all({}, "sd").count("w"), 1u);
    EXPECT_EQ(std::get<int64_t>(ck.scalars().at("n")), 3);
    KILN_EXPECT_THROW_MSG(ck.load_all({}, "nope"), ValueError, "no tensors under 'nope'");
    KILN_EXPECT_THROW_MSG(ck.load_tensor("sd"), ValueError, "no tensor named 'sd'");
    KILN_EXPECT_THROW_MSG(TorchCheckpoint::open(dir.file("missing.pth")), io::FileError, "[torch_checkpoint]");
  }
}

// ---- checkpoints written by torch ----

const char* kCases[] = {"dtypes", "views", "module", "nested", "protocol4", "legacy", "root_parameter", "root_list"};

std::string committed_dir() { return (fs::path(__FILE__).parent_path() / "fixtures" / "torch_checkpoint").string(); }

bool python_has_torch() {
  static const bool ok = std::system("python3 -c 'import torch, safetensors' >/dev/null 2>&1") == 0;
  return ok;
}

// Everything the reader gives for `dir/name.pth` against what torch read back from it.
void check_case(const std::string& dir, const std::string& name) {
  SCOPED_TRACE(dir + "/" + name + ".pth");
  auto ck = TorchCheckpoint::open(dir + "/" + name + ".pth");
  EXPECT_EQ(ck.is_legacy(), name == "legacy");
  auto want = io::SafeTensorsFile::open(dir + "/" + name + ".safetensors");
  const auto& meta = want.metadata();
  json layout = json::parse(meta.at("layout")), scalars = json::parse(meta.at("scalars"));
  auto params = json::parse(meta.at("parameters")).get<std::set<std::string>>();
  auto grads = json::parse(meta.at("requires_grad")).get<std::set<std::string>>();

  std::set<std::string> names, want_names;
  for (const auto& t : ck.tensors()) names.insert(t.name);
  for (const auto& t : want.tensors()) want_names.insert(t.name);
  EXPECT_EQ(names, want_names);
  EXPECT_EQ(names.size(), ck.tensors().size()) << "a name appears twice";

  auto all = ck.load_all();
  std::map<int, std::string> storage_of_group;  // torch's storage identity -> our storage key
  for (const auto& t : ck.tensors()) {
    if (!want.has_tensor(t.name)) continue;
    array expected = want.load_tensor(t.name);
    array got = ck.load_tensor(t.name);
    EXPECT_EQ(got.dtype(), expected.dtype()) << t.name;
    EXPECT_EQ(got.shape(), expected.shape()) << t.name;
    EXPECT_TRUE(bytes_of(got) == bytes_of(expected)) << t.name << ": values differ";
    EXPECT_TRUE(bytes_of(all.at(t.name)) == bytes_of(expected)) << t.name << ": load_all differs";
    const json& l = layout.at(t.name);
    EXPECT_EQ(t.storage_offset, l[0].get<int64_t>()) << t.name;
    EXPECT_EQ(t.strides, l[1].get<Strides>()) << t.name;
    auto [it, fresh] = storage_of_group.emplace(l[2].get<int>(), t.storage_key);
    EXPECT_EQ(it->second, t.storage_key) << t.name << ": torch shares its storage, the reader does not";
    EXPECT_EQ(t.is_parameter, params.count(t.name) == 1) << t.name;
    EXPECT_EQ(t.requires_grad, grads.count(t.name) == 1) << t.name;
  }
  // Different torch storages must be different keys too.
  std::set<std::string> keys;
  for (const auto& [group, key] : storage_of_group) EXPECT_TRUE(keys.insert(key).second) << "storage " << key;

  EXPECT_EQ(ck.scalars().size(), scalars.size());
  for (const auto& [k, v] : scalars.items()) {
    ASSERT_TRUE(ck.scalars().count(k)) << k;
    const TorchScalar& s = ck.scalars().at(k);
    std::string type = v[0].get<std::string>();
    if (type == "none") EXPECT_TRUE(std::holds_alternative<std::monostate>(s)) << k;
    if (type == "bool") EXPECT_EQ(std::get<bool>(s), v[1].get<bool>()) << k;
    if (type == "int") EXPECT_EQ(std::get<int64_t>(s), v[1].get<int64_t>()) << k;
    if (type == "float") EXPECT_EQ(std::get<double>(s), v[1].get<double>()) << k;
    if (type == "str") EXPECT_EQ(std::get<std::string>(s), v[1].get<std::string>()) << k;
  }

  // A cast on load gives what astype gives.
  for (const auto& [k, a] : ck.load_all(float64)) {
    if (all.at(k).dtype() == complex64) continue;
    EXPECT_EQ(a.dtype(), float64);
    EXPECT_TRUE(bytes_of(a) == bytes_of(astype(all.at(k), float64, Device(Device::cpu)))) << k;
  }
}

void check_dir(const std::string& dir) {
  for (const char* name : kCases) check_case(dir, name);
  // The sub-dict of a training checkpoint is the module's state dict.
  auto nested = TorchCheckpoint::open(dir + "/nested.pth").load_all({}, "state_dict");
  auto module = io::load_torch_checkpoint(dir + "/module.pth");
  EXPECT_EQ(nested.size(), module.size());
  for (const auto& [k, a] : module) {
    ASSERT_TRUE(nested.count(k)) << k;
    EXPECT_TRUE(bytes_of(nested.at(k)) == bytes_of(a)) << k;
  }
  json errors = json::parse(read_file(dir + "/errors.json"));
  EXPECT_GE(errors.size(), 2u);
  for (const auto& [file, needle] : errors.items()) {
    std::string path = dir + "/" + file;
    try {
      io::load_torch_checkpoint(path);
      ADD_FAILURE() << file << " loaded";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(needle.get<std::string>()), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("[torch_checkpoint] '" + path + "': ", 0), 0u) << e.what();
    }
  }
}

TEST(TorchCheckpoint, CommittedFixtures) { check_dir(committed_dir()); }

TEST(TorchCheckpoint, FreshFixtures) {
  if (!python_has_torch()) GTEST_SKIP() << "python3 with torch and safetensors is not available";
  TempDir dir;
  uint64_t seed = test::rng()() % 1000000;
  SCOPED_TRACE("fixture seed " + std::to_string(seed));
  fs::path script = fs::path(__FILE__).parent_path() / "fixtures" / "make_torch_checkpoint.py";
  std::string cmd = "python3 '" + script.string() + "' '" + dir.path.string() + "' " + std::to_string(seed);
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  check_dir(dir.path.string());
}

// ---- fuzzing ----

// Opens and loads `path`: it loads, or throws ValueError naming the reader and the file. Returns
// whether it loaded.
bool load_or_clean_error(const std::string& path, const std::string& what) {
  try {
    auto ck = TorchCheckpoint::open(path);
    for (const auto& [name, a] : ck.load_all()) EXPECT_EQ(a.shape(), ck.tensor(name).shape) << what;
    return true;
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[torch_checkpoint] '" + path + "': ", 0), 0u) << what << ": " << e.what();
  }
  return false;
}

// Every prefix (each byte for the first 300, then in steps) must fail cleanly.
void fuzz_truncations(const std::string& bytes, const std::string& path,
                      const std::function<std::string(std::string)>& wrap) {
  size_t step = std::max<size_t>(1, bytes.size() / 300);
  for (size_t n = 0; n < bytes.size(); n += (n < 300 ? 1 : step)) {
    write_file(path, wrap(bytes.substr(0, n)));
    EXPECT_FALSE(load_or_clean_error(path, "truncated at " + std::to_string(n))) << "truncated at " << n << " loaded";
    if (::testing::Test::HasFailure()) return;
  }
}

// Random corruptions from a fixed seed (so a failure reproduces): flipped bits, random bytes and
// pickle opcodes dropped in.
void fuzz_flips(const std::string& bytes, const std::string& path, int iterations, uint64_t seed,
                const std::function<std::string(std::string)>& wrap) {
  std::mt19937_64 gen(seed);
  const char ops[] = "(.0t}]q\x85\x86\x87hjRQbsuaeXJKG\x8a\x93\x94";
  for (int it = 0; it < iterations; ++it) {
    std::string b = bytes;
    for (int e = 0, edits = 1 + static_cast<int>(gen() % 3); e < edits; ++e) {
      size_t pos = gen() % b.size();
      switch (gen() % 3) {
        case 0: b[pos] = static_cast<char>(b[pos] ^ (1 << (gen() % 8))); break;
        case 1: b[pos] = static_cast<char>(gen()); break;
        default: b[pos] = ops[gen() % (sizeof(ops) - 1)];
      }
    }
    write_file(path, wrap(b));
    load_or_clean_error(path, "corruption " + std::to_string(it));
    if (::testing::Test::HasFailure()) return;
  }
}

std::string same(std::string s) { return s; }

TEST(TorchCheckpoint, FuzzWholeFilesNeverCrash) {
  TempDir dir;
  std::map<std::string, std::string> files;
  for (const char* name : {"nested", "legacy", "views"}) files[name] = read_file(committed_dir() + "/" + name + ".pth");
  std::string t = pk::tensor(pk::pid("FloatStorage", "0", 6), 1, {2, 2}, {1, 2});
  files["zip64"] = checkpoint(pk::whole(pk::dict({{"t", t}})), {raw(std::vector<float>(6, 2.f))}, "little", true);
  for (const auto& [name, bytes] : files) {
    SCOPED_TRACE(name);
    ASSERT_FALSE(bytes.empty());
    write_file(dir.file("w.pth"), bytes);
    ASSERT_TRUE(load_or_clean_error(dir.file("w.pth"), "intact"));
    fuzz_truncations(bytes, dir.file("t.pth"), same);
    fuzz_flips(bytes, dir.file("f.pth"), 1500, 77, same);
  }
}

// The pickle itself corrupted inside an archive with correct CRCs, so the unpickler sees it all.
TEST(TorchCheckpoint, FuzzPicklesNeverCrash) {
  TempDir dir;
  for (const char* name : {"nested", "views", "dtypes", "protocol4"}) {
    SCOPED_TRACE(name);
    auto records = read_zip(read_file(committed_dir() + "/" + name + ".pth"));
    std::string pickle = data_pkl(records);
    auto wrap = [&](std::string p) {
      data_pkl(records) = std::move(p);
      return make_zip(records);
    };
    write_file(dir.file("w.pth"), wrap(pickle));
    ASSERT_TRUE(load_or_clean_error(dir.file("w.pth"), "rewrapped"));
    fuzz_truncations(pickle, dir.file("t.pth"), wrap);
    fuzz_flips(pickle, dir.file("f.pth"), 3000, 1234, wrap);
  }
}

}  // namespace
}  // namespace kiln
