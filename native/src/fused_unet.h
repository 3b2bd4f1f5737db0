// The U-Net of unet.h as one inference plan on oneDNN, for sampling on the CPU (the "fused" network).
//
// The eager network (libtorch modules) is what training uses and what PyTorch reproduces bit for
// bit, but for inference it wastes time between the convolutions: every oneDNN convolution inside
// libtorch converts its input from NCHW to a blocked layout (nChw8c with AVX2, nChw16c with AVX-512)
// and its output back, and BatchNorm, SiLU, the residual add, the concatenations, pooling and
// upsampling each make one more pass over memory. This plan builds every primitive once for a
// fixed batch and keeps activations in the blocked layout from the input convolution to the
// output one, with
//   - SiLU fused into conv_a (an eltwise post-op) and the residual add into conv_b (a sum post-op
//     onto the shortcut's output),
//   - weights reordered into the convolutions' layouts once per sampling call, not per step,
//   - every buffer allocated when the plan is built and reused at every step.
// The arithmetic is the same (float32, the same operations in the same order per convolution), but
// BatchNorm, SiLU and the bilinear upsampling round differently from libtorch's kernels, so results
// differ from the eager network's in the last bits (benchmarks/RESULTS.md reports by how much).
// Hence it is an option (ddim_sample_params.network), not the default.
//
// Only for float32 on the CPU, and only in builds with oneDNN's headers (DDIM_HAVE_DNNL).
#pragma once

#include <cstdint>
#include <memory>

#include <torch/torch.h>

#include "config.h"
#include "unet.h"

namespace ddim {

// True when this build has the fused network.
bool fused_network_available();

class FusedUNet {
 public:
  // Builds the plan for `batch` images of `config`: a few hundred milliseconds of primitive
  // creation, then each forward() only executes. Throws Status::InvalidArgument where the build
  // lacks oneDNN.
  FusedUNet(const ModelConfig& config, int64_t batch);
  ~FusedUNet();
  FusedUNet(const FusedUNet&) = delete;
  FusedUNet& operator=(const FusedUNet&) = delete;

  int64_t batch() const;

  // Copies `network`'s current weights and BatchNorm statistics into the plan (reordered into the
  // convolutions' layouts). Call again after the weights change.
  void load_weights(UNetImpl& network);

  // noisy: [batch, C, S, S] float32 on the CPU; noise_variances: [batch]. Returns a new
  // [batch, C, S, S] float32 tensor, as UNetImpl::forward does.
  torch::Tensor forward(const torch::Tensor& noisy, const torch::Tensor& noise_variances);

  // The blocked layout the plan keeps activations in ("nChw8c", "nChw16c" or "nhwc").
  const char* activation_layout() const;

 private:
  struct Plan;
  std::unique_ptr<Plan> plan_;
};

}  // namespace ddim
