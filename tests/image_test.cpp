// Image decoding (kiln/io/image) against Pillow, and the preprocessing transforms (kiln/vision)
// against torchvision. tests/fixtures/image_reference.py computes the references at test time: it
// writes images of every kind (random content, odd sizes, a fresh seed each run) and Pillow's
// pixels for them and for the real photos, and torchvision's outputs for inputs this test writes.
//
// The photos: $KILN_PHOTOS, else models/photos/ (scripts/get_photos.sh unpacks them from the
// Debian packages python3-skimage, darknet and python-matplotlib-data). Tests that need
// something absent (the photos, Pillow, torchvision) skip visibly.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "kiln/errors.h"
#include "kiln/io/image.h"
#include "kiln/io/mapped_file.h"
#include "kiln/vision/transforms.h"
#include "file_utils.h"
#include "test_utils.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using io::ImageOptions;
using test::read_file;
using test::rng;
using test::write_file;

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("kiln_img") {}
};

fs::path repo_root() { return fs::path(__FILE__).parent_path().parent_path(); }

// The photo files, sorted by name; empty when there are none.
std::vector<std::string> photos() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("KILN_PHOTOS")) dirs.emplace_back(env);
  dirs.push_back("models/photos");
  dirs.push_back(repo_root() / "models" / "photos");
  for (const auto& d : dirs) {
    if (!fs::is_regular_file(d / "dog.jpg")) continue;
    std::vector<std::string> files;
    for (const auto& f : fs::directory_iterator(d))
      if (f.is_regular_file()) files.push_back(f.path().string());
    std::sort(files.begin(), files.end());
    return files;
  }
  return {};
}

std::string photo(const std::string& name) {
  for (const auto& p : photos())
    if (fs::path(p).filename() == name) return p;
  return {};
}

// One run of the fixture script on `job`; its outputs stay in `dir`.
struct Reference {
  bool ok = false;
  std::string why;  // the skip reason
  json result;
  uint64_t seed = 0;
  std::unique_ptr<TempDir> dir;
  std::string file(const std::string& name) const { return dir->file(name); }
};

// `missing` is the skip reason when python3 or a package the script needs is absent.
void run_reference(Reference& r, const json& job, const std::string& missing) {
  fs::path script = repo_root() / "tests" / "fixtures" / "image_reference.py";
  write_file(r.dir->file("job.json"), job.dump());
  std::string cmd =
      "python3 '" + script.string() + "' '" + r.dir->file("job.json") + "' '" + r.dir->path.string() + "'";
  int status = std::system(cmd.c_str());
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 3 || code == 127) {  // the script's "package missing", or no python3
    r.why = missing;
    return;
  }
  if (code != 0) {
    r.why = "reference script failed: " + cmd;
    return;
  }
  r.result = json::parse(read_file(r.dir->file("result.json")));
  r.ok = true;
}

#define NEED_REFERENCE(r, make)                                     \
  const auto& r = make();                                           \
  if (!r.ok) {                                                      \
    if (r.why.rfind("reference script", 0) == 0) FAIL() << r.why;   \
    GTEST_SKIP() << r.why;                                          \
  }

template <class T>
std::vector<T> read_raw(const std::string& path) {
  std::string bytes = read_file(path);
  std::vector<T> v(bytes.size() / sizeof(T));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
  return v;
}

Shape shape_of(const json& j) { return j.get<Shape>(); }

// Compares uint8 pixels; at most `tolerance` apart, reporting the first difference.
::testing::AssertionResult same_pixels(array got, const Shape& want_shape, const std::vector<uint8_t>& want,
                                       int tolerance = 0) {
  if (got.shape() != want_shape) {
    std::ostringstream os;
    os << "shape " << got.shape() << ", expected " << want_shape;
    return ::testing::AssertionFailure() << os.str();
  }
  std::vector<uint8_t> g = got.to_vector<uint8_t>();
  if (g.size() != want.size()) return ::testing::AssertionFailure() << "reference has " << want.size() << " values";
  int64_t differ = 0, worst = 0, first = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    int d = std::abs(int(g[i]) - int(want[i]));
    if (d) {
      ++differ;
      if (first < 0) first = static_cast<int64_t>(i);
    }
    worst = std::max<int64_t>(worst, d);
  }
  if (worst <= tolerance) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differ << " of " << g.size() << " values differ, by up to " << worst
                                       << "; first at flat index " << first << ": " << int(g[first]) << " vs "
                                       << int(want[first]);
}

// ================= decoding =================

const Reference& decode_reference() {
  static Reference r = [] {
    Reference r;
    r.dir = std::make_unique<TempDir>();
    r.seed = rng()() % 1000000007;
    json job{{"generate", r.seed}, {"decode", photos()}};
    run_reference(r, job, "python3 with Pillow and numpy is not available (pip install pillow numpy)");
    return r;
  }();
  return r;
}

