// The denoising U-Net of the reference (Keras DDIM example, via its R torch port), in one place.
//
//   noisy image ──conv1x1──► widths[0] ┐
//   noise variance ─sinusoidal embedding─► embedding_dim, repeated over H x W ┤ concat
//   class label ─learned embedding─► embedding_dim, repeated over H x W     ┘ (class models only)
//     ► DownBlock(widths[0]) … DownBlock(widths[L-1])   each: depth residual blocks (outputs kept
//                                                        as skips), then 2x2 average pooling
//     ► Residual(wL, 2 wL) ► Residual(2 wL, wL)          the middle, at the last width
//     ► UpBlock(widths[L-1] -> widths[L-2]) … UpBlock(widths[0] -> widths[0])
//                                                        each: bilinear 2x upsampling, then depth
//                                                        residual blocks, each fed concat(x, skip)
//     ► conv1x1 ► channels                               zero-initialised
//
// Residual(in, out) = conv1x1(x) + conv3x3_b(swish(conv3x3_a(batchnorm(x)))).
//
// A class-conditional model (config.classes = N > 0) joins its class the way it joins the noise
// variance: a learned vector of embedding_dim numbers per class (N + 1 rows, the last "no class")
// concatenated as extra channels before the first down block. It costs (N + 1) * embedding_dim
// weights plus the wider first convolutions, and leaves every other layer, and an unconditional
// model (no embedding, no extra channels), exactly as before. Training replaces labels by "no
// class" now and then, so the one network predicts both ways; classifier-free guidance mixes them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "config.h"
#include "unet_layers.h"

namespace ddim {

// [B] noise variances -> [B, dim, 1, 1]: sin and cos of the variance at dim/2 angular speeds
// 2*pi*f, f log-spaced from 1 to 1000.
class SinusoidalEmbeddingImpl : public torch::nn::Module {
 public:
  explicit SinusoidalEmbeddingImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& noise_variances);

 private:
  int64_t dim_;
};
TORCH_MODULE(SinusoidalEmbedding);

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t in_channels, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::BatchNorm2d norm_{nullptr};
  torch::nn::Conv2d shortcut_{nullptr}, conv_a_{nullptr}, conv_b_{nullptr};
};
TORCH_MODULE(ResidualBlock);

class UNetImpl : public torch::nn::Module {
 public:
  explicit UNetImpl(const ModelConfig& config);
  // noisy: [B, C, S, S]; noise_variances: [B]; labels: [B] int64 in [0, classes], classes meaning
  // "no class" (an undefined tensor: no class for all; unconditional models take none). Returns
  // [B, C, S, S] (the prediction of the target).
  torch::Tensor forward(const torch::Tensor& noisy, const torch::Tensor& noise_variances,
                        const torch::Tensor& labels = {});
  // The dtype of the weights (float32, or bfloat16 for a reduced-precision copy); inputs must match it.
  torch::ScalarType dtype() const { return input_conv_->weight.scalar_type(); }
  // Unique in the process: tells a network apart from an earlier one whose tensors sat at the same
  // addresses (the fused plan's weight cache relies on it).
  uint64_t instance_id() const { return instance_id_; }

 private:
  // Registers `module` under its dotted layer name ("down.0.blocks.1"), making the containers on the way.
  void register_layer(const std::string& name, std::shared_ptr<torch::nn::Module> module);

  std::vector<UNetLayer> layers_;
  uint64_t instance_id_;
  SinusoidalEmbedding embedding_{nullptr};
  torch::nn::Embedding class_embedding_{nullptr};  // class models only
  int64_t classes_ = 0;
  torch::nn::Conv2d input_conv_{nullptr}, output_conv_{nullptr};
  std::vector<ResidualBlock> residuals_;  // one per Residual layer, in layer order
};
TORCH_MODULE(UNet);

// One tensor of a UNet, as named_parameters() / named_buffers() name it.
struct TensorSpec {
  std::vector<int64_t> shape;
  bool parameter = true;   // false: a BatchNorm buffer
  bool integral = false;   // BatchNorm's step counter (int64)
};

// Every tensor a UNet of `config` holds, derived from the architecture above without building it,
// so that a model file can be checked against its config before anything is allocated (unet_test
// checks it against a real UNet).
std::map<std::string, TensorSpec> unet_tensor_specs(const ModelConfig& config);

// The trainable parameters of a UNet of `config`, without building it.
int64_t unet_parameter_count(const ModelConfig& config);

}  // namespace ddim
