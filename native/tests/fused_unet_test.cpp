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

// Noisy images of `config` and their noise variances, drawn from `seed`.
std::pair<torch::Tensor, torch::Tensor> random_inputs(const ModelConfig& config, int64_t batch, uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto noisy = torch::randn({batch, config.channels, config.image_size, config.image_size}, generator);
  return {noisy, torch::rand({batch}, generator)};
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
  // Random weights make this tiny network chaotic: Winograd's rounding grows to ~1e-3 here, against
  // ~1e-4 on the trained models (README).
  EXPECT_LT((fused - eager).abs().max().item<float>(), 3e-3f);
  EXPECT_LT((fused - eager).abs().mean().item<float>(), 1e-4f);
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
  // A network replaced by another (as training's first step makes an EMA copy) is loaded again,
  // even where its tensors reuse the old one's memory at the same versions.
  model.ema().emplace(model.make_network());
  randomise(*model.ema(), 7);
  const auto third = sample(model, request);
  EXPECT_LT((third - sample(model, eager_request)).abs().mean().item<float>(), 1e-4f);
  model.ema().emplace(model.make_network());
  randomise(*model.ema(), 8);
  EXPECT_GT((sample(model, request) - third).abs().mean().item<float>(), 1e-2f);
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
  request.network = static_cast<NetworkKind>(7);
  EXPECT_THROW(sample(model, request), Error);
  if (!fused_network_available()) {
    request.network = NetworkKind::Fused;
    EXPECT_THROW(sample(model, request), Error);
  } else if (!fused_bfloat16_native()) {
    // bfloat16 on FUSED is refused by name where the CPU would emulate it.
    request.network = NetworkKind::Fused;
    request.precision = Precision::BFloat16;
    try {
      sample(model, request);
      ADD_FAILURE() << "fused bfloat16 ran on a CPU without AVX512-BF16";
    } catch (const Error& error) {
      EXPECT_EQ(error.status(), Status::InvalidArgument);
      EXPECT_NE(std::string(error.what()).find("AVX512-BF16"), std::string::npos) << error.what();
    }
  }
}

// Every model the config allows: class-conditional (with guidance), image target, widths that are
// not a multiple of the layout's channel block, one or three blocks per level, two channels.
TEST_F(FusedNetwork, CoversEveryArchitectureTheConfigAllows) {
  std::vector<ModelConfig> variants;
  auto classes = testing::tiny_config();
  classes.classes = 4;
  variants.push_back(classes);
  auto image_target = testing::tiny_config();
  image_target.target = Target::Image;
  variants.push_back(image_target);
  auto odd = testing::tiny_config();
  odd.widths = {24, 40, 8};
  odd.block_depth = 3;
  odd.channels = 2;
  odd.embedding_dim = 6;
  variants.push_back(odd);
  auto wide = testing::tiny_config();
  wide.widths = {32};
  wide.image_size = 8;
  wide.channels = 3;
  variants.push_back(wide);
  for (const auto& config : variants) {
    Model model(config, torch::kCPU, 3);
    randomise(model.net(), 21);
    model.net()->eval();
    torch::InferenceMode inference;
    const int64_t batch = 6;
    const auto [noisy, variances] = random_inputs(config, batch, 4);
    const auto labels = config.classes > 0 ? torch::tensor({0, 1, 2, 3, 4, 1}, torch::kLong) : torch::Tensor();
    const auto eager = model.net()->forward(noisy, variances, labels);
    for (const auto algorithm : {ConvAlgorithm::Fastest, ConvAlgorithm::Direct}) {
      FusedUNet fused(config, batch, {torch::kFloat, algorithm});
      fused.load_weights(*model.net());
      const auto result = fused.forward(noisy, variances, labels);
      const double scale = eager.abs().max().item<double>();
      ASSERT_GT(scale, 0.1);
      EXPECT_LT((result - eager).abs().max().item<double>(), 1e-4 * scale)
          << "widths[0] " << config.widths[0] << ", classes " << config.classes << ", in place " << fused.joins_in_place();
      if (config.classes > 0) {  // the class vector reaches the output: "no class" (4) for image 0 changes it
        auto other = labels.clone();
        other[0] = 4;
        const auto changed = fused.forward(noisy, variances, other);
        EXPECT_FALSE(torch::equal(changed[0], result[0]));
        EXPECT_TRUE(torch::equal(changed.slice(0, 1), result.slice(0, 1)));
      }
    }
  }
}