// Checks kiln against every Pillow result whose path passes `pick`; returns how many were checked.
int check_decodes(const Reference& r, const std::function<bool(const std::string&)>& pick) {
  int n = 0;
  const json& entries = r.result["decode"];
  for (size_t i = 0; i < entries.size(); ++i) {
    const json& e = entries[i];
    std::string path = e["path"];
    if (!pick(path)) continue;
    ++n;
    SCOPED_TRACE(path + " (seed " + std::to_string(r.seed) + ")");
    if (e.contains("error")) {
      KILN_EXPECT_THROW_MSG(io::load_image(path), ValueError, "[image] '" + path + "': ");
      continue;
    }
    array rgb = io::load_image(path);
    EXPECT_EQ(rgb.dtype(), uint8);
    EXPECT_TRUE(same_pixels(rgb, shape_of(e["rgb"]), read_raw<uint8_t>(r.file("dec_" + std::to_string(i) + ".rgb"))))
        << "RGB of " << e["format"] << " " << e["mode"];
    ImageOptions native;
    native.native_channels = true;
    EXPECT_TRUE(same_pixels(io::load_image(path, native), shape_of(e["native"]),
                            read_raw<uint8_t>(r.file("dec_" + std::to_string(i) + ".native"))))
        << "native channels of " << e["format"] << " " << e["mode"];
  }
  return n;
}

bool is_generated(const std::string& p) { return fs::path(p).parent_path().filename() == "gen"; }

TEST(ImageDecode, MatchesPillowOnPhotos) {
  if (photos().empty()) GTEST_SKIP() << "no photos (run scripts/get_photos.sh, or set KILN_PHOTOS)";
  NEED_REFERENCE(r, decode_reference);
  int n = check_decodes(r, [](const std::string& p) { return !is_generated(p); });
  EXPECT_EQ(n, static_cast<int>(photos().size()));
}

TEST(ImageDecode, MatchesPillowOnGeneratedImages) {
  NEED_REFERENCE(r, decode_reference);
  int n = check_decodes(r, is_generated);
  EXPECT_GE(n, 40);  // every kind the script writes
}

std::string generated(const Reference& r, const std::string& name) {
  for (const auto& p : r.result["generated"])
    if (fs::path(p.get<std::string>()).filename() == name) return p;
  ADD_FAILURE() << name << " was not generated";
  return {};
}

TEST(ImageDecode, MemoryEqualsFile) {
  NEED_REFERENCE(r, decode_reference);
  for (const char* name : {"q90_420.jpg", "exif6be.jpg", "palette4_trns.png", "rgba16_interlaced.png"}) {
    std::string path = generated(r, name);
    std::string bytes = read_file(path);
    for (bool native : {false, true}) {
      ImageOptions o;
      o.native_channels = native;
      array a = io::load_image(path, o), b = io::decode_image(bytes.data(), bytes.size(), o);
      EXPECT_EQ(a.shape(), b.shape()) << name;
      EXPECT_EQ(a.to_vector<uint8_t>(), b.to_vector<uint8_t>()) << name;
    }
  }
}

TEST(ImageDecode, ExifOrientation) {
  NEED_REFERENCE(r, decode_reference);
  // The eight files hold the same picture and JPEG data; only the EXIF tag differs.
  ImageOptions raw;
  raw.apply_exif_orientation = false;
  std::vector<uint8_t> upright = io::load_image(generated(r, "exif1le.jpg"), raw).to_vector<uint8_t>();
  for (int o = 1; o <= 8; ++o) {
    for (const char* endian : {"le", "be"}) {
      std::string path = generated(r, "exif" + std::to_string(o) + endian + ".jpg");
      io::MappedFile f(path);
      EXPECT_EQ(io::jpeg_exif_orientation(f.data(), f.size()), o) << path;
      array a = io::load_image(path, raw);
      EXPECT_EQ(a.to_vector<uint8_t>(), upright) << path << ": orientation off must leave the pixels as stored";
      Shape s = io::load_image(path).shape();
      EXPECT_EQ(s[0], o >= 5 ? a.shape(1) : a.shape(0)) << path;
    }
  }
}

// ---- the EXIF parser on hand-made segments ----

std::string be16(unsigned v) { return {char(v >> 8), char(v & 0xFF)}; }
std::string le16(unsigned v) { return {char(v & 0xFF), char(v >> 8)}; }
std::string le32(uint32_t v) { return le16(v & 0xFFFF) + le16(v >> 16); }

