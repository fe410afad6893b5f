// kiln.vision: image files and torchvision's transforms (kiln/io/image.h, kiln/vision/transforms.h);
// kiln.models.Classifier: the ImageNet networks (kiln/models/efficientnet.h, resnet.h); and
// kiln.load_torch_checkpoint (kiln/io/torch_checkpoint.h).
#include <nanobind/stl/map.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "common.h"
#include "kiln/io/image.h"
#include "kiln/io/safetensors.h"
#include "kiln/io/torch_checkpoint.h"
#include "kiln/models/efficientnet.h"
#include "kiln/models/resnet.h"
#include "kiln/vision/image_batches.h"
#include "kiln/vision/transforms.h"

namespace kiln_py {

namespace {

// An ImageNet network with its weights loaded and batch norms folded: (N, H, W, 3) -> logits.
struct Classifier {
  std::string name;
  kiln::Dtype dtype = kiln::float32;
  std::unique_ptr<kiln::nn::Module> module;
  std::function<kiln::array(const kiln::array&)> forward;
};

Classifier load_classifier(const std::string& name, const std::string& weights, kiln::Dtype dtype) {
  std::map<std::string, kiln::array> state = std::filesystem::path(weights).extension() == ".safetensors"
                                                  ? kiln::io::load_safetensors(weights)
                                                  : kiln::io::load_torch_checkpoint(weights);
  Classifier c{name, dtype, nullptr, nullptr};
  if (name == "efficientnet-lite0") {
    auto m = std::make_unique<kiln::models::EfficientNetLite0>(1000, dtype);
    m->load_torch(state, dtype);
    m->fold_batchnorm();
    auto* p = m.get();
    c.forward = [p](const kiln::array& x) { return (*p)(x); };
    c.module = std::move(m);
  } else if (name.rfind("resnet", 0) == 0) {
    auto m = std::make_unique<kiln::models::ResNet>(std::atoi(name.c_str() + 6), 1000, dtype);
    m->load_torchvision(state, dtype);
    m->fold_batchnorm();
    auto* p = m.get();
    c.forward = [p](const kiln::array& x) { return (*p)(x); };
    c.module = std::move(m);
  } else {
    kiln::fail<kiln::ValueError>("[python] unknown classifier '", name,
                                 "' (efficientnet-lite0, resnet18/34/50/101/152)");
  }
  return c;
}

}  // namespace

void init_vision(nb::module_& parent) {
  nb::module_ m = parent.def_submodule("vision", "Image files and torchvision's transforms.");
  m.def(
      "load_image",
      [](const std::string& path, bool native_channels) {
        nb::gil_scoped_release release;
        kiln::io::ImageOptions o;
        o.native_channels = native_channels;
        return kiln::io::load_image(path, o);
      },
      "path"_a, "native_channels"_a = false,
      "A JPEG or PNG file as uint8 (height, width, 3) (the file's own channels with native_channels), as Pillow "
      "reads it.");
  m.def(
      "resize",
      [](const ArrayLike& image, const ShapeArg& size, bool antialias, std::optional<int64_t> max_size) {
        kiln::array x = to_array(image);
        if (std::holds_alternative<int64_t>(size))
          return kiln::vision::resize(x, std::get<int64_t>(size), antialias, max_size);
        return kiln::vision::resize(x, to_shape(size), antialias, max_size);
      },
      "image"_a, "size"_a, "antialias"_a = true, "max_size"_a = nb::none(),
      "torchvision's bilinear resize of (..., H, W, C): one size sets the shorter side, two are (height, width).");
  m.def(
      "center_crop",
      [](const ArrayLike& image, const ShapeArg& size, StreamOrDevice s) {
        return kiln::vision::center_crop(to_array(image), to_shape(size), s);
      },
      "image"_a, "size"_a, nb::kw_only(), "stream"_a = nb::none(),
      "torchvision's center crop of (..., H, W, C): one size (a square) or (height, width).");
  m.def(
      "resize_center_crop",
      [](const ArrayLike& image, int64_t size, int64_t crop, bool antialias, StreamOrDevice s) {
        kiln::array x = to_array(image);
        nb::gil_scoped_release release;
        return kiln::vision::resize_center_crop(x, size, crop, antialias, s);
      },
      "image"_a, "size"_a, "crop"_a, "antialias"_a = true, nb::kw_only(), "stream"_a = nb::none(),
      "center_crop(resize(image, size), crop) with the same values; on the CPU only the crop is resampled.");
  m.def(
      "to_float_chw",
      [](const ArrayLike& image, StreamOrDevice s) { return kiln::vision::to_float_chw(to_array(image), s); },
      "image"_a, nb::kw_only(), "stream"_a = nb::none(),
      "ToTensor: (..., H, W, C) to float32 (..., C, H, W), uint8 divided by 255.");
  m.def(
      "normalize",
      [](const ArrayLike& x, const std::vector<double>& mean, const std::vector<double>& std, StreamOrDevice s) {
        return kiln::vision::normalize(to_array(x), mean, std, s);
      },
      "x"_a, "mean"_a, "std"_a, nb::kw_only(), "stream"_a = nb::none(),
      "(x - mean[c]) / std[c] over the channel axis of (..., C, H, W).");
  m.def(
      "imagenet_preprocess",
      [](const ArrayLike& image, StreamOrDevice s) { return kiln::vision::imagenet_preprocess(to_array(image), s); },
      "image"_a, nb::kw_only(), "stream"_a = nb::none(),
      "Resize(256), CenterCrop(224), ToTensor and ImageNet's Normalize of one (H, W, 3) image: float32 "
      "(3, 224, 224).");
  nb::class_<kiln::vision::ImageBatches>(
      m, "ImageBatches",
      "Image files to uint8 (N, crop, crop, 3) batches, decoded, resized and center-cropped on a pool of "
      "threads ahead of their consumer. Iterating gives (pixels or None, names, errors) per batch, in file "
      "order; files that fail are left out and their messages are in errors.")
      .def(nb::init<std::vector<std::string>, int64_t, int64_t, int64_t, int, int>(), "files"_a, "batch"_a,
           "resize"_a = 256, "crop"_a = 224, "threads"_a = 0, "ahead"_a = 4,
           "threads=0: one per hardware thread; ahead: how many batches the threads may run ahead.")
      .def("__len__", &kiln::vision::ImageBatches::size, "The number of batches.")
      .def("__iter__", [](nb::object self) { return self; })
      .def("__next__", [](kiln::vision::ImageBatches& batches) {
        std::optional<kiln::vision::ImageBatch> b;
        {
          nb::gil_scoped_release release;
          b = batches.next();
        }
        if (!b) throw nb::stop_iteration();
        return nb::make_tuple(b->pixels ? nb::cast(*b->pixels) : nb::none(), b->names, b->errors);
      });
  m.attr("IMAGENET_MEAN") = nb::cast(kiln::vision::kImageNetMean);
  m.attr("IMAGENET_STD") = nb::cast(kiln::vision::kImageNetStd);

  nb::module_ models = parent.def_submodule("models", "Pretrained networks.");
  nb::class_<Classifier>(models, "Classifier", "An ImageNet network: clf(images (N, H, W, 3)) -> logits (N, 1000).")
      .def(
          "__call__",
          [](const Classifier& c, const ArrayLike& images) {
            kiln::array x = to_array(images);
            if (x.ndim() != 4 || x.shape(3) != 3)
              kiln::fail<kiln::ValueError>("[python] ", c.name, " takes images (N, H, W, 3), got ", x.ndim(),
                                           " dimensions");
            return c.forward(kiln::astype(x, c.dtype));
          },
          "images"_a, "Logits (N, 1000) of normalized channels-last images.")
      .def_ro("name", &Classifier::name)
      .def_ro("dtype", &Classifier::dtype);
  models.def(
      "load_classifier_weights",
      [](const std::string& name, const std::string& weights, kiln::Dtype dtype) {
        nb::gil_scoped_release release;
        return load_classifier(name, weights, dtype);
      },
      "name"_a, "weights"_a, "dtype"_a = kiln::float32,
      "efficientnet-lite0 or resnet18/34/50/101/152 with the weights of a PyTorch state dict or safetensors file.");

  parent.def(
      "load_torch_checkpoint",
      [](const std::string& path, std::optional<kiln::Dtype> target) {
        nb::gil_scoped_release release;
        return kiln::io::load_torch_checkpoint(path, target);
      },
      "path"_a, "target"_a = nb::none(),
      "Every tensor of a torch.save'd state dict (.pth/.pt) by dotted name, without running its pickle.");
}

}  // namespace kiln_py
