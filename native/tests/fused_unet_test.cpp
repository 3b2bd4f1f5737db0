// The fused oneDNN network against the eager one it replaces for sampling: same function (to float32
// rounding), same guarantees (determinism, batch invariance), fresh weights after training.
#include <gtest/gtest.h>

#include "error.h"
#include "fused_unet.h"
#include "model.h"
#include "model_file.h"
#include "sampling.h"
#include "test_util.h"

namespace ddim {
namespace {

class FusedNetwork : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fused_network_available()) GTEST_SKIP() << "built without oneDNN's headers";
  }
};

// Every weight, bias and BatchNorm statistic away from its initial value, the output convolution
// included, so that each part of the network shows in the output.
void randomise(UNet& network, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : network->named_parameters()) {
    auto values = torch::empty(item.value().sizes()).uniform_(-0.3, 0.3, generator);
    if (item.key().find(".norm.weight") != std::string::npos) values += 1;
    item.value().copy_(values);
  }
  for (auto& item : network->named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos)
      item.value().copy_(torch::empty(item.value().sizes()).uniform_(-0.5, 0.5, generator));
    if (item.key().find("running_var") != std::string::npos)
      item.value().copy_(torch::empty(item.value().sizes()).uniform_(0.5, 2.0, generator));
  }
}

// The reference architecture (3x64x64, widths 32-64-96-128, depth 2) and the tiny test one (whose
// 8-channel widths are not a multiple of AVX-512's 16-channel blocks).
std::vector<ModelConfig> configs() {
  ModelConfig reference;
  return {reference, testing::tiny_config()};
}

TEST_F(FusedNetwork, ComputesWhatTheEagerNetworkComputes) {
  for (const auto& config : configs()) {
    Model model(config, torch::kCPU, 3);
    randomise(model.net(), 11);
    model.net()->eval();
    torch::InferenceMode inference;
    const int64_t batch = 4;
    FusedUNet fused(config, batch);
    fused.load_weights(*model.net());
    auto generator = at::make_generator<at::CPUGeneratorImpl>(7);
    const auto noisy = torch::randn({batch, config.channels, config.image_size, config.image_size}, generator);
    const auto variances = torch::rand({batch}, generator);
    const auto eager = model.net()->forward(noisy, variances);
    const auto result = fused.forward(noisy, variances);
    ASSERT_EQ(result.sizes(), eager.sizes());
    const double scale = eager.abs().max().item<double>();
    ASSERT_GT(scale, 0.1);  // the randomised network's output is not trivially small
    EXPECT_LT((result - eager).abs().max().item<double>(), 1e-4 * scale) << fused.activation_layout();
    // Each image is its own: changing image 0 changes nothing else (BatchNorm uses running statistics).
    auto other = noisy.clone();
    other[0].normal_(0, 1, generator);
    const auto changed = fused.forward(other, variances);
    EXPECT_TRUE(torch::equal(changed.slice(0, 1), result.slice(0, 1)));
    EXPECT_FALSE(torch::equal(changed[0], result[0]));
  }
}

SampleRequest fused_request(int64_t count, int64_t steps, uint64_t seed) {
  SampleRequest request;
  request.count = count;
  request.steps = steps;
  request.seed = seed;
  request.network = NetworkKind::Fused;
  return request;
}

TEST_F(FusedNetwork, SamplesCloseToEagerDeterministicallyAndBatchInvariantly) {
  Model model(testing::tiny_config(), torch::kCPU, 3);
  randomise(model.net(), 5);
  model.set_normalizer(torch::tensor({0.3f}), torch::tensor({0.4f}));
  auto request = fused_request(20, 5, 9);
  request.batch_size = 20;
  const auto before = model.evaluations();
  const auto fused = sample(model, request);
  EXPECT_EQ(model.evaluations() - before, 5);
  EXPECT_TRUE(torch::equal(fused, sample(model, request)));  // same seed, same pixels
  auto eager_request = request;
  eager_request.network = NetworkKind::Eager;
  const auto eager = sample(model, eager_request);
  EXPECT_LT((fused - eager).abs().max().item<float>(), 1e-3f);
  // Image i depends only on the seed and i: a lone image, and chunks of 3, give the same bits.
  auto lone = fused_request(1, 5, 9);
  lone.first_index = 17;
  EXPECT_TRUE(torch::equal(sample(model, lone), fused.slice(0, 17, 18)));
  auto chunked = request;
  chunked.batch_size = 3;
  EXPECT_TRUE(torch::equal(sample(model, chunked), fused));
}

TEST_F(FusedNetwork, FollowsTheWeightsAsTheyChange) {
  Model model(testing::tiny_config(), torch::kCPU, 3);
  randomise(model.net(), 5);
  auto request = fused_request(4, 2, 1);
  const auto first = sample(model, request);
  randomise(model.net(), 6);  // as a training step would: the plan must not keep the old weights
  const auto second = sample(model, request);
  auto eager_request = request;
  eager_request.network = NetworkKind::Eager;
  const auto eager = sample(model, eager_request);
  EXPECT_LT((second - eager).abs().mean().item<float>(), 1e-4f);
  EXPECT_GT((first - eager).abs().mean().item<float>(), 1e-2f);
}

TEST_F(FusedNetwork, RunsTheSharedModelFile) {
  const auto model = load_model(std::string(DDIM_SOURCE_DIR) + "/models/fashion-mnist-32.safetensors", torch::kCPU);
  auto request = fused_request(16, 10, 3);
  const auto fused = sample(*model, request);
  request.network = NetworkKind::Eager;
  const auto eager = sample(*model, request);
  EXPECT_LT((fused - eager).abs().max().item<float>(), 2e-3f);
  EXPECT_LT((fused - eager).abs().mean().item<float>(), 1e-4f);
}

TEST(FusedNetworkRequests, AreCheckedBeforeAnythingRuns) {
  Model model(testing::tiny_config(), torch::kCPU, 3);
  auto request = fused_request(2, 2, 1);
  request.precision = Precision::BFloat16;
  EXPECT_THROW(sample(model, request), Error);
  request.precision = Precision::Float32;
  request.network = static_cast<NetworkKind>(7);
  EXPECT_THROW(sample(model, request), Error);
  if (!fused_network_available()) {
    request.network = NetworkKind::Fused;
    EXPECT_THROW(sample(model, request), Error);
  }
}

}  // namespace
}  // namespace ddim