// A TIFF block (little-endian) whose IFD0 holds the given 12-byte entries.
std::string tiff(const std::vector<std::string>& entries, uint32_t ifd_offset = 8) {
  std::string t = std::string("II") + le16(42) + le32(ifd_offset) + le16(static_cast<unsigned>(entries.size()));
  for (const auto& e : entries) t += e;
  return t + le32(0);
}
std::string entry(unsigned tag, unsigned type, uint32_t count, uint32_t value) {
  return le16(tag) + le16(type) + le32(count) + le32(value);
}
std::string app1(const std::string& payload) {
  return "\xFF\xE1" + be16(static_cast<unsigned>(payload.size() + 2)) + payload;
}
std::string jpeg_with(const std::string& segments) {
  return std::string("\xFF\xD8", 2) + segments + "\xFF\xDA" + be16(2);
}

int orientation_of(const std::string& bytes) {
  // A copy of exactly the bytes, so that reading past them is caught (under AddressSanitizer).
  std::vector<uint8_t> v(bytes.begin(), bytes.end());
  return io::jpeg_exif_orientation(v.data(), v.size());
}

TEST(ImageExif, ParserReadsTheTagAndStaysInBounds) {
  const std::string exif = std::string("Exif\0\0", 6);
  const std::string make = entry(0x010F, 2, 4, 0x41424344);
  std::uniform_int_distribution<int> pick(2, 8);
  const int o = pick(rng());
  const std::string good = jpeg_with(app1(exif + tiff({make, entry(0x0112, 3, 1, o)})));
  EXPECT_EQ(orientation_of(good), o);
  // The first value of the first readable entry counts when it is an integer, as Pillow reads it.
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 4, 1, o)})))), o);   // LONG
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 8, 1, o)})))), o);   // SSHORT
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 3, 2, o)})))), o);   // two values
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 1, 1, o)})))), 1);   // BYTE: bytes
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 5, 1, 8)})))), 1);   // RATIONAL
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 3, 0, o)})))), 1);   // no value
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 3, 1, 9)})))), 1);   // out of range
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 3, 1, o), entry(0x0112, 3, 1, 2)})))), o);
  // Unknown types and data past the end are skipped, and a later entry counts instead.
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 99, 1, 2), entry(0x0112, 3, 1, o)})))), o);
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 3, 40, 9999), entry(0x0112, 3, 1, o)})))), o);
  // Three values do not fit in the entry: they are read from their offset.
  std::string three = tiff({entry(0x0112, 3, 3, 8 + 2 + 12 + 4)}) + le16(o) + le16(1) + le16(1);
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + three))), o);
  // Pillow joins split EXIF segments: the IFD may continue in the second one.
  std::string t = tiff({make, entry(0x0112, 3, 1, o)});
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + t.substr(0, 20)) + app1(exif + t.substr(20)))), o);
  // Other segments and fill bytes before it are skipped; EXIF after the scan is not looked at.
  EXPECT_EQ(orientation_of(jpeg_with("\xFF\xE0" + be16(6) + "JFIF" + "\xFF\xFF" + app1(exif + t))), o);
  EXPECT_EQ(orientation_of(jpeg_with("") + app1(exif + t)), 1);
  // Broken data reads as no orientation: bad byte order, IFD offset or entry count past the end,
  // a segment length past the end, no "Exif" prefix.
  std::string bad_order = t;
  bad_order[0] = 'X';
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + bad_order))), 1);
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + tiff({entry(0x0112, 3, 1, o)}, 0xFFFFFFF0u)))), 1);
  // An entry count past the end: the entries that are there still count, as in Pillow.
  std::string many = t;
  many[8] = char(0xFF);
  many[9] = char(0xFF);
  EXPECT_EQ(orientation_of(jpeg_with(app1(exif + many))), o);
  std::string long_segment = jpeg_with(app1(exif + t));
  long_segment[4] = char(0x7F);
  EXPECT_EQ(orientation_of(long_segment), 1);
  EXPECT_EQ(orientation_of(jpeg_with(app1("Exix\0\0" + t))), 1);
  // Every prefix, and every single-byte change, of a valid file stays in bounds.
  for (size_t n = 0; n <= good.size(); ++n) {
    int v = orientation_of(good.substr(0, n));
    EXPECT_TRUE(v == 1 || v == o) << "prefix " << n;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string m = good;
    m[i] = char(byte(rng()));
    int v = orientation_of(m);
    EXPECT_TRUE(v >= 1 && v <= 8) << "byte " << i;
  }
}

// ---- errors ----

