// Tests of the safetensors reader: fixtures written by the safetensors package
// (tests/fixtures/make_safetensors.py) compared byte for byte, small files built here for the
// error paths, and truncation/corruption fuzzing that must never crash.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/io/safetensors.h"
#include "file_utils.h"
#include "test_utils.h"

namespace fs = std::filesystem;

namespace kiln {
namespace {

using io::FileError;
using io::SafeTensorsFile;

using test::read_file;
using test::write_file;
// Each suite's temporary files get their own prefix.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("kiln_st") {}
};

// The bytes of an array, row-major.
std::string bytes_of(array a) {
  a = contiguous(a, Device(Device::cpu));
  a.eval();
  if (a.nbytes() == 0) return {};
  const char* p = static_cast<const char*>(a.buffer()->read_host()) + a.offset() * a.itemsize();
  return std::string(p, a.nbytes());
}

// A file of `header` (JSON text) and `data`.
std::string st_bytes(const std::string& header, const std::string& data) {
  uint64_t n = header.size();
  std::string b(reinterpret_cast<const char*>(&n), 8);
  return b + header + data;
}

// ---- hand-built files ----

// "a": F32 (2, 3) = 0..5; "b": I64 (2,) = -7, 9; "c": BOOL (3,) = 0, 2, 1; "z": F32 (0, 4).
std::string small_data() {
  std::string d;
  for (int i = 0; i < 6; ++i) {
    float v = static_cast<float>(i);
    d.append(reinterpret_cast<const char*>(&v), 4);
  }
  for (int64_t v : {int64_t(-7), int64_t(9)}) d.append(reinterpret_cast<const char*>(&v), 8);
  d += std::string("\0\2\1", 3);
  return d;
}
const char* kSmallHeader =
    R"({"__metadata__":{"format":"pt","k":"v"},)"
    R"("b":{"dtype":"I64","shape":[2],"data_offsets":[24,40]},)"
    R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
    R"("z":{"dtype":"F32","shape":[0,4],"data_offsets":[40,40]},)"
    R"("c":{"dtype":"BOOL","shape":[3],"data_offsets":[40,43]}}  )";

std::string small_file() { return st_bytes(kSmallHeader, small_data()); }

TEST(SafeTensors, SmallFileLoads) {
  TempDir dir;
  std::string path = dir.file("small.safetensors");
  write_file(path, small_file());
  auto f = SafeTensorsFile::open(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.data_offset(), 8 + std::string(kSmallHeader).size());
  ASSERT_EQ(f.tensors().size(), 4u);
  // In data order.
  EXPECT_EQ(f.tensors()[0].name, "a");
  EXPECT_EQ(f.tensors()[1].name, "b");
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"k", "v"}}));
  EXPECT_EQ(f.tensor("c").dtype_name, "BOOL");

  array a = f.load_tensor("a");
  EXPECT_EQ(a.dtype(), float32);
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(f.load_tensor("b").to_vector<int64_t>(), (std::vector<int64_t>{-7, 9}));
  EXPECT_EQ(f.load_tensor("c").to_vector<int>(), (std::vector<int>{0, 1, 1}));  // nonzero bytes are true
  EXPECT_EQ(f.load_tensor("z").shape(), (Shape{0, 4}));
  array a64 = f.load_tensor("a", float64);
  EXPECT_EQ(a64.dtype(), float64);
  EXPECT_EQ(a64.to_vector<double>(), (std::vector<double>{0, 1, 2, 3, 4, 5}));

  auto all = io::load_safetensors(path);
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(all.at("b").to_vector<int64_t>(), (std::vector<int64_t>{-7, 9}));
  // The arrays own their data: the mapping is gone once the file object is.
  EXPECT_EQ(all.at("a").to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));

  KILN_EXPECT_THROW_MSG(f.load_tensor("nope"), ValueError, "no tensor named 'nope'");
  KILN_EXPECT_THROW_MSG(SafeTensorsFile::open(dir.file("missing.safetensors")), FileError, "[safetensors]");
  KILN_EXPECT_THROW_MSG(SafeTensorsFile::open(dir.path.string()), FileError, "[safetensors]");
  // The errno of the failure travels with it (Python raises the OSError subclass it names).
  auto code_of = [](const std::string& path) {
    try {
      SafeTensorsFile::open(path);
    } catch (const FileError& e) {
      return e.code;
    }
    return -1;
  };
  EXPECT_EQ(code_of(dir.file("missing.safetensors")), ENOENT);
  EXPECT_EQ(code_of(dir.path.string()), EISDIR);
}

