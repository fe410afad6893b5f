#include "kiln/io/image.h"

// jpeglib.h uses size_t and FILE without including their headers.
#include <cstdio>
#include <csetjmp>
#include <cstring>
#include <memory>
#include <vector>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "kiln/device.h"
#include "kiln/memory.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_index.h"
#include "kiln/ops_shape.h"

namespace kiln::io {

namespace {

// More scans than any real progressive JPEG has (they have about ten); a corrupt file can
// otherwise make libjpeg loop through millions of tiny scans.
constexpr int kMaxJpegScans = 1000;

template <class... Parts>
[[noreturn]] void bad(const std::string& name, const Parts&... parts) {
  fail<ValueError>("[image] '", name, "': ", parts...);
}

// The output: a fresh host array of shape (h, w, c) that a decoder writes into.
struct Pixels {
  Shape shape;
  std::shared_ptr<Buffer> buffer;
  uint8_t* data;

  Pixels(int64_t h, int64_t w, int64_t c)
      : shape{h, w, c}, buffer(std::make_shared<Buffer>(static_cast<size_t>(h * w * c))) {
    data = static_cast<uint8_t*>(buffer->write_host());
  }
  array finish() {
    array out(shape, uint8, nullptr, {}, default_stream(default_device()));
    out.set_data(std::move(buffer));
    out.detach();
    return out;
  }
};

void check_size(const std::string& name, int64_t h, int64_t w, const ImageOptions& options) {
  if (h <= 0 || w <= 0) bad(name, "the image has no pixels (", w, " x ", h, ")");
  if (h > options.max_pixels / w)
    bad(name, "the image is ", w, " x ", h, " pixels, more than the limit of ", options.max_pixels);
}

// Fills `out` (pixels x 3) from `in` (pixels x cin): grey repeated, alpha dropped.
void to_rgb(const uint8_t* in, int cin, uint8_t* out, int64_t pixels) {
  const bool grey = cin <= 2;
  for (int64_t i = 0; i < pixels; ++i, in += cin, out += 3)
    for (int k = 0; k < 3; ++k) out[k] = in[grey ? 0 : k];
}

// ---- JPEG ----

// Plain C data only: libjpeg's fatal errors longjmp across the frames that use it.
struct JpegJob {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr errors;  // libjpeg reaches the job through this member's address
  jpeg_progress_mgr progress;
  jpeg_source_mgr source;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

JpegJob* job_of(j_common_ptr cinfo) {
  return reinterpret_cast<JpegJob*>(reinterpret_cast<char*>(cinfo->err) - offsetof(JpegJob, errors));
}

void jpeg_fatal(j_common_ptr cinfo) {
  JpegJob* job = job_of(cinfo);
  (*cinfo->err->format_message)(cinfo, job->message);
  std::longjmp(job->jump, 1);
}

// Warnings (stray bytes, for one) are ignored, as Pillow ignores them: real files often have a few.
void jpeg_message(j_common_ptr, int) {}

// The in-memory source. Running out of data is an error, as it is for Pillow. libjpeg's own
// memory source only warns and feeds a fake end marker, and telling that warning apart by its
// message code breaks when the headers and the library linked come from different releases.
void jpeg_truncated(j_common_ptr cinfo) {
  JpegJob* job = job_of(cinfo);
  std::snprintf(job->message, sizeof job->message, "the file ends before the image data does (truncated?)");
  std::longjmp(job->jump, 1);
}
void jpeg_source_start(j_decompress_ptr) {}
boolean jpeg_source_fill(j_decompress_ptr cinfo) {
  jpeg_truncated(reinterpret_cast<j_common_ptr>(cinfo));
  return FALSE;
}
void jpeg_source_skip(j_decompress_ptr cinfo, long count) {
  if (count <= 0) return;
  jpeg_source_mgr* src = cinfo->src;
  if (static_cast<unsigned long>(count) > src->bytes_in_buffer) jpeg_truncated(reinterpret_cast<j_common_ptr>(cinfo));
  src->next_input_byte += count;
  src->bytes_in_buffer -= static_cast<size_t>(count);
}
void jpeg_source_end(j_decompress_ptr) {}

void jpeg_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->progressive_mode && d->input_scan_number > kMaxJpegScans) {
    JpegJob* job = job_of(cinfo);
    std::snprintf(job->message, sizeof job->message, "more than %d progressive scans", kMaxJpegScans);
    std::longjmp(job->jump, 1);
  }
}

// Runs `step` (libjpeg calls only, no C++ objects with destructors) and returns false when
// libjpeg reported a fatal error, whose text is then in job.message.
template <class Step>
bool jpeg_guarded(JpegJob& job, Step&& step) {
  if (setjmp(job.jump)) return false;
  step();
  return true;
}

struct JpegDestroyer {
  jpeg_decompress_struct* cinfo;
  ~JpegDestroyer() { jpeg_destroy_decompress(cinfo); }
};

// PIL's CMYK to RGB, on libjpeg's output read with Adobe's inverted convention (PIL's "CMYK;I").
void cmyk_to_rgb(const uint8_t* in, uint8_t* out, int64_t pixels) {
  for (int64_t i = 0; i < pixels; ++i, in += 4, out += 3) {
    int nk = in[3];  // 255 - K, K being the inverted stored value
    for (int k = 0; k < 3; ++k) {
      int t = (255 - in[k]) * nk + 128;
      int v = nk - (((t >> 8) + t) >> 8);
      out[k] = static_cast<uint8_t>(v < 0 ? 0 : v);
    }
  }
}

array decode_jpeg(const uint8_t* data, size_t size, const ImageOptions& options, const std::string& name) {
  auto job = std::make_unique<JpegJob>();
  std::memset(job.get(), 0, sizeof(JpegJob));
  job->cinfo.err = jpeg_std_error(&job->errors);
  job->errors.error_exit = jpeg_fatal;
  job->errors.emit_message = jpeg_message;
  job->progress.progress_monitor = jpeg_progress;
  jpeg_decompress_struct* cinfo = &job->cinfo;
  JpegDestroyer destroy{cinfo};
  auto fail_jpeg = [&] { bad(name, "invalid JPEG data: ", job->message); };

  if (!jpeg_guarded(*job, [&] {
        jpeg_create_decompress(cinfo);
        cinfo->progress = &job->progress;
        job->source = {data, size, jpeg_source_start, jpeg_source_fill, jpeg_source_skip, jpeg_resync_to_restart,
                       jpeg_source_end};
        cinfo->src = &job->source;
        jpeg_read_header(cinfo, TRUE);
      }))
    fail_jpeg();
  check_size(name, cinfo->image_height, cinfo->image_width, options);
  J_COLOR_SPACE space = cinfo->jpeg_color_space;
  int decoded = 3;
  if (space == JCS_GRAYSCALE) {
    cinfo->out_color_space = JCS_GRAYSCALE;
    decoded = 1;
  } else if (space == JCS_CMYK || space == JCS_YCCK) {
    cinfo->out_color_space = JCS_CMYK;
    decoded = 4;
  } else {
    cinfo->out_color_space = JCS_RGB;
  }
  if (!jpeg_guarded(*job, [&] { jpeg_start_decompress(cinfo); })) fail_jpeg();
  if (cinfo->output_components != decoded) bad(name, "unexpected JPEG components: ", cinfo->output_components);

  const int64_t h = cinfo->output_height, w = cinfo->output_width;
  const int channels = options.native_channels && decoded == 1 ? 1 : 3;
  Pixels px(h, w, channels);
  std::vector<uint8_t> temp;
  uint8_t* target = px.data;
  if (decoded != channels) {
    temp.resize(static_cast<size_t>(h * w * decoded));
    target = temp.data();
  }
  const size_t row_bytes = static_cast<size_t>(w * decoded);
  if (!jpeg_guarded(*job, [&] {
        while (cinfo->output_scanline < cinfo->output_height) {
          JSAMPROW row = target + cinfo->output_scanline * row_bytes;
          if (jpeg_read_scanlines(cinfo, &row, 1) != 1) return;  // cannot happen with an in-memory source
        }
        jpeg_finish_decompress(cinfo);
      }))
    fail_jpeg();
  if (cinfo->output_scanline < cinfo->output_height) bad(name, "invalid JPEG data: the decoder stopped early");
  if (decoded == 4) {
    cmyk_to_rgb(temp.data(), px.data, h * w);
  } else if (decoded != channels) {
    to_rgb(temp.data(), decoded, px.data, h * w);
  }
  return px.finish();
}

// ---- PNG ----

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  char message[256];
};