TEST(ImageDecode, ErrorsNameTheFile) {
  TempDir dir;
  KILN_EXPECT_THROW_MSG(io::load_image(dir.file("missing.jpg")), io::FileError, "[image] cannot open '");
  KILN_EXPECT_THROW_MSG(io::load_image(dir.path.string()), io::FileError, "[image]");
  write_file(dir.file("empty.png"), "");
  KILN_EXPECT_THROW_MSG(io::load_image(dir.file("empty.png")), ValueError,
                        "[image] '" + dir.file("empty.png") + "': the file is empty");
  write_file(dir.file("text.jpg"), "hello, this is not an image");
  KILN_EXPECT_THROW_MSG(io::load_image(dir.file("text.jpg")), ValueError, "not a JPEG or PNG file");
  write_file(dir.file("anim.gif"), "GIF89a\x01\x00\x01\x00");
  KILN_EXPECT_THROW_MSG(io::load_image(dir.file("anim.gif")), ValueError, "unsupported image format GIF");
  write_file(dir.file("head.jpg"), "\xFF\xD8\xFF\xE0");
  KILN_EXPECT_THROW_MSG(io::load_image(dir.file("head.jpg")), ValueError, "invalid JPEG data");
  write_file(dir.file("head.png"), "\x89PNG\r\n\x1a\n");
  KILN_EXPECT_THROW_MSG(io::load_image(dir.file("head.png")), ValueError, "invalid PNG data");
  KILN_EXPECT_THROW_MSG(io::decode_image("\xFF\xD8\xFF", 3, {}, "buffer"), ValueError, "[image] 'buffer': ");
}

TEST(ImageDecode, RefusesHugeImagesBeforeAllocating) {
  NEED_REFERENCE(r, decode_reference);
  for (const char* name : {"q90_420.jpg", "rgb8.png"}) {
    std::string path = generated(r, name);
    array a = io::load_image(path);
    ImageOptions o;
    o.max_pixels = a.shape(0) * a.shape(1) - 1;
    KILN_EXPECT_THROW_MSG(io::load_image(path, o), ValueError, "more than the limit of");
    o.max_pixels += 1;
    EXPECT_EQ(io::load_image(path, o).shape(), a.shape());
  }
}

// End of the image data: past the JPEG's last EOI marker or the PNG's IEND chunk; bytes after it
// are not needed.
// Where a JPEG's image ends: just past the EOI that closes it, found by walking its segments (a
// thumbnail inside an APP segment or a second image appended after the EOI has FF D9 of its own).
size_t jpeg_end(const std::string& b) {
  auto at = [&](size_t i) { return static_cast<uint8_t>(b[i]); };
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (at(i) != 0xFF) return b.size();
    const uint8_t m = at(i + 1);
    if (m == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (m == 0xD9) return i + 2;
    const size_t len = static_cast<size_t>(at(i + 2)) << 8 | at(i + 3);
    i += 2 + len;
    if (m == 0xDA) {  // entropy-coded data runs to the next marker that is not a stuffed byte or RSTn
      while (i + 1 < b.size() && !(at(i) == 0xFF && at(i + 1) != 0x00 && (at(i + 1) < 0xD0 || at(i + 1) > 0xD7))) ++i;
    }
  }
  return b.size();
}

size_t data_end(const std::string& bytes) {
  if (bytes.rfind("\xFF\xD8", 0) == 0) return jpeg_end(bytes);
  return bytes.rfind("IEND") + 8;
}

