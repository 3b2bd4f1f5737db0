#include <gtest/gtest.h>

#include <cmath>

#include "model.h"
#include "test_util.h"
#include "unet.h"

namespace ddim {
namespace {

TEST(UNet, ReferenceConfigHasExactlyTheReferenceParameterCount) {
  const Model model(ModelConfig{}, torch::kCPU, 1);
  EXPECT_EQ(model.parameter_count(), 3562211);
}

TEST(UNet, TensorSpecsDescribeTheBuiltNetworkExactly) {
  ModelConfig deep = testing::tiny_config();
  deep.widths = {4, 12, 8};
  deep.block_depth = 3;
  deep.channels = 3;
  deep.image_size = 8;
  ModelConfig classes = deep;
  classes.classes = 7;
  for (const auto& config : {ModelConfig{}, testing::tiny_config(), deep, classes}) {
    const UNet network(config);
    auto specs = unet_tensor_specs(config);
    const auto check = [&](const std::string& name, const torch::Tensor& tensor, bool parameter) {
      const auto found = specs.find(name);
      ASSERT_NE(found, specs.end()) << name;
      EXPECT_EQ(found->second.shape, tensor.sizes().vec()) << name;
      EXPECT_EQ(found->second.parameter, parameter) << name;
      EXPECT_EQ(found->second.integral, tensor.scalar_type() == torch::kLong) << name;
      specs.erase(found);
    };
    for (const auto& item : network->named_parameters()) check(item.key(), item.value(), true);
    for (const auto& item : network->named_buffers()) check(item.key(), item.value(), false);
    EXPECT_TRUE(specs.empty()) << specs.begin()->first;
    EXPECT_EQ(unet_parameter_count(config), Model(config, torch::kCPU, 1).parameter_count());
  }
}

TEST(UNet, GreyscaleThirtyTwoPixelModelCountsItsOwnChannels) {
  ModelConfig config;
  config.channels = 1;
  config.image_size = 32;
  const Model model(config, torch::kCPU, 1);
  // Only the 1x1 convolutions at both ends depend on the channel count: the input one loses 2 x 32
  // weights, the output one 2 x 32 weights and 2 biases.
  EXPECT_EQ(model.parameter_count(), 3562211 - 2 * 32 - (2 * 32 + 2));
}

TEST(UNet, OutputHasInputShapeAndStartsAtZero) {
  Model model(testing::tiny_config(), torch::kCPU, 3);
  model.net()->eval();
  const auto x = torch::randn({2, 1, 16, 16});
  const auto out = model.net()->forward(x, torch::rand({2}));
  EXPECT_EQ(out.sizes(), x.sizes());
  // The output convolution is zero-initialised, as in the reference.
  EXPECT_EQ(out.abs().max().item<float>(), 0.0f);
}

TEST(UNet, EveryParameterShapesTheOutputOnceTrainedAwayFromZero) {
  Model model(testing::tiny_config(), torch::kCPU, 3);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model.net()->parameters()) p.add_(0.01);
  }
  const auto out = model.net()->forward(torch::randn({2, 1, 16, 16}), torch::rand({2}));
  out.square().sum().backward();
  for (const auto& item : model.net()->named_parameters())
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key() << " receives no gradient";
}

TEST(UNet, SinusoidalEmbeddingMatchesFormula) {
  SinusoidalEmbedding embedding(8);
  const auto variance = torch::tensor({0.0f, 0.3f});
  const auto e = embedding->forward(variance);
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{2, 8, 1, 1}));
  for (int i = 0; i < 4; ++i) {
    const double frequency = std::exp(std::log(1.0) + i * (std::log(1000.0) - std::log(1.0)) / 3);
    EXPECT_NEAR(e[0][i].item<float>(), 0.0, 1e-6);
    EXPECT_NEAR(e[0][4 + i].item<float>(), 1.0, 1e-6);
    // float32 angles reach 2 pi 1000 v ~ 1900 rad here, where one ulp is ~1e-4.
    EXPECT_NEAR(e[1][i].item<float>(), std::sin(2 * M_PI * frequency * 0.3), 1e-3);
    EXPECT_NEAR(e[1][4 + i].item<float>(), std::cos(2 * M_PI * frequency * 0.3), 1e-3);
  }
}

TEST(UNet, CreationIsReproducibleFromTheSeed) {
  Model a(testing::tiny_config(), torch::kCPU, 7), b(testing::tiny_config(), torch::kCPU, 7),
      c(testing::tiny_config(), torch::kCPU, 8);
  const auto pa = a.net()->parameters(), pb = b.net()->parameters(), pc = c.net()->parameters();
  bool any_difference = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i], pb[i]));
    any_difference = any_difference || !torch::equal(pa[i], pc[i]);
  }
  EXPECT_TRUE(any_difference);
}

TEST(UNet, TargetDecidesWhatThePredictionDerives) {
  auto config = testing::tiny_config();
  Model noise_model(config, torch::kCPU, 1);
  const auto x = torch::randn({1, 1, 16, 16});
  const auto signal = torch::full({1, 1, 1, 1}, 0.6f), noise = torch::full({1, 1, 1, 1}, 0.8f);
  // Zero output: a noise model predicts zero noise, so the image is x / signal.
  auto p = noise_model.predict(noise_model.net(), x, signal, noise);
  EXPECT_TRUE(torch::allclose(p.image, x / 0.6f));
  config.target = Target::Image;
  Model image_model(config, torch::kCPU, 1);
  p = image_model.predict(image_model.net(), x, signal, noise);
  EXPECT_TRUE(torch::allclose(p.noise, x / 0.8f));
}

}  // namespace
}  // namespace ddim