TEST_F(FusedNetwork, SamplesClassModelsWithGuidanceInOneBatchedPlanCall) {
  auto config = testing::tiny_config();
  config.classes = 3;
  Model model(config, torch::kCPU, 3);
  randomise(model.net(), 8);
  auto request = fused_request(5, 4, 2);
  request.micro_batch = 4;
  request.classes = {0, 2, 1, 1, 0};
  request.guidance = 3;
  const auto fused = sample(model, request);
  // Both halves of each micro-batch go through one plan of twice its size.
  EXPECT_EQ(model.fused_plan_batches(), std::vector<int64_t>{2 * request.micro_batch});
  auto eager_request = request;
  eager_request.network = NetworkKind::Eager;
  const auto eager = sample(model, eager_request);
  EXPECT_LT((fused - eager).abs().max().item<float>(), 1e-3f);
  EXPECT_TRUE(torch::equal(fused, sample(model, request)));
  // Guidance shows: the plain conditional prediction gives other pixels.
  auto plain = request;
  plain.guidance = 1;
  EXPECT_GT((sample(model, plain) - fused).abs().max().item<float>(), 1e-2f);
  // Image 3 alone (its class, its index) gets the same bits as in the batch.
  auto lone = request;
  lone.count = 1;
  lone.first_index = 3;
  lone.classes = {1};
  EXPECT_TRUE(torch::equal(sample(model, lone), fused.slice(0, 3, 4)));
}

TEST_F(FusedNetwork, UsesTheEmaWeightsWhenAskedAndTheRawOnesOtherwise) {
  Model model(testing::tiny_config(), torch::kCPU, 3);
  randomise(model.net(), 5);
  model.ema().emplace(model.make_network());
  randomise(*model.ema(), 6);
  for (const bool use_ema : {true, false}) {
    auto request = fused_request(3, 3, 1);
    request.use_ema = use_ema;
    const auto fused = sample(model, request);
    auto eager_request = request;
    eager_request.network = NetworkKind::Eager;
    EXPECT_LT((fused - sample(model, eager_request)).abs().mean().item<float>(), 1e-4f) << "use_ema " << use_ema;
    eager_request.use_ema = !use_ema;
    EXPECT_GT((fused - sample(model, eager_request)).abs().mean().item<float>(), 1e-2f) << "use_ema " << use_ema;
  }
}

TEST_F(FusedNetwork, AutoIsTheFusedPlanOnTheCpu) {
  Model model(testing::tiny_config(), torch::kCPU, 3);
  randomise(model.net(), 5);
  SampleRequest request;
  request.count = 3;
  EXPECT_EQ(request.network, NetworkKind::Auto);  // the default
  // One evaluation, unclamped (sampled pixels of this random network saturate at 0 and 1).
  auto generator = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto noisy = torch::randn({3, 1, 16, 16}, generator);
  const auto t = torch::tensor({0.9f, 0.5f, 0.1f});
  const auto automatic = predict(model, request, noisy, t).noise;
  request.network = NetworkKind::Fused;
  EXPECT_TRUE(torch::equal(automatic, predict(model, request, noisy, t).noise));
  request.network = NetworkKind::Eager;
  EXPECT_FALSE(torch::equal(automatic, predict(model, request, noisy, t).noise));
}

TEST_F(FusedNetwork, ComputesInBfloat16WhereTheCpuHasIt) {
  ModelConfig config;  // the reference: bfloat16 rounding shows against a realistic depth
  config.image_size = 32;
  if (!fused_bfloat16_native()) {
    EXPECT_THROW(FusedUNet(config, 2, {torch::kBFloat16}), Error);
    GTEST_SKIP() << "no AVX512-BF16 or AMX: the bfloat16 plan is refused (checked), its numbers unmeasured here";
  }
  Model model(config, torch::kCPU, 3);
  randomise(model.net(), 11);
  model.net()->eval();
  torch::InferenceMode inference;
  const int64_t batch = 2;
  const auto [noisy, variances] = random_inputs(config, batch, 7);
  const auto eager = model.net()->forward(noisy, variances);
  FusedUNet fused(config, batch, {torch::kBFloat16});
  fused.load_weights(*model.net());
  const auto result = fused.forward(noisy, variances);
  const double scale = eager.abs().max().item<double>();
  const double error = (result - eager).abs().max().item<double>() / scale;
  EXPECT_GT(error, 1e-5);  // it really computes in bfloat16 (8 significant bits)...
  EXPECT_LT(error, 5e-2);  // ...and still computes the same function
}