uint32_t crc32(const char* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<uint8_t>(p[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

// Recomputes the CRC of every whole chunk of a PNG, so that changed bytes reach libpng's decoding
// (IHDR checks, filters, zlib) instead of stopping at its checksum test.
void fix_png_crcs(std::string& png) {
  auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v = v << 8 | static_cast<uint8_t>(png[at + k]);
    return v;
  };
  size_t i = 8;
  while (i + 12 <= png.size()) {
    uint32_t len = be32(i);
    if (len > png.size() - i - 12) break;
    uint32_t crc = crc32(&png[i + 4], len + 4);
    for (int k = 0; k < 4; ++k) png[i + 8 + len + k] = static_cast<char>(crc >> (24 - 8 * k));
    i += 12 + len;
  }
}

// Truncations and random byte changes of real files: each decode returns an image or throws
// ValueError; nothing crashes, aborts or throws anything else. Every truncation before the end
// of the image data throws.
void fuzz(const std::string& path, int header_prefixes, int random_prefixes, int mutants) {
  SCOPED_TRACE(path);
  const std::string bytes = read_file(path);
  array clean = io::load_image(path);
  ImageOptions o;
  o.max_pixels = 4 * clean.shape(0) * clean.shape(1);  // keeps corrupted sizes cheap
  const size_t end = data_end(bytes);
  const bool is_jpeg = bytes.rfind("\xFF\xD8", 0) == 0;
  int decoded = 0, refused = 0;
  auto attempt = [&](const std::string& data, bool must_fail, const std::string& what) {
    try {
      array a = io::decode_image(data.data(), data.size(), o, "fuzz");
      EXPECT_FALSE(must_fail) << what << " decoded (image data end at " << end << " of " << bytes.size() << ")";
      if (must_fail) {
        // The whole file, for a look at what the decoder accepted (KILN_FUZZ_KEEP names a folder).
        if (const char* keep = std::getenv("KILN_FUZZ_KEEP")) {
          fs::create_directories(keep);
          write_file((fs::path(keep) / fs::path(path).filename()).string(), bytes);
        }
      }
      EXPECT_EQ(a.ndim(), 3);
      EXPECT_EQ(a.shape(2), 3);
      ++decoded;
    } catch (const ValueError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("[image] 'fuzz': ", 0), 0u) << e.what();
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": unexpected exception " << e.what();
    }
  };
  for (int n = 0; n < header_prefixes && static_cast<size_t>(n) < bytes.size(); ++n)
    attempt(bytes.substr(0, n), true, "prefix " + std::to_string(n));
  std::uniform_int_distribution<size_t> cut(0, bytes.size() - 1);
  for (int k = 0; k < random_prefixes; ++k) {
    size_t n = cut(rng());
    attempt(bytes.substr(0, n), n < end, "prefix " + std::to_string(n));
  }
  std::uniform_int_distribution<int> count(1, 8), byte(0, 255), coin(0, 1);
  std::uniform_int_distribution<size_t> head(0, std::min<size_t>(bytes.size(), 2048) - 1);
  for (int k = 0; k < mutants; ++k) {
    std::string m = bytes;
    std::string what = "changed bytes";
    for (int c = count(rng()); c > 0; --c) {
      size_t at = coin(rng()) ? head(rng()) : cut(rng());  // headers get half of the changes
      m[at] = static_cast<char>(byte(rng()));
      what += " " + std::to_string(at);
    }
    if (!is_jpeg && k % 2) {
      fix_png_crcs(m);
      what += " (CRCs fixed)";
    }
    attempt(m, false, what);
  }
  std::cout << "[   INFO   ] " << fs::path(path).filename().string() << ": " << decoded << " decoded, " << refused
            << " refused\n";
}

TEST(ImageDecode, FuzzedFilesNeverCrash) {
  std::vector<std::string> files;
  for (const char* name : {"grace_hopper.jpg", "chelsea.png", "foo3x5x4indexed.png"})
    if (!photo(name).empty()) files.push_back(photo(name));
  const Reference& r = decode_reference();
  if (r.ok)
    for (const char* name :
         {"progressive.jpg", "cmyk.jpg", "rgba16_interlaced.png", "palette4_trns.png", "exif6be.jpg"})
      files.push_back(generated(r, name));
  if (files.empty()) GTEST_SKIP() << "no photos and no Pillow to write images: nothing to fuzz";
  for (const auto& f : files) fuzz(f, 160, 60, 200);
}

// ================= transforms =================

// A random uint8 or float image of shape `shape`, written raw for the script.
struct Input {
  array image;
  json entry;
};

Input make_input(const TempDir& dir, const std::string& name, const Shape& shape, Dtype dtype) {
  auto [a, values] = test::random_array(shape, dtype, 0, dtype == uint8 ? 255 : 1);
  std::string path = dir.file(name);
  if (dtype == uint8) {
    auto v = a.to_vector<uint8_t>();
    write_file(path, std::string(v.begin(), v.end()));
  } else if (dtype == float32) {
    auto v = a.to_vector<float>();
    write_file(path, std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  } else {
    write_file(path, std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double)));
  }
  return {a, json{{"input", path}, {"shape", shape}, {"dtype", dtype_name(dtype)}}};
}

Input photo_input(const TempDir& dir, const std::string& name, const std::string& path) {
  array a = io::load_image(path);
  auto v = a.to_vector<uint8_t>();
  write_file(dir.file(name), std::string(v.begin(), v.end()));
  return {a, json{{"input", dir.file(name)}, {"shape", a.shape()}, {"dtype", "uint8"}}};
}

int64_t uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng()); }

struct Case {
  array input;
  Shape size;
  bool antialias = true;
  std::optional<int64_t> max_size;
};

struct TransformReference : Reference {
  std::vector<Case> resizes, crops;
  std::vector<array> imagenet;      // inputs of the tensor pipeline
  std::vector<std::string> photos;  // inputs of the PIL pipeline
};

