// vision::ImageBatches: batches in file order whose rows equal the one-image pipeline
// (io::load_image, vision::resize, vision::center_crop), files that fail reported and left out,
// whatever the threads, the batch size and how far ahead they decode.
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/io/image.h"
#include "kiln/kiln.h"
#include "kiln/vision/image_batches.h"
#include "kiln/vision/transforms.h"
#include "file_utils.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> photos() {
  fs::path dir = fs::path(__FILE__).parent_path().parent_path() / "models/photos";
  std::vector<std::string> files;
  for (const char* name : {"chelsea.png", "dog.jpg", "coffee.png", "grace_hopper.jpg", "rocket.jpg", "camera.png"})
    if (fs::is_regular_file(dir / name)) files.push_back((dir / name).string());
  return files;
}

TEST(ImageBatches, RowsAreTheOneImagePipelineInOrder) {
  std::vector<std::string> good = photos();
  if (good.size() < 3) GTEST_SKIP() << "photos missing (scripts/get_photos.sh)";
  const Device cpu(Device::cpu);
  test::TempDir dir("kiln_batches");
  test::write_file(dir.file("broken.jpg"), std::string("\xFF\xD8\xFF\xE0 not a JPEG", 14));
  // The broken file in the middle; every photo twice, so that a batch spans both rounds.
  std::vector<std::string> files = good;
  files.push_back(dir.file("broken.jpg"));
  files.insert(files.end(), good.begin(), good.end());
  std::vector<array> expected;
  for (const auto& f : good) {
    array c = contiguous(vision::center_crop(vision::resize(io::load_image(f), 96, true, {}, cpu), 80, cpu), cpu);
    c.eval();
    expected.push_back(c);
  }
  for (auto [batch, threads, ahead] : {std::tuple{4, 3, 1}, std::tuple{3, 1, 2}, std::tuple{64, 8, 4}}) {
    SCOPED_TRACE("batch " + std::to_string(batch) + ", threads " + std::to_string(threads));
    vision::ImageBatches batches(files, batch, 96, 80, threads, ahead);
    ASSERT_EQ(batches.size(), (files.size() + batch - 1) / batch);
    size_t seen = 0, errors = 0;
    for (size_t b = 0; b < batches.size(); ++b) {
      std::optional<vision::ImageBatch> got = batches.next();
      ASSERT_TRUE(got);
      for (const auto& e : got->errors) {
        EXPECT_NE(e.find("broken.jpg"), std::string::npos) << e;
        ++errors;
      }
      ASSERT_TRUE(got->pixels);
      ASSERT_EQ(got->pixels->shape(), (Shape{static_cast<int64_t>(got->names.size()), 80, 80, 3}));
      ASSERT_EQ(got->pixels->dtype(), uint8);
      for (size_t i = 0; i < got->names.size(); ++i, ++seen) {
        const size_t k = seen % good.size();
        EXPECT_EQ(got->names[i], good[k]);
        array row = slice(*got->pixels, {static_cast<int64_t>(i), 0, 0, 0}, {static_cast<int64_t>(i) + 1, 80, 80, 3}, {}, cpu);
        EXPECT_EQ(contiguous(row, cpu).to_vector<uint8_t>(), expected[k].to_vector<uint8_t>()) << got->names[i];
      }
    }
    EXPECT_EQ(seen, 2 * good.size());
    EXPECT_EQ(errors, 1u);
    EXPECT_FALSE(batches.next());
  }
}

TEST(ImageBatches, StopsEarlyAndRejectsBadSizes) {
  std::vector<std::string> good = photos();
  if (good.empty()) GTEST_SKIP() << "photos missing (scripts/get_photos.sh)";
  {
    std::vector<std::string> many(40, good[0]);
    vision::ImageBatches batches(many, 2, 64, 64, 4, 2);
    EXPECT_TRUE(batches.next());  // dropped with batches still to decode: the threads stop
  }
  EXPECT_THROW(vision::ImageBatches(good, 0), ValueError);
  EXPECT_THROW(vision::ImageBatches(good, 4, 200, 224), ValueError);
}

}  // namespace
}  // namespace kiln
