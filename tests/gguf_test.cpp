// Tests of the GGUF reader: a fixture written by gguf-py (tests/fixtures/make_gguf.py) whose
// tensors are compared exactly with gguf-py's own dequantization, small files built byte by byte
// here for the error paths, and truncation/corruption fuzzing that must never crash.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "kiln/io/gguf.h"
#include "file_utils.h"
#include "test_utils.h"

namespace fs = std::filesystem;

namespace kiln {
namespace {

using io::FileError;
using io::GGMLType;
using io::GGUFFile;
using io::GGUFType;

using test::read_file;
using test::write_file;
// Each suite's temporary files get their own prefix.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("kiln_gguf") {}
};

// ---- hand-built files ----

// Appends little-endian GGUF fields.
struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    b += s;
    return *this;
  }
  Bytes& pad(size_t align) {
    while (b.size() % align) b.push_back('\0');
    return *this;
  }
};

// What a small hand-built file contains; tests change one field to break it.
struct Spec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  uint32_t q_type = 8;         // Q8_0
  uint64_t q_offset = 32;
  uint64_t q_dim0 = 32;
  uint64_t q_dim1 = 2;
  uint64_t key_len_extra = 0;  // added to the first key's length field
  uint64_t kv_count_extra = 0;
  bool truncate_data = false;
  bool duplicate_key = false;
  bool duplicate_tensor = false;
  int64_t alignment = -1;      // written as general.alignment (uint32) when >= 0
};

// Three tensors with known values: "w" F32 dims (4, 2) = 0..7; "q" Q8_0 dims (32, 2) with
// scale 0.5 and q = i - 32 (element i of 64); "h" Q4_0 dims (32,) with scale 0.25 and byte j =
// j | (15 - j) << 4.
std::string small_file(const Spec& s = {}) {
  Bytes h;
  h.b += s.magic;
  h.u32(s.version);
  h.u64(s.duplicate_tensor ? 4 : 3);
  uint64_t n_kv = 5 + (s.duplicate_key ? 1 : 0) + (s.alignment >= 0 ? 1 : 0);
  h.u64(n_kv + s.kv_count_extra);
  h.u64(std::string("a.u32").size() + s.key_len_extra);
  h.b += "a.u32";
  h.u32(4).u32(7);
  h.str("a.str").u32(8).str("hello");
  h.str("a.arr").u32(9).u32(5).u64(3).put<int32_t>(1).put<int32_t>(-2).put<int32_t>(3);
  h.str("a.nested").u32(9).u32(9).u64(2);
  h.u32(4).u64(1).u32(10);
  h.u32(8).u64(2).str("x").str("yz");
  h.str("a.f64").u32(12).put<double>(-0.125);
  if (s.duplicate_key) h.str("a.u32").u32(4).u32(8);
  if (s.alignment >= 0) h.str("general.alignment").u32(4).u32(static_cast<uint32_t>(s.alignment));

  h.str("w").u32(2).u64(4).u64(2).u32(0).u64(0);
  h.str("q").u32(2).u64(s.q_dim0).u64(s.q_dim1).u32(s.q_type).u64(s.q_offset);
  h.str("h").u32(1).u64(32).u32(2).u64(128);
  if (s.duplicate_tensor) h.str("w").u32(1).u64(1).u32(0).u64(0);
  h.pad(32);

  Bytes d;
  for (int i = 0; i < 8; ++i) d.put<float>(static_cast<float>(i));
  d.pad(32);
  for (int blk = 0; blk < 2; ++blk) {
    d.put<uint16_t>(0x3800);  // 0.5
    for (int i = 0; i < 32; ++i) d.put<int8_t>(static_cast<int8_t>(blk * 32 + i - 32));
  }
  d.pad(32);
  d.put<uint16_t>(0x3400);  // 0.25
  for (int j = 0; j < 16; ++j) d.put<uint8_t>(static_cast<uint8_t>(j | ((15 - j) << 4)));
  if (s.truncate_data) d.b.resize(d.b.size() - 1);
  return h.b + d.b;
}

