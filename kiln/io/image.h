// Image files: JPEG (libjpeg-turbo) and PNG (libpng) decoded into uint8 arrays of shape
// (height, width, channels), evaluated and on the host.
//
// The pixels are the ones Pillow gives for Image.open(path), ImageOps.exif_transpose (JPEG only)
// and .convert("RGB"): grey is repeated into the three channels, alpha is dropped (not composited),
// a palette is looked up, 1/2/4-bit grey is scaled to 0..255, 16-bit RGB(A) and grey+alpha keep the
// high byte, 16-bit grey is clipped to 255 (Pillow's I;16 to L), and CMYK JPEGs are read with
// Adobe's inverted convention and converted with Pillow's formula. libjpeg-turbo decodes with its
// defaults (accurate integer IDCT, smooth chroma upsampling), as Pillow does. Orientation comes
// from a JPEG's EXIF only: Pillow's exif_transpose would also follow a PNG's eXIf chunk or an XMP
// orientation, which kiln ignores.
//
// Corrupt, truncated or unknown data throws ValueError "[image] '<name>': ..." (libjpeg's warnings
// about stray bytes are tolerated, as Pillow tolerates them); a file that cannot be opened throws
// io::FileError. Nothing aborts: the libraries' fatal errors become exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/array.h"
#include "kiln/io/mapped_file.h"

namespace kiln::io {

struct ImageOptions {
  // false: always 3 channels (RGB). true: the file's own channels: 1 (grey), 2 (grey + alpha),
  // 3 (RGB, and CMYK JPEGs converted to RGB) or 4 (RGBA, and palette PNGs with a tRNS chunk, whose
  // alpha comes from it). A tRNS chunk on grey or RGB PNGs is ignored.
  bool native_channels = false;
  // Applies a JPEG's EXIF Orientation tag (values 2..8) as ImageOps.exif_transpose does.
  bool apply_exif_orientation = true;
  // Larger images are refused before any pixel memory is allocated (Pillow's decompression-bomb
  // error threshold, 2 * 89478485 pixels), so a corrupt header cannot ask for gigabytes.
  int64_t max_pixels = 178'956'970;
};

// Reads and decodes `path` (the format is recognised by its first bytes, not its name).
array load_image(const std::string& path, const ImageOptions& options = {});
// Decodes an image held in memory; `name` stands for the file in error messages.
array decode_image(const void* data, size_t size, const ImageOptions& options = {},
                   const std::string& name = "<memory>");

// The EXIF Orientation (1..8) of a JPEG as Pillow reads it: the APP1 "Exif" segments before the
// first scan, joined, parsed as TIFF; the first value of IFD0's first readable tag 0x0112 when it
// is an integer. 1 when there is none or the data is unreadable; never reads outside
// [data, data + size).
int jpeg_exif_orientation(const uint8_t* data, size_t size);

}  // namespace kiln::io
