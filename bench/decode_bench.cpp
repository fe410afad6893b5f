// The host's side of classification alone: image files to (N, 224, 224, 3) uint8 batches
// (decode, Resize(256), CenterCrop(224)) with vision::ImageBatches on every core, no model. The
// end-to-end rate of `kiln classify` cannot pass this; bench/vision_e2e.py prints it as the floor.
//   decode_bench [--batch N] [--threads N] FILE|FOLDER...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/vision/image_batches.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  int64_t batch = 64;
  int threads = 0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--batch" && i + 1 < argc) {
      batch = std::stoll(argv[++i]);
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::stoi(argv[++i]);
    } else if (fs::is_directory(a)) {
      std::vector<std::string> found;
      for (const auto& e : fs::recursive_directory_iterator(a))
        if (e.is_regular_file()) found.push_back(e.path().string());
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: decode_bench [--batch N] [--threads N] FILE|FOLDER...\n");
    return 2;
  }
  auto t0 = std::chrono::steady_clock::now();
  kiln::vision::ImageBatches batches(files, batch, 256, 224, threads);
  size_t images = 0, failed = 0;
  while (auto b = batches.next()) {
    images += b->names.size();
    failed += b->errors.size();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("decoded_images %zu\nfailed_images %zu\nseconds %.3f\nimages_per_s %.1f\n", images, failed, s, images / s);
  return failed ? 1 : 0;
}