// Runs fn and expects E with a message starting "[gguf]" that contains `part`.
template <class E, class Fn>
void expect_error(Fn fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one mentioning: " << part;
  } catch (const E& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("[gguf]", 0), 0u) << msg;
    EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg << "\nexpected to contain: " << part;
  }
}

// Opens `path` and loads every tensor: either everything succeeds or a kiln ValueError /
// RuntimeError with a "[gguf]" message comes out; anything else fails the test.
void open_and_load_or_clean_error(const std::string& path, const std::string& what) {
  try {
    GGUFFile g = GGUFFile::open(path);
    for (const auto& t : g.tensors()) {
      try {
        array a = g.load_tensor(t.name);
        EXPECT_EQ(a.size(), t.size) << what;
      } catch (const ValueError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("[gguf]", 0), 0u) << what << ": " << e.what();
      }
    }
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[gguf]", 0), 0u) << what << ": " << e.what();
  } catch (const RuntimeError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[gguf]", 0), 0u) << what << ": " << e.what();
  }
}

// Truncates `bytes` at every length up to `header_end` and at ~300 lengths beyond, and opens each.
void fuzz_truncations(const std::string& bytes, size_t header_end, const TempDir& dir) {
  std::string path = dir.file("trunc.gguf");
  size_t step = std::max<size_t>(1, (bytes.size() - std::min(header_end, bytes.size())) / 300);
  for (size_t n = 0; n < bytes.size(); n += (n < header_end ? 1 : step)) {
    write_file(path, bytes.substr(0, n));
    open_and_load_or_clean_error(path, "truncated at " + std::to_string(n));
    if (::testing::Test::HasFailure()) return;
  }
}

// Corrupts random bytes and words of the header/tensor-info region, a fixed number of times
// from a fixed seed (so a failure reproduces).
void fuzz_flips(const std::string& bytes, size_t header_end, const TempDir& dir, int iterations) {
  std::mt19937_64 gen(12345);
  std::string path = dir.file("flip.gguf");
  header_end = std::min(header_end, bytes.size());
  const uint64_t words[] = {0, 1, 2, 3, 31, 32, 255, 0x7fffffffu, 0xffffffffu, 0x80000000u,
                            0x7fffffffffffffffull, 0xffffffffffffffffull, 1ull << 40, 1ull << 62};
  for (int it = 0; it < iterations; ++it) {
    std::string b = bytes;
    int edits = 1 + static_cast<int>(gen() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t pos = gen() % header_end;
      switch (gen() % 3) {
        case 0:  // one random byte
          b[pos] = static_cast<char>(gen());
          break;
        case 1: {  // one bit
          b[pos] = static_cast<char>(b[pos] ^ (1 << (gen() % 8)));
          break;
        }
        default: {  // a word of a telling value
          uint64_t w = words[gen() % std::size(words)];
          size_t len = (gen() % 2) ? 8 : 4;
          for (size_t k = 0; k < len && pos + k < b.size(); ++k) b[pos + k] = static_cast<char>(w >> (8 * k));
        }
      }
    }
    write_file(path, b);
    open_and_load_or_clean_error(path, "flip iteration " + std::to_string(it));
    if (::testing::Test::HasFailure()) return;
  }
}

// ---- the gguf-py fixture ----

bool python_has_gguf() {
  static const bool ok = std::system("python3 -c 'import numpy, gguf' >/dev/null 2>&1") == 0;
  return ok;
}

struct RefTensor {
  std::string name, type;
  Shape shape;
  std::vector<float> values;
};

// Writes the fixture with a fresh seed; returns false (having skipped) without python.
struct PyFixture {
  TempDir dir;
  uint64_t seed = test::rng()() % 1000000;
  std::vector<RefTensor> refs;

  std::string gguf() const { return dir.file("fixture.gguf"); }