void png_fatal(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof src->message, "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

void png_quiet(png_structp, png_const_charp) {}

void png_read(png_structp png, png_bytep out, size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "unexpected end of file (truncated?)");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

// As jpeg_guarded: `step` holds nothing with a destructor, so libpng may longjmp out of it.
template <class Step>
bool png_guarded(png_structp png, Step&& step) {
  if (setjmp(png_jmpbuf(png))) return false;
  step();
  return true;
}

struct PngDestroyer {
  png_structp png;
  png_infop info;
  ~PngDestroyer() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

array decode_png(const uint8_t* data, size_t size, const ImageOptions& options, const std::string& name) {
  auto src = std::make_unique<PngSource>();
  *src = PngSource{data, size, 0, {}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, src.get(), png_fatal, png_quiet);
  if (!png) fail<RuntimeError>("[image] '", name, "': cannot create a PNG reader");
  PngDestroyer destroy{png, png_create_info_struct(png)};
  png_infop info = destroy.info;
  if (!info) fail<RuntimeError>("[image] '", name, "': cannot create a PNG reader");
  auto fail_png = [&] { bad(name, "invalid PNG data: ", src->message); };

  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0, interlace = 0;
  png_colorp palette = nullptr;
  int palette_size = 0;
  png_bytep trns = nullptr;
  int trns_size = 0;
  if (!png_guarded(png, [&] {
        png_set_read_fn(png, src.get(), png_read);
        png_read_info(png, info);
        png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, nullptr, nullptr);
        if (color == PNG_COLOR_TYPE_PALETTE) {
          png_get_PLTE(png, info, &palette, &palette_size);
          if (png_get_valid(png, info, PNG_INFO_tRNS)) png_get_tRNS(png, info, &trns, &trns_size, nullptr);
        }
      }))
    fail_png();
  check_size(name, h, w, options);

  // What libpng hands over after the transforms below: one byte per sample, except palette
  // indices (one byte each) and 16-bit grey (two bytes, big-endian), converted here.
  bool grey16 = color == PNG_COLOR_TYPE_GRAY && depth == 16;
  int decoded = 0;
  switch (color) {
    case PNG_COLOR_TYPE_GRAY: decoded = grey16 ? 2 : 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: decoded = 2; break;
    case PNG_COLOR_TYPE_RGB: decoded = 3; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: decoded = 4; break;
    case PNG_COLOR_TYPE_PALETTE: decoded = 1; break;
    default: bad(name, "unknown PNG colour type ", color);
  }
  int channels = 3;
  if (options.native_channels) {
    if (color == PNG_COLOR_TYPE_PALETTE) {
      channels = trns ? 4 : 3;
    } else {
      channels = grey16 ? 1 : decoded;
    }
  }
  const bool direct = channels == decoded && color != PNG_COLOR_TYPE_PALETTE && !grey16;

  Pixels px(h, w, channels);
  std::vector<uint8_t> temp;
  uint8_t* target = px.data;
  if (!direct) {
    temp.resize(static_cast<size_t>(h) * w * decoded);
    target = temp.data();
  }
  std::vector<png_bytep> rows(h);
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = target + static_cast<size_t>(y) * w * decoded;
  size_t row_bytes = 0;
  if (!png_guarded(png, [&] {
        if (color == PNG_COLOR_TYPE_PALETTE && depth < 8) png_set_packing(png);
        if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        if (depth == 16 && !grey16) png_set_strip_16(png);
        png_set_interlace_handling(png);
        png_read_update_info(png, info);
        row_bytes = png_get_rowbytes(png, info);
      }))
    fail_png();
  if (row_bytes != static_cast<size_t>(w) * decoded) bad(name, "unexpected PNG row size ", row_bytes);
  if (!png_guarded(png, [&] {
        png_read_image(png, rows.data());
        png_read_end(png, nullptr);
      }))
    fail_png();

  if (direct) return px.finish();
  const int64_t n = static_cast<int64_t>(h) * w;
  uint8_t* out = px.data;
  if (color == PNG_COLOR_TYPE_PALETTE) {
    // Indices past the palette read as black, as Pillow's zero-filled palette gives.
    for (int64_t i = 0; i < n; ++i, out += channels) {
      int k = temp[i];
      bool in = k < palette_size;
      out[0] = in ? palette[k].red : 0;
      out[1] = in ? palette[k].green : 0;
      out[2] = in ? palette[k].blue : 0;
      if (channels == 4) out[3] = k < trns_size ? trns[k] : 255;
    }
  } else if (grey16) {
    for (int64_t i = 0; i < n; ++i, out += channels) {
      int v = temp[2 * i] ? 255 : temp[2 * i + 1];  // values past 255 clip, as Pillow's I;16 -> L
      for (int k = 0; k < channels; ++k) out[k] = static_cast<uint8_t>(v);
    }
  } else {
    to_rgb(temp.data(), decoded, out, n);
  }
  return px.finish();
}

// ---- formats ----

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

const char* other_format(const uint8_t* d, size_t n) {
  if (starts_with(d, n, "GIF8", 4)) return "GIF";
  if (starts_with(d, n, "BM", 2)) return "BMP";
  if (starts_with(d, n, "RIFF", 4) && n >= 12 && std::memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
  if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) return "TIFF";
  return nullptr;
}

// Rotates or flips as ImageOps.exif_transpose does for each orientation value.
array apply_orientation(const array& img, int orientation) {
  const Device cpu(Device::cpu);
  const std::vector<int> swap{1, 0, 2};
  array out = img;
  switch (orientation) {
    case 2: out = flip(img, std::vector<int>{1}, cpu); break;                     // mirror left-right
    case 3: out = flip(img, std::vector<int>{0, 1}, cpu); break;                  // rotate 180
    case 4: out = flip(img, std::vector<int>{0}, cpu); break;                     // mirror top-bottom
    case 5: out = transpose(img, swap, cpu); break;                               // transpose
    case 6: out = flip(transpose(img, swap, cpu), std::vector<int>{1}, cpu); break;     // rotate 90 clockwise
    case 7: out = flip(transpose(img, swap, cpu), std::vector<int>{0, 1}, cpu); break;  // transverse
    case 8: out = flip(transpose(img, swap, cpu), std::vector<int>{0}, cpu); break;     // rotate 90 counter-clockwise
    default: return img;
  }
  out = copy(out, cpu);
  out.eval();
  return out;
}

// ---- EXIF ----

struct TiffReader {
  const uint8_t* p;
  size_t n;
  bool little;
  bool has(size_t at, size_t len) const { return at <= n && len <= n - at; }
  uint32_t u16(size_t at) const { return little ? p[at] | p[at + 1] << 8 : p[at] << 8 | p[at + 1]; }
  uint32_t u32(size_t at) const {
    return little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2);
  }
};