const TransformReference& transform_reference() {
  static TransformReference r = [] {
    TransformReference r;
    r.dir = std::make_unique<TempDir>();
    json job{{"resize", json::array()}, {"center_crop", json::array()}, {"imagenet", json::array()},
             {"imagenet_pil", json::array()}};
    int k = 0;
    auto add_resize = [&](Input in, Shape size, bool aa, std::optional<int64_t> max_size = {}) {
      in.entry["size"] = size;
      in.entry["antialias"] = aa;
      if (max_size) in.entry["max_size"] = *max_size;
      job["resize"].push_back(in.entry);
      r.resizes.push_back({in.image, size, aa, max_size});
    };
    // Random uint8 images of odd sizes, one to four channels, some batched; shorter-side and
    // (height, width) sizes, up and down, with and without antialias, sometimes max_size.
    for (int i = 0; i < 36; ++i) {
      int64_t h = uniform(1, 150) | 1, w = uniform(1, 150) | 1;
      if (i < 3) h = 1;
      Shape shape{h, w, i % 7 == 0 ? 4 : (i % 5 == 0 ? 1 : 3)};
      if (i % 6 == 0) shape.insert(shape.begin(), 2);
      Input in = make_input(*r.dir, "u8_" + std::to_string(k++), shape, uint8);
      bool aa = i % 4 != 3;
      if (i % 3 == 0) {
        add_resize(in, {uniform(1, 200), uniform(1, 200)}, aa);
      } else if (i % 8 == 1) {
        int64_t s = uniform(1, 60);
        add_resize(in, {s}, aa, s + uniform(1, 80));
      } else {
        add_resize(in, {uniform(1, 200)}, aa);
      }
    }
    for (Dtype dt : {float32, float64}) {
      for (int i = 0; i < 6; ++i) {
        Shape shape{uniform(2, 90) | 1, uniform(2, 90) | 1, 3};
        Input in = make_input(*r.dir, "f_" + std::to_string(k++), shape, dt);
        add_resize(in, i % 2 ? Shape{uniform(1, 120)} : Shape{uniform(1, 120), uniform(1, 120)}, i != 5);
      }
    }
    // Center crops: smaller and larger than the image, odd differences, one or two values.
    for (int i = 0; i < 16; ++i) {
      Shape shape{uniform(1, 60), uniform(1, 60), 3};
      Input in = make_input(*r.dir, "crop_" + std::to_string(k++), shape, uint8);
      Shape size = i % 2 ? Shape{uniform(1, 80)} : Shape{uniform(1, 80), uniform(1, 80)};
      in.entry["size"] = size;
      job["center_crop"].push_back(in.entry);
      r.crops.push_back({in.image, size});
    }
    // The ImageNet pipeline on random RGB images of odd sizes and on the photos.
    for (int i = 0; i < 6; ++i) {
      Input in = make_input(*r.dir, "in_" + std::to_string(k++), {uniform(100, 700) | 1, uniform(100, 700) | 1, 3},
                            uint8);
      job["imagenet"].push_back(in.entry);
      r.imagenet.push_back(in.image);
    }
    for (const auto& p : photos()) {
      if (p.find("truncated") != std::string::npos) continue;
      Input in = photo_input(*r.dir, "photo_" + std::to_string(k++), p);
      job["imagenet"].push_back(in.entry);
      r.imagenet.push_back(in.image);
      add_resize(in, {256}, true);
      add_resize(in, {224, 224}, false);
      job["imagenet_pil"].push_back(p);
      r.photos.push_back(p);
    }
    run_reference(r, job,
                  "python3 with torch, torchvision and Pillow is not available (pip install torchvision pillow)");
    return r;
  }();
  return r;
}

#define NEED_TRANSFORMS(r) NEED_REFERENCE(r, transform_reference)

TEST(ImageTransforms, ResizeMatchesTorchvision) {
  NEED_TRANSFORMS(r);
  int exact = 0, compared = 0;
  for (size_t i = 0; i < r.resizes.size(); ++i) {
    const Case& c = r.resizes[i];
    std::ostringstream what;
    what << "resize of " << c.input.shape() << " " << c.input.dtype() << " to " << c.size
         << (c.antialias ? " antialiased" : "") << (c.max_size ? " max_size " + std::to_string(*c.max_size) : "");
    SCOPED_TRACE(what.str());
    if (r.result["resize"][i].is_object()) {  // torchvision refused: a side would be 0
      KILN_EXPECT_THROW_MSG(vision::resize(c.input, c.size, c.antialias, c.max_size), ValueError, "[resize]");
      continue;
    }
    for (Device d : test::devices()) {
      // On a GPU: the matrix-product path, within one uint8 level too.
      array out = vision::resize(copy(c.input, d), c.size, c.antialias, c.max_size, d);
      EXPECT_EQ(out.dtype(), c.input.dtype());
      Shape want = shape_of(r.result["resize"][i]);
      std::string file = r.file("resize_" + std::to_string(i));
      if (c.input.dtype() == uint8) {
        auto ref = read_raw<uint8_t>(file);
        EXPECT_TRUE(same_pixels(out, want, ref, 1)) << test::device_name(d);
        if (d.type == Device::cpu) {
          exact += same_pixels(out, want, ref, 0) ? 1 : 0;
          ++compared;
        }
      } else {
        ASSERT_EQ(out.shape(), want);
        std::vector<double> ref;
        if (c.input.dtype() == float32) {
          for (float v : read_raw<float>(file)) ref.push_back(v);
        } else {
          ref = read_raw<double>(file);
        }
        KILN_EXPECT_CLOSE(test::to_doubles(out), ref, float32, what.str() + " " + test::device_name(d));
      }
    }
  }
  std::cout << "[   INFO   ] uint8 resizes equal to torchvision's: " << exact << " of " << compared
            << " (the rest within 1)\n";
}