  bool make() {
    if (!python_has_gguf()) return false;
    fs::path script = fs::path(__FILE__).parent_path() / "fixtures" / "make_gguf.py";
    std::string cmd = "python3 '" + script.string() + "' '" + dir.path.string() + "' " + std::to_string(seed);
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << "fixture script failed: " << cmd;
      return false;
    }
    std::ifstream manifest(dir.file("manifest.txt"));
    RefTensor r;
    int ndim;
    while (manifest >> r.name >> r.type >> ndim) {
      r.shape.assign(static_cast<size_t>(ndim), 0);
      for (auto& d : r.shape) manifest >> d;
      std::string raw = read_file(dir.file(r.name + ".f32"));
      r.values.resize(raw.size() / 4);
      std::memcpy(r.values.data(), raw.data(), raw.size());
      EXPECT_EQ(static_cast<int64_t>(r.values.size()), shape_size(r.shape)) << r.name;
      refs.push_back(r);
    }
    EXPECT_GE(refs.size(), 10u);
    return true;
  }
};

#define MAKE_PY_FIXTURE(fx)                                                                     \
  PyFixture fx;                                                                                 \
  if (!fx.make()) {                                                                             \
    if (HasFailure()) return;                                                                   \
    GTEST_SKIP() << "python3 with numpy and gguf is not available (pip install numpy gguf)"; \
  }                                                                                             \
  SCOPED_TRACE("fixture seed " + std::to_string(fx.seed));

Dtype natural_of(const std::string& type) {
  if (type == "F16") return float16;
  if (type == "BF16") return bfloat16;
  if (type == "I32") return int32;
  return float32;
}

// The reference value rounded once to `dtype`, as a double.
double rounded(float v, Dtype dtype) {
  switch (dtype) {
    case Dtype::float16: return static_cast<float>(float16_t(v));
    case Dtype::bfloat16: return static_cast<float>(bfloat16_t(v));
    default: return v;
  }
}

void expect_values(array a, const RefTensor& r, Dtype dtype) {
  ASSERT_EQ(a.dtype(), dtype) << r.name;
  ASSERT_EQ(a.shape(), r.shape) << r.name;
  std::vector<double> got = test::to_doubles(a);
  ASSERT_EQ(got.size(), r.values.size());
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double want = rounded(r.values[i], dtype);
    if (!(got[i] == want) && !(std::isnan(got[i]) && std::isnan(want))) {
      if (bad++ < 5) ADD_FAILURE() << r.name << " as " << dtype << " [" << i << "]: got " << got[i] << ", want " << want;
    }
  }
  EXPECT_EQ(bad, 0u) << r.name << " as " << dtype;
}

TEST(GGUF, FixtureTensorsMatchGgufPy) {
  MAKE_PY_FIXTURE(fx);
  GGUFFile g = GGUFFile::open(fx.gguf());
  EXPECT_EQ(g.version(), 3u);
  ASSERT_EQ(g.tensors().size(), fx.refs.size());
  for (const auto& r : fx.refs) {
    SCOPED_TRACE(r.name);
    const auto& info = g.tensor(r.name);
    EXPECT_STREQ(io::ggml_type_name(info.type), r.type.c_str());
    // GGUF stores the fastest dimension first; kiln's shape is the reverse.
    Shape stored(info.dims.begin(), info.dims.end());
    Shape reversed(r.shape.rbegin(), r.shape.rend());
    EXPECT_EQ(stored, reversed);
    EXPECT_EQ(info.shape(), r.shape);
    EXPECT_EQ(info.offset % g.alignment(), 0u);
    expect_values(g.load_tensor(r.name), r, natural_of(r.type));
    if (r.type != "I32") {
      for (Dtype t : {float32, float16, bfloat16, float64}) expect_values(g.load_tensor(r.name, t), r, t);
    }
  }
}

TEST(GGUF, FixtureLoadAllAndVersion2) {
  MAKE_PY_FIXTURE(fx);
  // Version 2 has the same little-endian layout; patch the version field.
  std::string bytes = read_file(fx.gguf());
  bytes[4] = 2;
  std::string v2 = fx.dir.file("v2.gguf");
  write_file(v2, bytes);
  GGUFFile g = GGUFFile::open(v2);
  EXPECT_EQ(g.version(), 2u);
  auto all = g.load_all();
  ASSERT_EQ(all.size(), fx.refs.size());
  for (const auto& r : fx.refs) {
    ASSERT_TRUE(all.count(r.name)) << r.name;
    expect_values(all.at(r.name), r, natural_of(r.type));
  }
  auto as16 = g.load_all(float16);
  EXPECT_EQ(as16.at("t.q4_k").dtype(), float16);
  EXPECT_EQ(as16.at("t.i32").dtype(), float16);  // integer tensors go through a cast
  EXPECT_EQ(test::to_doubles(as16.at("t.i32")), test::to_doubles(all.at("t.i32")));
}