TEST(SafeTensors, EmptyHeaderIsValid) {
  TempDir dir;
  write_file(dir.file("e.safetensors"), st_bytes("{}", ""));
  auto f = SafeTensorsFile::open(dir.file("e.safetensors"));
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_TRUE(f.metadata().empty());
  write_file(dir.file("n.safetensors"), st_bytes(R"({"__metadata__":null})", ""));
  EXPECT_TRUE(SafeTensorsFile::open(dir.file("n.safetensors")).metadata().empty());
}

// Opens a file of `header` + `data` and expects ValueError "[safetensors] '<path>': ...<needle>".
void expect_bad(const std::string& bytes, const std::string& needle) {
  TempDir dir;
  std::string path = dir.file("bad.safetensors");
  write_file(path, bytes);
  std::string prefix = "[safetensors] '" + path + "': ";
  try {
    SafeTensorsFile::open(path);
    ADD_FAILURE() << "expected ValueError containing '" << needle << "'";
  } catch (const ValueError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

std::string one(const std::string& entry, const std::string& data) { return st_bytes("{\"t\":" + entry + "}", data); }

TEST(SafeTensors, ErrorPaths) {
  std::string d8(8, '\1');
  expect_bad("", "too short");
  expect_bad(std::string(7, '\0'), "too short");
  {
    std::string b = small_file();
    uint64_t n = b.size();  // claims more header than the file holds
    std::memcpy(b.data(), &n, 8);
    expect_bad(b, "runs past the end of the file");
  }
  {
    std::string b = small_file();
    b.resize(b.size() - 1);
    expect_bad(b, "lies outside the data section");
  }
  expect_bad(st_bytes("{\"t\": {", ""), "not valid JSON");
  expect_bad(st_bytes("not json", ""), "not valid JSON");
  expect_bad(st_bytes("[1, 2]", ""), "not a JSON object");
  expect_bad(st_bytes("{\"a\":1} trailing", ""), "not valid JSON");
  expect_bad(st_bytes("{\"s\":\"\xff\xfe\"}", ""), "not valid JSON");  // not UTF-8
  expect_bad(one(R"({"dtype":"Q4","shape":[2],"data_offsets":[0,8]})", d8), "unknown dtype 'Q4'");
  expect_bad(one(R"({"dtype":7,"shape":[2],"data_offsets":[0,8]})", d8), "dtype that is not a string");
  expect_bad(one(R"({"shape":[2],"data_offsets":[0,8]})", d8), "has no \"dtype\"");
  expect_bad(one(R"({"dtype":"F32","data_offsets":[0,8]})", d8), "has no \"shape\"");
  expect_bad(one(R"({"dtype":"F32","shape":[2]})", d8), "has no \"data_offsets\"");
  expect_bad(one(R"([1])", d8), "must be an object");
  expect_bad(one(R"({"dtype":"F32","shape":[-2],"data_offsets":[0,8]})", d8), "non-negative integer");
  expect_bad(one(R"({"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})", d8), "non-negative integer");
  expect_bad(one(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})", d8), "shape that is not an array");
  expect_bad(one(R"({"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]})", d8), "overflows");
  expect_bad(one(R"({"dtype":"F32","shape":[3],"data_offsets":[0,8]})", d8), "needs 12 bytes");
  expect_bad(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,0]})", d8), "end before they begin");
  expect_bad(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})", d8), "not [begin, end]");
  expect_bad(one(R"({"dtype":"F32","shape":[2],"data_offsets":[8,16]})", d8 + d8), "gap");
  expect_bad(one(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})", d8 + "x"), "cover only 8");
  expect_bad(one(R"({"dtype":"F32","shape":[4],"data_offsets":[0,16]})", d8), "outside the data section");
  expect_bad(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                      d8),
             "overlaps");
  expect_bad(st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                      R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                      d8),
             "has the key 'a' twice");
  expect_bad(st_bytes(R"({"__metadata__":{"k":1}})", ""), "is not a string");
  expect_bad(st_bytes(R"({"__metadata__":[]})", ""), "__metadata__ must be an object");
  expect_bad(st_bytes(std::string(20, '[') + std::string(20, ']'), ""), "nests deeper");
}

// ---- fuzzing ----

// Opens and loads `path`; only kiln's own exceptions may come out, and they must name the reader.
void open_and_load_or_clean_error(const std::string& path, const std::string& what) {
  try {
    auto f = SafeTensorsFile::open(path);
    for (const auto& t : f.tensors()) {
      try {
        array a = f.load_tensor(t.name);
        EXPECT_EQ(static_cast<uint64_t>(a.nbytes()), t.end - t.begin) << what;
      } catch (const TypeError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("[safetensors]", 0), 0u) << what << ": " << e.what();
      }
    }
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[safetensors]", 0), 0u) << what << ": " << e.what();
  } catch (const RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[safetensors]", 0), 0u) << what << ": " << e.what();
  }
}

