#include "unet.h"

#include <cmath>

#ifdef DDIM_CUDA
#include "cuda/kernels_torch.h"
#endif

namespace ddim {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

SinusoidalEmbeddingImpl::SinusoidalEmbeddingImpl(int64_t dim) : dim_(dim) {}

torch::Tensor SinusoidalEmbeddingImpl::forward(const torch::Tensor& noise_variances) {
  // Computed on the fly (16 numbers) rather than stored, so it never appears in a model file.
#ifdef DDIM_CUDA
  if (cuda::fusable(noise_variances)) return cuda::sinusoidal_embedding(noise_variances, dim_).unsqueeze(-1).unsqueeze(-1);
#endif
  const auto options = noise_variances.options();
  const auto frequencies = torch::linspace(std::log(1.0), std::log(1000.0), dim_ / 2, options).exp();
  const auto angles = (2 * M_PI) * frequencies.unsqueeze(0) * noise_variances.reshape({-1, 1});
  return torch::cat({torch::sin(angles), torch::cos(angles)}, 1).unsqueeze(-1).unsqueeze(-1);
}

ResidualBlockImpl::ResidualBlockImpl(int64_t in_channels, int64_t out_channels)
    : norm_(register_module("norm", nn::BatchNorm2d(nn::BatchNormOptions(in_channels).affine(true)))),
      shortcut_(register_module("shortcut", nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 1)))),
      conv_a_(register_module("conv_a", nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 3).padding(1)))),
      conv_b_(register_module("conv_b", nn::Conv2d(nn::Conv2dOptions(out_channels, out_channels, 3).padding(1)))) {}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  return shortcut_(x) + conv_b_(torch::silu(conv_a_(norm_(x))));
}

DownBlockImpl::DownBlockImpl(int64_t in_channels, int64_t width, int64_t depth) {
  for (int64_t i = 0; i < depth; ++i) blocks_->push_back(ResidualBlock(i == 0 ? in_channels : width, width));
  register_module("blocks", blocks_);
}

torch::Tensor DownBlockImpl::forward(torch::Tensor x, std::vector<torch::Tensor>& skips) {
  for (auto& block : *blocks_) {
    x = block->as<ResidualBlock>()->forward(x);
    skips.push_back(x);
  }
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(2));
}

UpBlockImpl::UpBlockImpl(int64_t in_channels, int64_t out_channels, int64_t depth) {
  for (int64_t i = 0; i < depth; ++i)
    blocks_->push_back(ResidualBlock((i == 0 ? in_channels : out_channels) + in_channels, out_channels));
  register_module("blocks", blocks_);
}

torch::Tensor UpBlockImpl::forward(torch::Tensor x, std::vector<torch::Tensor>& skips) {
  x = F::interpolate(x, F::InterpolateFuncOptions()
                            .scale_factor(std::vector<double>{2.0, 2.0})
                            .mode(torch::kBilinear)
                            .align_corners(false));
  for (auto& block : *blocks_) {
    x = block->as<ResidualBlock>()->forward(torch::cat({x, skips.back()}, 1));
    skips.pop_back();
  }
  return x;
}

UNetImpl::UNetImpl(const ModelConfig& config) {
  const auto& widths = config.widths;
  const int64_t levels = static_cast<int64_t>(widths.size());
  embedding_ = register_module("embedding", SinusoidalEmbedding(config.embedding_dim));
  input_conv_ = register_module("input_conv", nn::Conv2d(nn::Conv2dOptions(config.channels, widths[0], 1)));
  classes_ = config.classes;
  if (classes_ > 0)
    class_embedding_ = register_module("class_embedding", nn::Embedding(classes_ + 1, config.embedding_dim));
  int64_t channels = widths[0] + config.embedding_dim * (classes_ > 0 ? 2 : 1);
  for (int64_t width : widths) {
    down_->push_back(DownBlock(channels, width, config.block_depth));
    channels = width;
  }
  register_module("down", down_);
  middle_a_ = register_module("middle_a", ResidualBlock(channels, 2 * channels));
  middle_b_ = register_module("middle_b", ResidualBlock(2 * channels, channels));
  for (int64_t level = levels - 1; level >= 0; --level)
    up_->push_back(UpBlock(widths[level], widths[level > 0 ? level - 1 : 0], config.block_depth));
  register_module("up", up_);
  output_conv_ = register_module("output_conv", nn::Conv2d(nn::Conv2dOptions(widths[0], config.channels, 1)));
}

