// ResNet (kiln/models/resnet.h) against torchvision: random weights saved by
// tests/fixtures/resnet_reference.py at test time (needs torch and torchvision; skipped visibly
// without them), logits of the same inputs, with and without batch norm folded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "kiln/io/safetensors.h"
#include "kiln/kiln.h"
#include "kiln/models/resnet.h"
#include "file_utils.h"
#include "model_utils.h"
#include "test_utils.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

TEST(ResNet, MatchesTorchvision) {
  if (std::system("python3 -c 'import torch, torchvision, safetensors' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "torch, torchvision and safetensors are needed for the reference (pip install torchvision)";
  }
  test::TempDir dir("kiln_resnet");
  std::string script = (fs::path(__FILE__).parent_path() / "fixtures" / "resnet_reference.py").string();
  ASSERT_EQ(std::system(("python3 '" + script + "' '" + dir.path.string() + "' 18 50 >/dev/null 2>&1").c_str()), 0);
  for (int depth : {18, 50}) {
    std::string name = "resnet" + std::to_string(depth);
    auto sd = io::load_safetensors(dir.file(name + ".safetensors"));
    auto io_ = io::load_safetensors(dir.file(name + "_io.safetensors"));
    for (Device d : test::devices()) {
      test::DefaultDevice scope(d);
      std::string what = name + " on " + test::device_name(d);
      models::ResNet model(depth);
      model.load_torchvision(sd);
      array logits = model(io_.at("input"));
      ASSERT_EQ(logits.shape(), (Shape{2, 1000})) << what;
      EXPECT_LT(test::max_rel_diff(logits, io_.at("logits")), 1e-4) << what;
      model.fold_batchnorm();
      EXPECT_LT(test::max_rel_diff(model(io_.at("input")), io_.at("logits")), 1e-4) << what << " folded";
      models::ResNet half(depth, 1000, bfloat16);
      half.load_torchvision(sd, bfloat16);
      EXPECT_LT(test::max_rel_diff(half(astype(io_.at("input"), bfloat16)), io_.at("logits")), 0.1) << what << " bfloat16";
    }
  }
}

TEST(ResNet, NamesAndErrors) {
  models::ResNet r18(18);
  auto p = r18.parameters();
  for (const char* n : {"conv1.weight", "bn1.running_var", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
                        "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight"}) {
    EXPECT_EQ(p.count(n), 1u) << n;
  }
  EXPECT_EQ(p.at("conv1.weight").shape(), (Shape{64, 7, 7, 3}));  // channels-last
  EXPECT_EQ(r18.num_parameters(), 11699132);  // every entry of torchvision's state dict, buffers included
  models::ResNet r50(50);
  EXPECT_EQ(r50.parameters().at("layer1.0.conv3.weight").shape(), (Shape{256, 1, 1, 64}));
  KILN_EXPECT_THROW_MSG(models::ResNet(20), ValueError, "depth must be");
  KILN_EXPECT_THROW_MSG(r18(zeros({1, 32, 32, 4})), ValueError, "(N, H, W, 3)");
  std::map<std::string, array> partial{{"conv1.weight", zeros({64, 3, 7, 7})}};
  KILN_EXPECT_THROW_MSG(r18.load_torchvision(partial), ValueError, "fc.weight");
}

}  // namespace
}  // namespace kiln