TEST(GGUF, FixtureMetadata) {
  MAKE_PY_FIXTURE(fx);
  GGUFFile g = GGUFFile::open(fx.gguf());
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.data_offset() % 64, 0u);
  EXPECT_EQ(g.get_string("general.architecture"), "kilntest");
  EXPECT_EQ(g.get_int("general.alignment"), 64);
  EXPECT_EQ(g.get_int("test.u8"), 200);
  EXPECT_EQ(g.get("test.u8").type, GGUFType::uint8);
  EXPECT_EQ(g.get_int("test.i8"), -100);
  EXPECT_EQ(g.get_int("test.u16"), 60000);
  EXPECT_EQ(g.get_int("test.i16"), -30000);
  EXPECT_EQ(g.get_int("test.u32"), 4000000000LL);
  EXPECT_EQ(g.get_int("test.i32"), -2000000000LL);
  EXPECT_EQ(g.get("test.u64").u, (1ull << 63) + 5);
  expect_error<ValueError>([&] { g.get_int("test.u64"); }, "does not fit in int64");
  EXPECT_EQ(g.get_float("test.u64"), static_cast<double>((1ull << 63) + 5));
  EXPECT_EQ(g.get_int("test.i64"), -(1LL << 40));
  EXPECT_EQ(g.get_float("test.f32"), 0.25);
  EXPECT_EQ(g.get("test.f32").type, GGUFType::float32);
  EXPECT_EQ(g.get_float("test.f64"), 3.141592653589793);
  EXPECT_EQ(g.get_bool("test.bool"), true);
  EXPECT_EQ(g.get_string("test.string"), "h\xc3\xa9llo w\xc3\xb6rld");
  EXPECT_EQ(g.get_string("test.empty_string"), "");
  EXPECT_EQ(g.get_string_array("test.arr_str"), (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_EQ(g.get_int_array("test.arr_i16"), (std::vector<int64_t>{-1, 2, -3}));
  EXPECT_EQ(g.get("test.arr_i16").elem_type, GGUFType::int16);
  EXPECT_EQ(g.get_int_array("test.arr_u8"), (std::vector<int64_t>{1, 2, 255}));
  EXPECT_EQ(g.get_int_array("test.arr_u64"), (std::vector<int64_t>{1LL << 40, 7}));
  EXPECT_EQ(g.get_float_array("test.arr_f32"), (std::vector<double>{0.5, -1.5}));
  EXPECT_EQ(g.get_float_array("test.arr_f64"), (std::vector<double>{1e300, -2.5}));
  const auto& b = g.get("test.arr_bool");
  ASSERT_EQ(b.count, 3u);
  EXPECT_EQ(b.elem_type, GGUFType::bool_);
  EXPECT_EQ(b.item(0).u, 1u);
  EXPECT_EQ(b.item(1).u, 0u);
  const auto& n = g.get("test.nested");
  ASSERT_EQ(n.elem_type, GGUFType::array);
  ASSERT_EQ(n.count, 2u);
  EXPECT_EQ(n.items[0].elem_type, GGUFType::int32);
  EXPECT_EQ(n.items[0].count, 3u);
  EXPECT_EQ(n.item(1).item(1).i, 5);
  EXPECT_EQ(g.keys().size(), 23u);  // general.architecture, general.alignment and 21 test keys
  EXPECT_TRUE(g.has_key("test.nested"));
  EXPECT_FALSE(g.has_key("test.nope"));
}

TEST(GGUF, FixtureFuzzNeverCrashes) {
  MAKE_PY_FIXTURE(fx);
  std::string bytes = read_file(fx.gguf());
  size_t header_end = GGUFFile::open(fx.gguf()).data_offset();
  fuzz_truncations(bytes, header_end, fx.dir);
  fuzz_flips(bytes, header_end, fx.dir, 2000);
}

// ---- hand-built files: always run, no Python needed ----

TEST(GGUF, SmallFileValues) {
  TempDir dir;
  std::string path = dir.file("small.gguf");
  write_file(path, small_file());
  GGUFFile g = GGUFFile::open(path);
  EXPECT_EQ(g.path(), path);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.get_int("a.u32"), 7);
  EXPECT_EQ(g.get_string("a.str"), "hello");
  EXPECT_EQ(g.get_int_array("a.arr"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(g.get_float("a.f64"), -0.125);
  EXPECT_EQ(g.get("a.nested").item(0).item(0).u, 10u);
  EXPECT_EQ(g.get("a.nested").item(1).strings, (std::vector<std::string>{"x", "yz"}));

  ASSERT_EQ(g.tensors().size(), 3u);
  array w = g.load_tensor("w");
  EXPECT_EQ(w.shape(), (Shape{2, 4}));
  EXPECT_EQ(test::to_doubles(w), (std::vector<double>{0, 1, 2, 3, 4, 5, 6, 7}));

  array q = g.load_tensor("q");
  EXPECT_EQ(q.shape(), (Shape{2, 32}));
  EXPECT_EQ(q.dtype(), float32);
  std::vector<double> want(64);
  for (int i = 0; i < 64; ++i) want[i] = (i - 32) * 0.5;
  EXPECT_EQ(test::to_doubles(q), want);

  array h = g.load_tensor("h", bfloat16);
  EXPECT_EQ(h.shape(), (Shape{32}));
  EXPECT_EQ(h.dtype(), bfloat16);
  std::vector<double> want_h(32);
  for (int j = 0; j < 16; ++j) {
    want_h[j] = (j - 8) * 0.25;  // low nibbles are elements 0..15
    want_h[16 + j] = (15 - j - 8) * 0.25;
  }
  EXPECT_EQ(test::to_doubles(h), want_h);
}

// ggml's own loop structure for the k-quants (dequantize_row_q4_K / _q6_K), written
// independently of the reader's decoders; checks them without Python.
float f16_at(const uint8_t* p) {
  uint16_t b;
  std::memcpy(&b, p, 2);
  return float16_t::from_bits(b);
}

void ref_q4_k(const uint8_t* x, float* y) {
  float d = f16_at(x), mn = f16_at(x + 2);
  const uint8_t* sc = x + 4;
  const uint8_t* q = x + 16;
  auto scale_min = [&](int j, uint8_t& a, uint8_t& m) {
    if (j < 4) {
      a = sc[j] & 63;
      m = sc[j + 4] & 63;
    } else {
      a = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4));
      m = static_cast<uint8_t>((sc[j + 4] >> 4) | ((sc[j] >> 6) << 4));
    }
  };
  int is = 0;
  for (int j = 0; j < 256; j += 64) {
    uint8_t a, m;
    scale_min(is, a, m);
    float d1 = d * a, m1 = mn * m;
    scale_min(is + 1, a, m);
    float d2 = d * a, m2 = mn * m;
    for (int l = 0; l < 32; ++l) {
      float v = d1 * static_cast<float>(q[l] & 0xF);
      *y++ = v - m1;
    }
    for (int l = 0; l < 32; ++l) {
      float v = d2 * static_cast<float>(q[l] >> 4);
      *y++ = v - m2;
    }
    q += 32;
    is += 2;
  }
}

