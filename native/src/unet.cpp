#include "unet.h"

#include <atomic>
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

std::vector<UNetLayer> unet_layers(const ModelConfig& config) {
  const auto& widths = config.widths;
  const int64_t levels = static_cast<int64_t>(widths.size());
  int64_t size = config.image_size;
  std::vector<UNetLayer> layers;
  layers.push_back({LayerKind::InputConv, "input_conv", config.channels, widths[0], size});
  const int64_t joined = widths[0] + config.embedding_dim * (config.classes > 0 ? 2 : 1);
  layers.push_back({LayerKind::JoinEmbeddings, config.classes > 0 ? "class_embedding" : "", widths[0], joined, size});
  int64_t channels = joined;
  for (int64_t level = 0; level < levels; ++level) {
    for (int64_t i = 0; i < config.block_depth; ++i) {
      layers.push_back({LayerKind::Residual, "down." + std::to_string(level) + ".blocks." + std::to_string(i), channels,
                        widths[level], size, /*keeps_skip=*/true});
      channels = widths[level];
    }
    layers.push_back({LayerKind::Pool, "", channels, channels, size});
    size /= 2;
  }
  layers.push_back({LayerKind::Residual, "middle_a", channels, 2 * channels, size});
  layers.push_back({LayerKind::Residual, "middle_b", 2 * channels, channels, size});
  for (int64_t level = levels - 1, up = 0; level >= 0; --level, ++up) {
    layers.push_back({LayerKind::Upsample, "", channels, channels, size});
    size *= 2;
    const int64_t out = widths[level > 0 ? level - 1 : 0];
    for (int64_t i = 0; i < config.block_depth; ++i) {
      // Joins the skip of the same level: widths[level] channels.
      layers.push_back({LayerKind::Residual, "up." + std::to_string(up) + ".blocks." + std::to_string(i),
                        channels + widths[level], out, size, false, /*takes_skip=*/true});
      channels = out;
    }
  }
  layers.push_back({LayerKind::OutputConv, "output_conv", channels, config.channels, size});
  return layers;
}

UNetImpl::UNetImpl(const ModelConfig& config) : layers_(unet_layers(config)), classes_(config.classes) {
  static std::atomic<uint64_t> instances{0};
  instance_id_ = ++instances;
  embedding_ = register_module("embedding", SinusoidalEmbedding(config.embedding_dim));
  for (const auto& layer : layers_) {
    switch (layer.kind) {
      case LayerKind::InputConv:
        input_conv_ = register_module(layer.name, nn::Conv2d(nn::Conv2dOptions(layer.in_channels, layer.out_channels, 1)));
        break;
      case LayerKind::JoinEmbeddings:
        if (classes_ > 0)
          class_embedding_ = register_module(layer.name, nn::Embedding(classes_ + 1, config.embedding_dim));
        break;
      case LayerKind::Residual:
        residuals_.push_back(ResidualBlock(layer.in_channels, layer.out_channels));
        register_layer(layer.name, residuals_.back().ptr());
        break;
      case LayerKind::OutputConv:
        output_conv_ = register_module(layer.name, nn::Conv2d(nn::Conv2dOptions(layer.in_channels, layer.out_channels, 1)));
        break;
      case LayerKind::Pool:
      case LayerKind::Upsample:
        break;  // no weights
    }
  }
}

void UNetImpl::register_layer(const std::string& name, std::shared_ptr<nn::Module> module) {
  nn::Module* parent = this;
  size_t begin = 0;
  for (size_t dot = name.find('.'); dot != std::string::npos; begin = dot + 1, dot = name.find('.', begin)) {
    const auto part = name.substr(begin, dot - begin);
    const auto children = parent->named_children();
    const auto* found = children.find(part);
    parent = found != nullptr ? found->get() : parent->register_module(part, std::make_shared<nn::Module>()).get();
  }
  parent->register_module(name.substr(begin), std::move(module));
}

torch::Tensor UNetImpl::forward(const torch::Tensor& noisy, const torch::Tensor& noise_variances,
                                const torch::Tensor& labels) {
  TORCH_CHECK(classes_ > 0 || !labels.defined(), "an unconditional network takes no class labels");
  std::vector<torch::Tensor> skips;
  auto residual = residuals_.begin();
  torch::Tensor x;
  for (const auto& layer : layers_) {
    switch (layer.kind) {
      case LayerKind::InputConv:
        x = input_conv_(noisy);
        break;
      case LayerKind::JoinEmbeddings: {
        // The embedding is computed in float32 (its frequencies reach 1000) and then takes the network's dtype.
        const std::vector<int64_t> spread{-1, -1, noisy.size(2), noisy.size(3)};
        const auto embedding = embedding_(noise_variances.to(torch::kFloat)).to(noisy.scalar_type()).expand(spread);
        if (classes_ == 0) {
          x = torch::cat({x, embedding}, 1);
          break;
        }
        const auto indices = labels.defined() ? labels.to(noisy.device(), torch::kLong)
                                              : torch::full({noisy.size(0)}, classes_, noisy.options().dtype(torch::kLong));
        TORCH_CHECK(indices.dim() == 1 && indices.size(0) == noisy.size(0), "one class label per image");
        const auto class_vectors = class_embedding_(indices).to(noisy.scalar_type()).unsqueeze(-1).unsqueeze(-1);
        x = torch::cat({x, embedding, class_vectors.expand(spread)}, 1);
        break;
      }
      case LayerKind::Residual:
        if (layer.takes_skip) {
          x = torch::cat({x, skips.back()}, 1);
          skips.pop_back();
        }
        x = (*residual++)->forward(x);
        if (layer.keeps_skip) skips.push_back(x);
        break;
      case LayerKind::Pool:
        x = F::avg_pool2d(x, F::AvgPool2dFuncOptions(2));
        break;
      case LayerKind::Upsample:
        x = F::interpolate(x, F::InterpolateFuncOptions()
                                  .scale_factor(std::vector<double>{2.0, 2.0})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));
        break;
      case LayerKind::OutputConv:
        x = output_conv_(x);
        break;
    }
  }
  return x;
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

// The weights of unet_layers(config), without building the modules.
std::map<std::string, TensorSpec> unet_tensor_specs(const ModelConfig& config) {
  std::map<std::string, TensorSpec> specs;
  for (const auto& layer : unet_layers(config)) {
    switch (layer.kind) {
      case LayerKind::InputConv:
      case LayerKind::OutputConv:
        add_conv(specs, layer.name, layer.in_channels, layer.out_channels, 1);
        break;
      case LayerKind::JoinEmbeddings:
        if (config.classes > 0) specs[layer.name + ".weight"] = {{config.classes + 1, config.embedding_dim}};
        break;
      case LayerKind::Residual:
        add_residual(specs, layer.name, layer.in_channels, layer.out_channels);
        break;
      case LayerKind::Pool:
      case LayerKind::Upsample:
        break;  // no weights
    }
  }
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