void fuzz_truncations(const std::string& bytes, const TempDir& dir) {
  std::string path = dir.file("trunc.safetensors");
  size_t step = std::max<size_t>(1, bytes.size() / 400);
  for (size_t n = 0; n < bytes.size(); n += (n < 300 ? 1 : step)) {
    write_file(path, bytes.substr(0, n));
    open_and_load_or_clean_error(path, "truncated at " + std::to_string(n));
    if (::testing::Test::HasFailure()) return;
  }
}

// Corrupts bytes of the length and header region, from a fixed seed so a failure reproduces.
void fuzz_flips(const std::string& bytes, const TempDir& dir, int iterations) {
  std::mt19937_64 gen(4242);
  std::string path = dir.file("flip.safetensors");
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  size_t header_end = std::min<size_t>(8 + n, bytes.size());
  const char* tokens[] = {"{", "}", "[", "]", "\"", ",", ":", "-", "0", "9", "e", "\\", "\\u", "null", "1e400"};
  for (int it = 0; it < iterations; ++it) {
    std::string b = bytes;
    int edits = 1 + static_cast<int>(gen() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t pos = gen() % header_end;
      switch (gen() % 4) {
        case 0: b[pos] = static_cast<char>(gen()); break;
        case 1: b[pos] = static_cast<char>(b[pos] ^ (1 << (gen() % 8))); break;
        case 2: {  // a JSON token
          std::string tok = tokens[gen() % std::size(tokens)];
          for (size_t k = 0; k < tok.size() && pos + k < header_end; ++k) b[pos + k] = tok[k];
          break;
        }
        default:  // a digit, to move offsets and shapes
          b[pos] = static_cast<char>('0' + gen() % 10);
      }
    }
    write_file(path, b);
    open_and_load_or_clean_error(path, "flip iteration " + std::to_string(it));
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(SafeTensors, SmallFileFuzzNeverCrashes) {
  TempDir dir;
  std::string bytes = small_file();
  fuzz_truncations(bytes, dir);
  fuzz_flips(bytes, dir, 4000);
}

// ---- the safetensors-package fixture ----

bool python_has_safetensors() {
  static const bool ok = std::system("python3 -c 'import numpy, safetensors' >/dev/null 2>&1") == 0;
  return ok;
}

struct RefTensor {
  std::string group, name, dtype;
  Shape shape;
  std::string bytes;
};

struct PyFixture {
  TempDir dir;
  uint64_t seed = test::rng()() % 1000000;
  std::vector<RefTensor> refs;

  bool make() {
    if (!python_has_safetensors()) return false;
    fs::path script = fs::path(__FILE__).parent_path() / "fixtures" / "make_safetensors.py";
    std::string cmd = "python3 '" + script.string() + "' '" + dir.path.string() + "' " + std::to_string(seed);
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << "fixture script failed: " << cmd;
      return false;
    }
    std::ifstream manifest(dir.file("manifest.txt"));
    RefTensor r;
    int ndim;
    while (manifest >> r.group >> r.name >> r.dtype >> ndim) {
      r.shape.assign(static_cast<size_t>(ndim), 0);
      for (auto& d : r.shape) manifest >> d;
      r.bytes = read_file(dir.file("ref/" + r.group + "__" + r.name + ".bin"));
      refs.push_back(r);
    }
    EXPECT_GE(refs.size(), 25u);
    return true;
  }
};

#define MAKE_PY_FIXTURE(fx)                                                                                 \
  PyFixture fx;                                                                                             \
  if (!fx.make()) {                                                                                         \
    if (HasFailure()) return;                                                                               \
    GTEST_SKIP() << "python3 with numpy and safetensors is not available (pip install numpy safetensors)"; \
  }                                                                                                         \
  SCOPED_TRACE("fixture seed " + std::to_string(fx.seed));

Dtype dtype_of_name(const std::string& n) {
  static const std::map<std::string, Dtype> m{
      {"BOOL", bool_},   {"U8", uint8},     {"I8", int8},       {"U16", uint16},  {"I16", int16},
      {"U32", uint32},   {"I32", int32},    {"U64", uint64},    {"I64", int64},   {"F16", float16},
      {"BF16", bfloat16}, {"F32", float32}, {"F64", float64},   {"C64", complex64}};
  return m.at(n);
}

void expect_matches(const RefTensor& r, const array& a) {
  EXPECT_EQ(a.dtype(), dtype_of_name(r.dtype)) << r.name;
  EXPECT_EQ(a.shape(), r.shape) << r.name;
  EXPECT_TRUE(bytes_of(a) == r.bytes) << r.name << ": values differ";
}

TEST(SafeTensors, FixtureEveryDtypeExact) {
  MAKE_PY_FIXTURE(fx);
  auto f = SafeTensorsFile::open(fx.dir.file("all.safetensors"));
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{
                              {"format", "np"}, {"seed", std::to_string(fx.seed)}, {"note", "h\u00e9llo \u2713"}}));
  auto all = io::load_safetensors(fx.dir.file("all.safetensors"));
  size_t n = 0;
  for (const auto& r : fx.refs) {
    if (r.group != "all") continue;
    ++n;
    ASSERT_TRUE(f.has_tensor(r.name)) << r.name;
    EXPECT_EQ(f.tensor(r.name).dtype_name, r.dtype);
    expect_matches(r, f.load_tensor(r.name));
    expect_matches(r, all.at(r.name));
    // A cast on load gives what astype gives.
    if (r.dtype != "C64" && r.dtype != "BOOL") {
      array a = f.load_tensor(r.name, float64);
      EXPECT_EQ(a.dtype(), float64);
      auto want = test::to_doubles(f.load_tensor(r.name));
      auto got = a.to_vector<double>();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))) << r.name << " [" << i << "]";
      }
    }
  }
  EXPECT_EQ(all.size(), n);
  EXPECT_EQ(f.tensors().size(), n);
}