// Bytes per value of the TIFF field types Pillow knows; 0 for the others, which it skips.
size_t tiff_unit(uint32_t type) {
  static const uint8_t units[] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4, 0, 0, 8, 8, 8};
  return type < sizeof units ? units[type] : 0;
}

// The Orientation of a TIFF block as Pillow's Exif reads it: the first IFD0 entry for the tag
// that Pillow keeps (a known type whose data is readable), and its first value when that is an
// integer. (Pillow would also take a float or rational equal to 2..8; no real file has one.)
int tiff_orientation(const uint8_t* p, size_t n) {
  if (n < 8) return 1;
  TiffReader t{p, n, p[0] == 'I'};
  if (!((p[0] == 'I' && p[1] == 'I') || (p[0] == 'M' && p[1] == 'M')) || t.u16(2) != 42) return 1;
  size_t ifd = t.u32(4);
  if (!t.has(ifd, 2)) return 1;
  uint32_t count = t.u16(ifd);
  for (uint32_t k = 0; k < count; ++k) {
    size_t e = ifd + 2 + 12 * static_cast<size_t>(k);
    if (!t.has(e, 12)) break;  // entries read so far still count, as in Pillow
    if (t.u16(e) != 0x0112) continue;
    uint32_t type = t.u16(e + 2);
    if (tiff_unit(type) == 0) continue;
    uint64_t values = t.u32(e + 4), bytes = tiff_unit(type) * values;
    size_t at = e + 8;
    if (bytes > 4) {
      at = t.u32(e + 8);
      if (!t.has(at, bytes)) continue;
    }
    if (values == 0) return 1;
    int64_t v = 0;
    switch (type) {
      case 3: v = t.u16(at); break;                                // SHORT
      case 4: v = t.u32(at); break;                                // LONG
      case 6: v = static_cast<int8_t>(p[at]); break;               // SBYTE
      case 8: v = static_cast<int16_t>(t.u16(at)); break;          // SSHORT
      case 9: v = static_cast<int32_t>(t.u32(at)); break;          // SLONG
      default: return 1;  // BYTE and UNDEFINED read as bytes, the rest as non-integers
    }
    return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
  }
  return 1;
}

}  // namespace