void ref_q6_k(const uint8_t* x, float* y) {
  const uint8_t* ql = x;
  const uint8_t* qh = x + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
  float d = f16_at(x + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      int is = l / 16;
      int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = (d * sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = (d * sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = (d * sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = (d * sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

// Q4_1 by its definition: x = q * d + m, low nibbles first.
void ref_q4_1(const uint8_t* x, float* y) {
  float d = f16_at(x), m = f16_at(x + 2);
  for (int j = 0; j < 16; ++j) {
    float lo = d * static_cast<float>(x[4 + j] & 0xF), hi = d * static_cast<float>(x[4 + j] >> 4);
    y[j] = lo + m;
    y[j + 16] = hi + m;
  }
}

TEST(GGUF, QuantsMatchGgmlLoops) {
  struct Case {
    const char* name;
    uint32_t type;
    uint64_t row, rows;
    int block, bytes;
    std::vector<int> scale_at;  // byte offsets of f16 scales within a block
    void (*ref)(const uint8_t*, float*);
  };
  // Enough blocks that the decode is split across threads.
  std::vector<Case> cases = {
      {"k4", 12, 512, 64, 256, 144, {0, 2}, ref_q4_k},
      {"k6", 14, 256, 160, 256, 210, {208}, ref_q6_k},
      {"q41", 3, 64, 300, 32, 20, {0, 2}, ref_q4_1},
  };
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-0.2f, 0.2f);
  Bytes h;
  h.b += "GGUF";
  h.u32(3).u64(cases.size()).u64(0);
  std::vector<std::string> data;
  uint64_t offset = 0;
  for (const auto& c : cases) {
    std::string d;
    for (uint64_t blk = 0; blk < c.row * c.rows / c.block; ++blk) {
      std::string b(static_cast<size_t>(c.bytes), '\0');
      for (auto& ch : b) ch = static_cast<char>(byte(test::rng()));
      for (int at : c.scale_at) {
        uint16_t bits = float16_t(scale(test::rng())).bits;
        std::memcpy(&b[at], &bits, 2);
      }
      d += b;
    }
    h.str(c.name).u32(2).u64(c.row).u64(c.rows).u32(c.type).u64(offset);
    while (d.size() % 32) d.push_back('\0');
    offset += d.size();
    data.push_back(d);
  }
  h.pad(32);
  for (const auto& d : data) h.b += d;
  TempDir dir;
  std::string path = dir.file("k.gguf");
  write_file(path, h.b);
  GGUFFile g = GGUFFile::open(path);
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.name);
    int64_t n = static_cast<int64_t>(c.row * c.rows);
    std::vector<float> want(static_cast<size_t>(n));
    for (int64_t blk = 0; blk < n / c.block; ++blk) {
      c.ref(reinterpret_cast<const uint8_t*>(data[i].data()) + blk * c.bytes, want.data() + blk * c.block);
    }
    array a = g.load_tensor(c.name);
    ASSERT_EQ(a.shape(), (Shape{static_cast<int64_t>(c.rows), static_cast<int64_t>(c.row)}));
    std::vector<float> got = a.to_vector<float>();
    ASSERT_EQ(got.size(), want.size());
    size_t bad = 0;
    for (size_t k = 0; k < got.size(); ++k) {
      if (got[k] != want[k] && bad++ < 5) ADD_FAILURE() << "[" << k << "] got " << got[k] << ", want " << want[k];
    }
    EXPECT_EQ(bad, 0u);
  }
}

TEST(GGUF, GetterErrors) {
  TempDir dir;
  std::string path = dir.file("small.gguf");
  write_file(path, small_file());
  GGUFFile g = GGUFFile::open(path);
  expect_error<ValueError>([&] { g.get("nope"); }, "no metadata key 'nope'");
  expect_error<TypeError>([&] { g.get_int("a.str"); }, "is string, not an integer");
  expect_error<TypeError>([&] { g.get_string("a.u32"); }, "not a string");
  expect_error<TypeError>([&] { g.get_bool("a.u32"); }, "not a bool");
  expect_error<TypeError>([&] { g.get_string_array("a.arr"); }, "is array of int32, not an array of strings");
  expect_error<TypeError>([&] { g.get_int_array("a.u32"); }, "not an array of integers");
  EXPECT_EQ(g.get_int("nope", 42), 42);
  EXPECT_EQ(g.get_float("nope", 1.5), 1.5);
  EXPECT_EQ(g.get_bool("nope", true), true);
  EXPECT_EQ(g.get_string("nope", "x"), "x");
  EXPECT_EQ(g.get_int("a.u32", 42), 7);
  expect_error<ValueError>([&] { g.load_tensor("nope"); }, "no tensor named 'nope'");
  expect_error<TypeError>([&] { g.load_tensor("q", int32); }, "not int32");
}

TEST(GGUF, ErrorPaths) {
  TempDir dir;
  std::string path = dir.file("bad.gguf");
  auto open_spec = [&](const Spec& s) {
    write_file(path, small_file(s));
    return GGUFFile::open(path);
  };

  expect_error<FileError>([&] { GGUFFile::open(dir.file("missing.gguf")); }, "missing.gguf");
  expect_error<FileError>([&] { GGUFFile::open(dir.path.string()); }, "not a regular file");
  write_file(path, "");
  expect_error<ValueError>([&] { GGUFFile::open(path); }, "too short");

  Spec s;
  s.magic = "GGML";
  expect_error<ValueError>([&] { open_spec(s); }, "bad magic");
  s = {};
  s.version = 1;
  expect_error<ValueError>([&] { open_spec(s); }, "version 1 is not supported");
  s.version = 4;
  expect_error<ValueError>([&] { open_spec(s); }, "unsupported version 4");
  s.version = 3u << 24;
  expect_error<ValueError>([&] { open_spec(s); }, "big-endian");
  s = {};
  s.q_type = 99;
  expect_error<ValueError>([&] { open_spec(s); }, "tensor 'q' has unknown tensor type 99");
  s = {};
  s.truncate_data = true;
  expect_error<ValueError>([&] { open_spec(s); }, "data of tensor 'h' (18 bytes at data offset 128) runs past the end");
  s = {};
  s.q_offset = 1ull << 40;
  expect_error<ValueError>([&] { open_spec(s); }, "runs past the end");
  s = {};
  s.q_offset = 33;
  expect_error<ValueError>([&] { open_spec(s); }, "tensor 'q' offset 33 is not a multiple of the alignment 32");
  s = {};
  s.q_dim0 = 1ull << 40;
  s.q_dim1 = 1ull << 40;
  expect_error<ValueError>([&] { open_spec(s); }, "overflow");
  s = {};
  s.q_dim0 = 33;
  expect_error<ValueError>([&] { open_spec(s); }, "not a multiple of the block size 32");
  s = {};
  s.key_len_extra = 1ull << 50;
  expect_error<ValueError>([&] { open_spec(s); }, "past the end of the file");
  s = {};
  s.kv_count_extra = 1ull << 60;
  expect_error<ValueError>([&] { open_spec(s); }, "metadata count");
  s = {};
  s.duplicate_key = true;
  expect_error<ValueError>([&] { open_spec(s); }, "duplicate metadata key 'a.u32'");
  s = {};
  s.duplicate_tensor = true;
  expect_error<ValueError>([&] { open_spec(s); }, "duplicate tensor name 'w'");
  s = {};
  s.alignment = 48;
  expect_error<ValueError>([&] { open_spec(s); }, "general.alignment = 48 is not a power of two");
  s.alignment = 0;
  expect_error<ValueError>([&] { open_spec(s); }, "general.alignment = 0");

  // A known type without a decoder opens, and says so on load.
  s = {};
  s.q_type = 6;  // Q5_0: 22 bytes per 32, so 44 bytes fit where Q8_0's 68 did
  GGUFFile g = open_spec(s);
  EXPECT_EQ(g.tensor("q").type, GGMLType::Q5_0);
  expect_error<ValueError>([&] { g.load_tensor("q"); }, "type Q5_0, which this reader cannot decode");
  EXPECT_EQ(g.load_tensor("w").size(), 8);
}

TEST(GGUF, SmallFileFuzzNeverCrashes) {
  TempDir dir;
  std::string bytes = small_file();
  size_t header_end = bytes.size() - 146;  // the data section is the last 146 bytes
  fuzz_truncations(bytes, bytes.size(), dir);
  fuzz_flips(bytes, header_end, dir, 3000);
}

}  // namespace
}  // namespace kiln