TEST(ImageTransforms, ResizeHalfPrecisionFollowsFloat32) {
  for (Dtype dt : {float16, bfloat16}) {
    auto [a, values] = test::random_array({37, 53, 3}, dt, 0, 1);
    array got = vision::resize(a, {20, 71});
    EXPECT_EQ(got.dtype(), dt);
    array want = astype(vision::resize(astype(a, float32), {20, 71}), dt);
    EXPECT_EQ(test::to_doubles(got), test::to_doubles(want)) << dt;
  }
}

// resize_center_crop computes only the crop; its values are the two calls' exactly, for
// downscales and upscales, one to four channels, leading batch axes, with and without antialias,
// uint8, bfloat16 (through float32), float32 and float64.
TEST(ImageTransforms, ResizeCenterCropIsResizeThenCenterCrop) {
  const Device cpu(Device::cpu);
  std::uniform_int_distribution<int64_t> side(1, 400), chans(1, 4);
  for (int k = 0; k < 40; ++k) {
    const Dtype dt = k % 8 == 7 ? float64 : k % 8 == 5 ? bfloat16 : k % 4 == 3 ? float32 : uint8;
    const int64_t h = side(test::rng()), w = side(test::rng()), c = chans(test::rng());
    const Shape shape = k % 5 == 0 ? Shape{2, h, w, c} : Shape{h, w, c};
    auto [img, values] = test::random_array(shape, dt, 0, dt == uint8 ? 255 : 1);
    const int64_t size = std::uniform_int_distribution<int64_t>(1, 300)(test::rng());
    const int64_t crop = std::uniform_int_distribution<int64_t>(1, size)(test::rng());
    const bool antialias = k % 2 == 0;
    SCOPED_TRACE(::testing::Message() << h << "x" << w << "x" << c << " " << dt << " size " << size << " crop " << crop << " antialias "
                                      << antialias);
    array want = contiguous(vision::center_crop(vision::resize(img, size, antialias, {}, cpu), crop, cpu), cpu);
    array got = vision::resize_center_crop(img, size, crop, antialias, cpu);
    ASSERT_EQ(got.shape(), want.shape());
    ASSERT_EQ(got.dtype(), dt);
    EXPECT_EQ(test::to_doubles(got), test::to_doubles(want));
  }
  // A crop larger than the resized image pads, as center_crop does.
  auto [small, v] = test::random_array({10, 30, 3}, uint8, 0, 255);
  EXPECT_EQ(vision::resize_center_crop(small, 8, 12, true, cpu).shape(), (Shape{12, 12, 3}));
}

TEST(ImageTransforms, CenterCropMatchesTorchvision) {
  NEED_TRANSFORMS(r);
  for (size_t i = 0; i < r.crops.size(); ++i) {
    const Case& c = r.crops[i];
    std::ostringstream what;
    what << "center_crop of " << c.input.shape() << " to " << c.size;
    EXPECT_TRUE(same_pixels(vision::center_crop(c.input, c.size), shape_of(r.result["center_crop"][i]),
                            read_raw<uint8_t>(r.file("crop_" + std::to_string(i)))))
        << what.str();
  }
}

// Compares normalized (3, H, W) outputs in units of one uint8 step of the resized image, which
// Normalize turns into 1/255/std[c]; the largest difference, in steps, goes to `worst_steps`.
::testing::AssertionResult within_one_step(array got, const Shape& want_shape, const std::vector<float>& want,
                                           double& worst_steps) {
  if (got.shape() != want_shape) {
    return ::testing::AssertionFailure() << "shape " << testing::PrintToString(got.shape()) << ", expected "
                                         << testing::PrintToString(want_shape);
  }
  std::vector<float> g = got.to_vector<float>();
  const size_t plane = g.size() / 3;
  worst_steps = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double steps = std::abs(double(g[i]) - double(want[i])) * vision::kImageNetStd[i / plane] * 255.0;
    if (!(steps <= worst_steps)) worst_steps = steps;  // a NaN makes it NaN
  }
  if (worst_steps <= 1.0 + 1e-3) return ::testing::AssertionSuccess();  // float rounding of the normalization
  return ::testing::AssertionFailure() << "largest difference " << worst_steps << " uint8 steps";
}

