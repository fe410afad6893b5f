// torchvision's image transforms (transforms.v2.functional), for preparing photos for the
// classification models. Images are channels-last, (..., height, width, channels), as
// io::load_image returns them; to_float_chw turns them into torchvision's (..., C, H, W) floats.
//
// Every transform runs on the stream or device it is given. resize on the CPU is a host routine
// (it evaluates its input and returns an evaluated host array, computed exactly as torchvision's
// CPU kernel); on a GPU it is two matrix products with the same interpolation weights, batched
// over leading axes, within one level (1/255) of it for uint8 images.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "kiln/array.h"

namespace kiln::vision {

// The output (height, width) of torchvision's resize: a `size` of one value sets the shorter side
// to it and the longer one to int(size * longer / shorter), then, with max_size, caps the longer
// side at max_size (scaling the shorter one the same way); two values are (height, width).
std::pair<int64_t, int64_t> resized_size(int64_t height, int64_t width, const Shape& size,
                                         std::optional<int64_t> max_size = {});

// torchvision.transforms.v2.functional.resize with bilinear interpolation (align_corners=False),
// antialiased when downscaling if `antialias`. uint8 images give uint8 computed as torchvision
// does on CPU tensors (PyTorch's separable uint8 kernel: horizontal then vertical pass, int16
// fixed-point weights, rounded uint8 in between); floating images give the same dtype (float16
// and bfloat16 computed in float32). An unchanged size returns the input itself.
array resize(const array& image, const Shape& size, bool antialias = true, std::optional<int64_t> max_size = {},
             StreamOrDevice s = {});
array resize(const array& image, int64_t size, bool antialias = true, std::optional<int64_t> max_size = {},
             StreamOrDevice s = {});

// torchvision's center_crop: `size` is one value (a square) or (height, width). A crop larger
// than the image pads it with zeros first (the odd pixel after), then crops at
// round((image - crop) / 2), rounding halves to even as Python does.
array center_crop(const array& image, const Shape& size, StreamOrDevice s = {});
array center_crop(const array& image, int64_t size, StreamOrDevice s = {});

// center_crop(resize(image, size, antialias), crop) with the same values, computed on the CPU
// only over the crop (the columns and rows outside it are never resampled); on a GPU, the two
// calls.
array resize_center_crop(const array& image, int64_t size, int64_t crop, bool antialias = true, StreamOrDevice s = {});

// ToTensor: (..., H, W, C) to float32 (..., C, H, W); uint8 values are divided by 255, floating
// ones are kept.
array to_float_chw(const array& image, StreamOrDevice s = {});

// Normalize: (x - mean[c]) / std[c] over the channel axis of a floating (..., C, H, W) array; one
// value, or one per channel, computed in x's dtype.
array normalize(const array& x, const std::vector<double>& mean, const std::vector<double>& std,
                StreamOrDevice s = {});

inline const std::vector<double> kImageNetMean{0.485, 0.456, 0.406};
inline const std::vector<double> kImageNetStd{0.229, 0.224, 0.225};

// Resize(256) + CenterCrop(224) + ToTensor + Normalize(ImageNet mean and std) of one
// (H, W, 3) image: a float32 (3, 224, 224) array, computed on `s` (resize included).
array imagenet_preprocess(const array& image, StreamOrDevice s = {});

}  // namespace kiln::vision