int jpeg_exif_orientation(const uint8_t* p, size_t n) {
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return 1;
  // Pillow joins the payloads of all APP1 "Exif" segments, the later ones without their prefix.
  std::vector<uint8_t> tiff;
  bool found = false;
  size_t i = 2;
  while (i + 1 < n) {
    if (p[i] != 0xFF) {  // junk between segments is skipped, as Pillow does
      ++i;
      continue;
    }
    uint8_t m = p[i + 1];
    if (m == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    i += 2;
    if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length field
    if (m == 0xD9 || m == 0xDA) break;  // end of image, start of scan: no EXIF after this
    if (n - i < 2) break;
    size_t len = static_cast<size_t>(p[i]) << 8 | p[i + 1];
    if (len < 2 || len > n - i) break;
    const uint8_t* payload = p + i + 2;
    size_t plen = len - 2;
    if (m == 0xE1 && plen >= 6 && std::memcmp(payload, "Exif\0\0", 6) == 0) {
      tiff.insert(tiff.end(), payload + 6, payload + plen);
      found = true;
    }
    i += len;
  }
  return found ? tiff_orientation(tiff.data(), tiff.size()) : 1;
}

array decode_image(const void* data, size_t size, const ImageOptions& options, const std::string& name) {
  if (options.max_pixels <= 0) fail<ValueError>("[image] max_pixels must be positive, not ", options.max_pixels);
  const auto* d = static_cast<const uint8_t*>(data);
  if (size == 0 || d == nullptr) bad(name, "the file is empty");
  if (starts_with(d, size, "\xFF\xD8\xFF", 3)) {
    array img = decode_jpeg(d, size, options, name);
    if (!options.apply_exif_orientation) return img;
    return apply_orientation(img, jpeg_exif_orientation(d, size));
  }
  if (starts_with(d, size, "\x89PNG\r\n\x1a\n", 8)) return decode_png(d, size, options, name);
  if (const char* other = other_format(d, size))
    bad(name, "unsupported image format ", other, " (JPEG and PNG are read)");
  bad(name, "not a JPEG or PNG file");
}

array load_image(const std::string& path, const ImageOptions& options) {
  MappedFile file(path, "image");
  return decode_image(file.data(), file.size(), options, path);
}

}  // namespace kiln::io