torch::Tensor UNetImpl::forward(const torch::Tensor& noisy, const torch::Tensor& noise_variances,
                                const torch::Tensor& labels) {
  // The embedding is computed in float32 (its frequencies reach 1000) and then takes the network's dtype.
  const auto embedding =
      embedding_(noise_variances.to(torch::kFloat)).to(noisy.scalar_type()).expand({-1, -1, noisy.size(2), noisy.size(3)});
  torch::Tensor x;
  if (classes_ == 0) {
    TORCH_CHECK(!labels.defined(), "an unconditional network takes no class labels");
    x = torch::cat({input_conv_(noisy), embedding}, 1);
  } else {
    const auto indices = labels.defined() ? labels.to(noisy.device(), torch::kLong)
                                          : torch::full({noisy.size(0)}, classes_, noisy.options().dtype(torch::kLong));
    TORCH_CHECK(indices.dim() == 1 && indices.size(0) == noisy.size(0), "one class label per image");
    const auto class_vectors = class_embedding_(indices).to(noisy.scalar_type()).unsqueeze(-1).unsqueeze(-1);
    x = torch::cat({input_conv_(noisy), embedding, class_vectors.expand({-1, -1, noisy.size(2), noisy.size(3)})}, 1);
  }
  std::vector<torch::Tensor> skips;
  for (auto& block : *down_) x = block->as<DownBlock>()->forward(x, skips);
  x = middle_b_(middle_a_(x));
  for (auto& block : *up_) x = block->as<UpBlock>()->forward(x, skips);
  return output_conv_(x);
}

namespace {

void add_conv(std::map<std::string, TensorSpec>& specs, const std::string& name, int64_t in, int64_t out, int64_t kernel) {
  specs[name + ".weight"] = {{out, in, kernel, kernel}};
  specs[name + ".bias"] = {{out}};
}

void add_residual(std::map<std::string, TensorSpec>& specs, const std::string& name, int64_t in, int64_t out) {
  specs[name + ".norm.weight"] = {{in}};
  specs[name + ".norm.bias"] = {{in}};
  specs[name + ".norm.running_mean"] = {{in}, false};
  specs[name + ".norm.running_var"] = {{in}, false};
  specs[name + ".norm.num_batches_tracked"] = {{}, false, true};
  add_conv(specs, name + ".shortcut", in, out, 1);
  add_conv(specs, name + ".conv_a", in, out, 3);
  add_conv(specs, name + ".conv_b", out, out, 3);
}

}  // namespace

// Mirrors the constructors above: UNetImpl, DownBlockImpl, UpBlockImpl and ResidualBlockImpl.
std::map<std::string, TensorSpec> unet_tensor_specs(const ModelConfig& config) {
  const auto& widths = config.widths;
  const int64_t levels = static_cast<int64_t>(widths.size());
  std::map<std::string, TensorSpec> specs;
  add_conv(specs, "input_conv", config.channels, widths[0], 1);
  if (config.classes > 0) specs["class_embedding.weight"] = {{config.classes + 1, config.embedding_dim}};
  int64_t channels = widths[0] + config.embedding_dim * (config.classes > 0 ? 2 : 1);
  for (int64_t level = 0; level < levels; ++level) {
    for (int64_t i = 0; i < config.block_depth; ++i)
      add_residual(specs, "down." + std::to_string(level) + ".blocks." + std::to_string(i),
                   i == 0 ? channels : widths[level], widths[level]);
    channels = widths[level];
  }
  add_residual(specs, "middle_a", channels, 2 * channels);
  add_residual(specs, "middle_b", 2 * channels, channels);
  for (int64_t level = levels - 1, up = 0; level >= 0; --level, ++up) {
    const int64_t in = widths[level], out = widths[level > 0 ? level - 1 : 0];
    for (int64_t i = 0; i < config.block_depth; ++i)
      add_residual(specs, "up." + std::to_string(up) + ".blocks." + std::to_string(i), (i == 0 ? in : out) + in, out);
  }
  add_conv(specs, "output_conv", widths[0], config.channels, 1);
  return specs;
}

int64_t unet_parameter_count(const ModelConfig& config) {
  int64_t count = 0;
  for (const auto& [name, spec] : unet_tensor_specs(config)) {
    if (!spec.parameter) continue;
    int64_t elements = 1;
    for (const int64_t dim : spec.shape) elements *= dim;  // bounded by ModelConfig's limits: no overflow
    count += elements;
  }
  return count;
}

}  // namespace ddim
