#include "kiln/vision/image_batches.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "kiln/errors.h"
#include "kiln/io/image.h"
#include "kiln/memory.h"
#include "kiln/ops.h"
#include "kiln/vision/transforms.h"

namespace kiln::vision {

ImageBatches::ImageBatches(std::vector<std::string> files, int64_t batch, int64_t resize, int64_t crop, int threads,
                           int ahead)
    : files_(std::move(files)),
      batch_(batch),
      resize_(resize),
      crop_(crop),
      batches_(batch > 0 ? (files_.size() + batch - 1) / batch : 0),
      ahead_(static_cast<size_t>(std::max(1, ahead))) {
  if (batch < 1) fail<ValueError>("ImageBatches: the batch size must be positive, not ", batch);
  if (crop < 1 || resize < crop) fail<ValueError>("ImageBatches: need 0 < crop <= resize, got crop ", crop, " and resize ", resize);
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), std::max<size_t>(1, files_.size())));
  try {
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { work(); });
  } catch (...) {  // a thread that could not start: stop the others before the error leaves
    stop();
    throw;
  }
}

ImageBatches::~ImageBatches() { stop(); }

void ImageBatches::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

size_t ImageBatches::batch_size(size_t b) const {
  return std::min(files_.size(), (b + 1) * batch_) - b * batch_;
}

ImageBatches::Pending& ImageBatches::pending(size_t b) {
  auto it = pending_.find(b);
  if (it != pending_.end()) return it->second;
  const size_t n = batch_size(b);
  Pending p;  // made whole before it is filed: an allocation that throws leaves no entry
  p.pixels = std::make_shared<std::vector<uint8_t>>(n * crop_ * crop_ * 3);
  p.ok.assign(n, 0);
  p.errors.resize(n);
  return pending_.emplace(b, std::move(p)).first->second;
}

void ImageBatches::work() {
  try {
    decode_files();
  } catch (...) {  // not a file's fault (no memory for a batch): next() rethrows it
    std::lock_guard<std::mutex> lock(mutex_);
    if (!fatal_) fatal_ = std::current_exception();
    stop_ = true;
    work_cv_.notify_all();
    ready_cv_.notify_all();
  }
}

void ImageBatches::decode_files() {
  const Device cpu(Device::cpu);
  const size_t row = static_cast<size_t>(crop_ * 3), image = row * crop_;
  for (;;) {
    size_t i;
    uint8_t* dst;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] { return stop_ || (next_file_ < files_.size() && next_file_ / batch_ < consumed_ + ahead_); });
      if (stop_) return;
      i = next_file_++;
      dst = pending(i / batch_).pixels->data() + (i % batch_) * image;
    }
    std::string error;
    try {
      // Only the crop is resampled (resize_center_crop); its rows are copied into the batch.
      array crop = resize_center_crop(io::load_image(files_[i]), resize_, crop_, true, cpu);
      crop.eval();
      if (crop.strides()[2] != 1 || crop.strides()[1] != 3) crop = contiguous(crop, cpu), crop.eval();
      const uint8_t* src = crop.host_data<uint8_t>();
      for (int64_t r = 0; r < crop_; ++r) std::memcpy(dst + r * row, src + r * crop.strides()[0], row);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = files_[i] + ": an unknown error";
    }
    std::lock_guard<std::mutex> lock(mutex_);
    Pending& p = pending_.at(i / batch_);
    p.ok[i % batch_] = error.empty();
    p.errors[i % batch_] = std::move(error);
    if (++p.done == p.ok.size()) ready_cv_.notify_all();
  }
}

std::optional<ImageBatch> ImageBatches::next() {
  Pending p;
  size_t b;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (consumed_ >= batches_) return std::nullopt;
    b = consumed_;
    ready_cv_.wait(lock, [&] {
      auto it = pending_.find(b);
      return fatal_ || (it != pending_.end() && it->second.done == it->second.ok.size());
    });
    if (fatal_) std::rethrow_exception(fatal_);
    p = std::move(pending_.at(b));
    pending_.erase(b);
    ++consumed_;
  }
  work_cv_.notify_all();
  ImageBatch out;
  const size_t image = static_cast<size_t>(crop_ * crop_ * 3);
  int64_t kept = 0;
  for (size_t i = 0; i < p.ok.size(); ++i) {
    if (!p.ok[i]) {
      out.errors.push_back(std::move(p.errors[i]));
      continue;
    }
    if (kept != static_cast<int64_t>(i)) std::memmove(p.pixels->data() + kept * image, p.pixels->data() + i * image, image);
    ++kept;
    out.names.push_back(files_[b * batch_ + i]);
  }
  if (kept > 0) {
    const Device cpu(Device::cpu);
    auto pixels = p.pixels;
    ExternalMemory memory{pixels->data(), cpu, -1, [pixels] {}};
    out.pixels = from_external(std::move(memory), {kept, crop_, crop_, 3}, uint8, {}, cpu);
  }
  return out;
}

}  // namespace kiln::vision