TEST(SafeTensors, FixtureF8IsListedButNotLoadable) {
  MAKE_PY_FIXTURE(fx);
  auto f = SafeTensorsFile::open(fx.dir.file("f8.safetensors"));
  EXPECT_EQ(f.tensor("f8").dtype_name, "F8_E4M3");
  EXPECT_FALSE(f.tensor("f8").dtype.has_value());
  KILN_EXPECT_THROW_MSG(f.load_tensor("f8"), TypeError, "F8_E4M3");
  for (const auto& r : fx.refs) {
    if (r.group == "f8" && r.name == "ok") expect_matches(r, f.load_tensor("ok"));
  }
}

TEST(SafeTensors, FixtureSharded) {
  MAKE_PY_FIXTURE(fx);
  std::string dir = fx.dir.file("sharded");
  for (const std::string& p : {dir, dir + "/model.safetensors.index.json"}) {
    auto w = io::load_sharded(p);
    size_t n = 0;
    for (const auto& r : fx.refs) {
      if (r.group != "sharded") continue;
      ++n;
      ASSERT_TRUE(w.count(r.name)) << r.name;
      expect_matches(r, w.at(r.name));
    }
    EXPECT_EQ(w.size(), n);
  }
  // A dtype for every tensor.
  for (const auto& [name, a] : io::load_sharded(dir, float32)) EXPECT_EQ(a.dtype(), float32) << name;
}

TEST(SafeTensors, FixtureFuzzNeverCrashes) {
  MAKE_PY_FIXTURE(fx);
  std::string bytes = read_file(fx.dir.file("all.safetensors"));
  fuzz_truncations(bytes, fx.dir);
  fuzz_flips(bytes, fx.dir, 2000);
}

// ---- sharded checkpoints built here ----

TEST(SafeTensors, ShardedErrors) {
  TempDir dir;
  write_file(dir.file("s1.safetensors"), small_file());
  write_file(dir.file("model.safetensors.index.json"), R"({"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors"}})");
  auto w = io::load_sharded(dir.path.string());
  EXPECT_EQ(w.size(), 2u);  // only what the index names
  EXPECT_EQ(w.at("a").to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));

  std::string index = dir.file("model.safetensors.index.json");
  auto expect_index_bad = [&](const std::string& text, const std::string& needle) {
    write_file(index, text);
    try {
      io::load_sharded(index);
      ADD_FAILURE() << "expected ValueError containing '" << needle << "'";
    } catch (const ValueError& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.rfind("[safetensors] '" + index + "': ", 0), 0u) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  expect_index_bad(R"({"weight_map": {"q": "s1.safetensors"}})", "has no such tensor");
  expect_index_bad(R"({"weight_map": {"a": "../s1.safetensors"}})", "not a file beside the index");
  expect_index_bad(R"({"weight_map": {"a": "/etc/passwd"}})", "not a file beside the index");
  expect_index_bad(R"({"weight_map": {"a": 3}})", "is not a file name");
  expect_index_bad(R"({"metadata": {}})", "no \"weight_map\"");
  expect_index_bad(R"({"weight_map": )", "not valid JSON");
  write_file(index, R"({"weight_map": {"a": "missing.safetensors"}})");
  KILN_EXPECT_THROW_MSG(io::load_sharded(index), FileError, "[safetensors]");

  // A directory with a single model.safetensors and no index.
  TempDir single;
  write_file(single.file("model.safetensors"), small_file());
  EXPECT_EQ(io::load_sharded(single.path.string()).size(), 4u);
  TempDir empty;
  KILN_EXPECT_THROW_MSG(io::load_sharded(empty.path.string()), FileError, "[safetensors]");
}

}  // namespace
}  // namespace kiln