TEST(ImageTransforms, ImagenetPreprocessMatchesTorchvision) {
  NEED_TRANSFORMS(r);
  double worst = 0;
  for (size_t i = 0; i < r.imagenet.size(); ++i) {
    for (Device d : test::devices()) {
      array x = vision::imagenet_preprocess(copy(r.imagenet[i], d), d);
      EXPECT_EQ(x.dtype(), float32);
      double w = 0;
      EXPECT_TRUE(within_one_step(x, shape_of(r.result["imagenet"][i]),
                                  read_raw<float>(r.file("imagenet_" + std::to_string(i))), w))
          << "input of shape " << testing::PrintToString(r.imagenet[i].shape()) << " " << test::device_name(d);
      worst = std::max(worst, w);
    }
  }
  std::cout << "[   INFO   ] largest difference from torchvision (uint8 tensor path): " << worst << " uint8 steps\n";
}

TEST(ImageTransforms, PhotoPipelineMatchesPil) {
  if (photos().empty()) GTEST_SKIP() << "no photos (run scripts/get_photos.sh, or set KILN_PHOTOS)";
  NEED_TRANSFORMS(r);
  double worst = 0;
  for (size_t i = 0; i < r.photos.size(); ++i) {
    for (Device d : test::devices()) {
      array x = vision::imagenet_preprocess(copy(io::load_image(r.photos[i]), d), d);
      double w = 0;
      EXPECT_TRUE(within_one_step(x, shape_of(r.result["imagenet_pil"][i]),
                                  read_raw<float>(r.file("pil_" + std::to_string(i))), w))
          << r.photos[i] << " " << test::device_name(d);
      worst = std::max(worst, w);
    }
  }
  // PIL's own resampler rounds its fixed-point weights differently from PyTorch's uint8 kernel.
  std::cout << "[   INFO   ] largest difference from the PIL pipeline: " << worst << " uint8 steps\n";
}

TEST(ImageTransforms, ToFloatAndNormalize) {
  auto [img, values] = test::random_array({2, 5, 7, 3}, uint8, 0, 255);
  array chw = vision::to_float_chw(img);
  EXPECT_EQ(chw.shape(), (Shape{2, 3, 5, 7}));
  EXPECT_EQ(chw.dtype(), float32);
  const std::vector<double> mean{0.3, 0.5, 0.7}, sd{0.2, 0.4, 0.9};
  array y = vision::normalize(chw, mean, sd);
  std::vector<double> want_x(values.size()), want_y(values.size());
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = 0; j < 7; ++j) {
          auto from = static_cast<size_t>(((n * 5 + i) * 7 + j) * 3 + c);
          auto to = static_cast<size_t>(((n * 3 + c) * 5 + i) * 7 + j);
          want_x[to] = values[from] / 255.0;
          want_y[to] = (want_x[to] - mean[c]) / sd[c];
        }
  KILN_EXPECT_CLOSE(test::to_doubles(chw), want_x, float32, "to_float_chw");
  KILN_EXPECT_CLOSE(test::to_doubles(y), want_y, float32, "normalize");
}

TEST(ImageTransforms, Errors) {
  array img = zeros({10, 12, 3}, uint8);
  KILN_EXPECT_THROW_MSG(vision::resize(zeros({10, 12}, uint8), 5), ValueError, "[resize] expected an image");
  KILN_EXPECT_THROW_MSG(vision::resize(zeros({10, 12, 3}, int32), 5), TypeError, "[resize]");
  KILN_EXPECT_THROW_MSG(vision::resize(img, Shape{1, 2, 3}), ValueError, "one value or two");
  KILN_EXPECT_THROW_MSG(vision::resize(img, 0), ValueError, "must be positive");
  KILN_EXPECT_THROW_MSG(vision::resize(img, 8, true, 8), ValueError, "max_size = 8");
  KILN_EXPECT_THROW_MSG(vision::resize(img, Shape{4, 4}, true, 9), ValueError, "max_size is only allowed");
  KILN_EXPECT_THROW_MSG(vision::center_crop(img, Shape{}), ValueError, "[center_crop]");
  KILN_EXPECT_THROW_MSG(vision::to_float_chw(zeros({4, 4, 3}, int16)), TypeError, "[to_float_chw]");
  array x = zeros({3, 4, 4});
  KILN_EXPECT_THROW_MSG(vision::normalize(x, {0.1, 0.2}, {1, 1, 1}), ValueError, "mean has 2 values for 3 channels");
  KILN_EXPECT_THROW_MSG(vision::normalize(x, {0.1}, {1, 0, 1}), ValueError, "std evaluated to zero");
  KILN_EXPECT_THROW_MSG(vision::normalize(zeros({3, 4, 4}, uint8), {0.1}, {1}), TypeError, "[normalize]");
  KILN_EXPECT_THROW_MSG(vision::imagenet_preprocess(zeros({10, 12, 1}, uint8)), ValueError, "[imagenet_preprocess]");
  // An unchanged size returns the input itself, as torchvision does.
  EXPECT_TRUE(vision::resize(img, Shape{10, 12}).is_same(img));
  EXPECT_EQ(vision::resized_size(300, 451, {256}), (std::pair<int64_t, int64_t>{256, 384}));
}

}  // namespace
}  // namespace kiln
