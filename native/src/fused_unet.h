// The U-Net of unet_layers.h as one inference plan on oneDNN: the "fused" network, which sampling
// uses on the CPU by default (NetworkKind::Auto).
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
//   - the embeddings written straight into their part of the first block's input (the skips are
//     joined by copies: see build()),
//   - 3x3 convolutions by Winograd's F(4x4, 3x3) where oneDNN has it (AVX-512, float32): ~1.6-1.9x
//     faster than direct convolution on this U-Net's shapes (benchmarks/RESULTS.md, per layer),
//     and there each block's BatchNorm folded into its conv_a (FusedOptions::fold_norms); on AVX2
//     CPUs, where oneDNN 2.6 has none, by ddim4j's own F(2x2, 3x3) (winograd_f2x3.h), with the
//     BatchNorm folded in and SiLU applied in its output transform,
//   - in bfloat16 (FusedOptions::dtype), bfloat16 activations and weights with float32 accumulation
//     on CPUs with AVX512-BF16 or AMX,
//   - weights reordered into the convolutions' layouts once per sampling call, not per step,
//   - every buffer allocated when the plan is built and reused at every step.
// Results differ from the eager network's in the last bits (BatchNorm, SiLU, upsampling and
// Winograd's transforms round differently; the README gives the difference in pixels).
//
// CPU only, and only in builds with oneDNN's headers (DDIM_HAVE_DNNL).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "config.h"
#include "unet.h"

namespace ddim {

// True when this build has the fused network.
bool fused_network_available();

// True when oneDNN runs bfloat16 convolutions natively on this CPU (AVX512-BF16 or AMX); otherwise
// `reason` says why not.
bool fused_bfloat16_native(std::string* reason = nullptr);

// The instructions oneDNN runs on here, as capped by DNNL_MAX_CPU_ISA: "AMX", "AVX-512 with BF16",
// "AVX-512", "AVX2", "older than AVX2", or "none" in a build without the fused network. The plan
// follows: nChw16c and oneDNN's Winograd with AVX-512, nChw8c and ddim4j's with AVX2.
std::string fused_instruction_set();

// How the plan computes its 3x3 convolutions.
enum class ConvAlgorithm {
  Fastest,   // per layer, the faster of the two on this U-Net's shapes (fused_unet.cpp says which, and why)
  Direct,    // oneDNN's direct convolution everywhere
  Winograd,  // Winograd wherever the layer has it in float32: oneDNN's F(4x4, 3x3) on AVX-512, ddim4j's own
             // F(2x2, 3x3) on AVX2 (winograd_f2x3.h); else direct
};

struct FusedOptions {
  torch::ScalarType dtype = torch::kFloat;  // kFloat, or kBFloat16 (activations and weights; float32 accumulation)
  ConvAlgorithm convolutions = ConvAlgorithm::Fastest;
  // Each block's BatchNorm folded into its Winograd conv_a (scaled weights, and the norm's shift
  // added in the SiLU pass that oneDNN's Winograd needs anyway, or in the output transform of
  // ddim4j's own), so no BatchNorm pass runs. Only where conv_a is Winograd (float32); false keeps
  // the BatchNorm passes, for comparisons.
  bool fold_norms = true;
};

// One step of the plan as profile() timed it.
struct FusedStepTiming {
  std::string layer;            // e.g. "down.0.blocks.1.conv_a", "pool", "join embeddings"
  std::string implementation;   // oneDNN's name for the kernel, e.g. "jit_wino_4x3:avx512_core"
  double flops = 0;             // multiply-adds x 2, convolutions only
  double milliseconds = 0;      // the fastest of the runs, the step repeated on its own (caches warm)
  double milliseconds_in_forward = 0;  // the fastest of the runs, each step once in a whole forward pass
};

class FusedUNet {
 public:
  // Builds the plan for `batch` images of `config`: a few hundred milliseconds of primitive
  // creation, then each forward() only executes. Throws Status::InvalidArgument where the build
  // lacks oneDNN, or for bfloat16 where the CPU cannot run it.
  FusedUNet(const ModelConfig& config, int64_t batch, FusedOptions options = {});
  ~FusedUNet();
  FusedUNet(const FusedUNet&) = delete;
  FusedUNet& operator=(const FusedUNet&) = delete;

  int64_t batch() const;
  const FusedOptions& options() const;

  // Copies `network`'s current weights, BatchNorm statistics and class embedding into the plan
  // (reordered into the convolutions' layouts, Winograd's transform included). Call again after the
  // weights change.
  void load_weights(UNetImpl& network);
  // load_weights() unless the plan holds these very tensors at these very versions already (libtorch
  // counts every in-place change of a tensor: training steps, EMA updates, loading a file), which
  // saves the reorders (~90 ms for the reference U-Net) at every sampling call.
  void load_weights_if_changed(UNetImpl& network);

  // noisy: [batch, C, S, S] float32 on the CPU; noise_variances: [batch]; labels: [batch] int64 in
  // 0 .. classes (classes: "no class"), or undefined (no class for all; unconditional models take
  // none). Returns a new [batch, C, S, S] float32 tensor, as UNetImpl::forward does.
  torch::Tensor forward(const torch::Tensor& noisy, const torch::Tensor& noise_variances,
                        const torch::Tensor& labels = {});

  // The blocked layout the plan keeps activations in ("nChw8c", "nChw16c" or "nhwc").
  const char* activation_layout() const;
  // Whether the embeddings are written in place, into their part of the first block's input (not
  // where widths[0] is no multiple of the layout's channel block: then a concat primitive joins them).
  bool joins_in_place() const;

  // Times every step `runs` times within whole forward passes and `runs` times repeated on its
  // own, and returns each step's fastest of both: the per-layer table of benchmarks/RESULTS.md.
  std::vector<FusedStepTiming> profile(int runs);

 private:
  struct Plan;
  std::unique_ptr<Plan> plan_;
};

}  // namespace ddim
