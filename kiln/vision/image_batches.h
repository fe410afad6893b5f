// Image files to uint8 batches on a pool of host threads, decoded ahead of their consumer (the
// part of PyTorch's DataLoader that a classifier needs). Each file is decoded (io::load_image),
// resized so that its shorter side is `resize` (torchvision's uint8 kernel) and center-cropped to
// crop x crop; a batch is (N, crop, crop, 3) uint8 on the host, files that fail left out with
// their messages. The threads work through the files in order, image by image, at most `ahead`
// batches beyond the one being consumed, so no thread idles at a batch's end.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kiln/array.h"

namespace kiln::vision {

struct ImageBatch {
  std::optional<array> pixels;     // (N, crop, crop, 3) uint8; none when every file failed
  std::vector<std::string> names;  // the files of pixels' rows
  std::vector<std::string> errors; // the messages of the files that failed
};

class ImageBatches {
 public:
  ImageBatches(std::vector<std::string> files, int64_t batch, int64_t resize = 256, int64_t crop = 224,
               int threads = 0 /* the hardware threads */, int ahead = 4);
  ~ImageBatches();
  ImageBatches(const ImageBatches&) = delete;
  ImageBatches& operator=(const ImageBatches&) = delete;

  size_t size() const { return batches_; }
  // The next batch in order (blocking until its files are done); none after the last. One
  // consumer thread at a time. A failure that is no file's (no memory for a batch) is rethrown.
  std::optional<ImageBatch> next();

 private:
  struct Pending {
    std::shared_ptr<std::vector<uint8_t>> pixels;
    std::vector<char> ok;
    std::vector<std::string> errors;
    size_t done = 0;
  };
  void work();
  void decode_files();
  void stop();
  Pending& pending(size_t b);  // under mutex_
  size_t batch_size(size_t b) const;

  const std::vector<std::string> files_;
  const int64_t batch_, resize_, crop_;
  const size_t batches_, ahead_;
  std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  std::map<size_t, Pending> pending_;
  size_t next_file_ = 0, consumed_ = 0;
  bool stop_ = false;
  std::exception_ptr fatal_;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::vision