// Where conv_a runs Winograd, each block's BatchNorm is folded into it: no BatchNorm step runs, and the
// output is the unfolded plan's (and the eager network's) up to rounding. oneDNN's Winograd (float32
// on AVX-512) folds only where channels fill whole 16-channel blocks (the tiny network's 8-channel
// widths are not folded, and compute the same); ddim4j's own (AVX2) folds every block, SiLU included.
TEST_F(FusedNetwork, FoldsBatchNormIntoWinogradConvolutions) {
  for (const auto& config : configs()) {
    Model model(config, torch::kCPU, 3);
    randomise(model.net(), 11);
    model.net()->eval();
    torch::InferenceMode inference;
    const int64_t batch = 2;
    FusedUNet folded(config, batch);
    FusedUNet unfolded(config, batch, {torch::kFloat, ConvAlgorithm::Fastest, /*fold_norms=*/false});
    folded.load_weights(*model.net());
    unfolded.load_weights(*model.net());
    const auto [noisy, variances] = random_inputs(config, batch, 7);
    const auto eager = model.net()->forward(noisy, variances);
    const double scale = eager.abs().max().item<double>();
    EXPECT_LT((folded.forward(noisy, variances) - unfolded.forward(noisy, variances)).abs().max().item<double>(), 1e-4 * scale);
    EXPECT_LT((folded.forward(noisy, variances) - eager).abs().max().item<double>(), 1e-4 * scale);

    const auto count_steps = [](FusedUNet& plan, const std::string& ending) {
      int64_t found = 0;
      for (const auto& step : plan.profile(1))
        if (step.layer.size() >= ending.size() && step.layer.compare(step.layer.size() - ending.size(), ending.size(), ending) == 0)
          ++found;
      return found;
    };
    int64_t blocks = 0;
    for (const auto& layer : unet_layers(config)) blocks += layer.kind == LayerKind::Residual ? 1 : 0;
    EXPECT_EQ(count_steps(unfolded, ".norm"), blocks);
    bool onednn_winograd = false, own_winograd = false;
    for (const auto& step : unfolded.profile(1)) {
      onednn_winograd = onednn_winograd || step.implementation.rfind("jit_wino", 0) == 0;
      own_winograd = own_winograd || step.implementation.rfind("ddim4j_winograd", 0) == 0;
    }
    if (onednn_winograd && config.widths[0] % 16 == 0) {  // the reference on AVX-512: every block folded
      EXPECT_EQ(count_steps(folded, ".norm"), 0);
      EXPECT_EQ(count_steps(folded, "norm shift + swish"), blocks);
    }
    if (own_winograd) {  // AVX2: every block folded, both networks, and no pass of its own for SiLU either
      EXPECT_EQ(count_steps(folded, ".norm"), 0);
      EXPECT_EQ(count_steps(folded, " swish"), 0);
      EXPECT_EQ(count_steps(unfolded, " swish"), 0);
    }
  }
}

TEST_F(FusedNetwork, ProfilesEveryStep) {
  FusedUNet fused(testing::tiny_config(), 2);
  const auto steps = fused.profile(1);
  double flops = 0;
  for (const auto& step : steps) {
    EXPECT_FALSE(step.implementation.empty()) << step.layer;
    EXPECT_GE(step.milliseconds, 0) << step.layer;
    flops += step.flops;
  }
  // One forward's convolutions, counted from the layer list: input and output 1x1, and per block a
  // 1x1 shortcut and two 3x3 convolutions.
  double expected = 0;
  for (const auto& layer : unet_layers(testing::tiny_config())) {
    const double pixels = 2.0 * layer.size * layer.size;  // batch 2
    if (layer.kind == LayerKind::InputConv || layer.kind == LayerKind::OutputConv)
      expected += 2 * pixels * layer.in_channels * layer.out_channels;
    if (layer.kind == LayerKind::Residual)
      expected += 2 * pixels * (layer.in_channels * layer.out_channels * 10 + layer.out_channels * layer.out_channels * 9);
  }
  EXPECT_DOUBLE_EQ(flops, expected);
}

}  // namespace
}  // namespace ddim
