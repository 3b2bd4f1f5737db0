// Sampling and editing: the reverse-diffusion loop that drives a sampler, and the operations built
// on it (sampling, DDIM inversion, SDEdit variations, inpainting).
//
// Reproducibility: image i of a request depends only on (seed, first_index + i) and the micro-batch
// size, never on count, batch_size or how the request was chunked. Noise is drawn per image on the
// CPU, and the network always sees micro-batches of one fixed size (Model::predict).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "fused_unet.h"
#include "model.h"
#include "samplers/sampler.h"

namespace ddim {

// Reported after every step of every chunk. Returning false cancels the run (Status::Cancelled).
struct StepProgress {
  int64_t step;         // steps done in this chunk, 1 .. steps
  int64_t steps;
  int64_t first_image;  // index, within the request, of the chunk's first image
  int64_t images;       // images in the chunk
};
using ProgressFn = std::function<bool(const StepProgress&)>;

// Receives a chunk's predicted clean images as pixels in [0, 1] ([images, C, S, S] on the model's
// device), `first_image` images into the request, after the steps that SampleRequest asks previews of.
using PreviewFn = std::function<void(int64_t first_image, const torch::Tensor& pixels)>;

// One image of a seed's sequence: what a request with `seed` draws at first_index + i = index.
struct ImageId {
  uint64_t seed = 0;
  int64_t index = 0;
};

enum class Precision : int32_t { Float32 = 0, BFloat16 = 1 };

// Which implementation of the network sampling runs: the eager libtorch modules (bit for bit what
// PyTorch computes; training's own), the fused oneDNN inference plan (fused_unet.h: CPU; faster,
// and different from the eager network in the last bits), or Auto, the default: the fused plan on
// the CPU wherever this build has it (float32, or bfloat16 where the CPU runs it natively, else
// float32), the eager network elsewhere (CUDA, builds without oneDNN).
enum class NetworkKind : int32_t { Eager = 0, Fused = 1, Auto = 2 };

struct SampleRequest {
  int64_t count = 16;
  int64_t steps = 20;
  uint64_t seed = 42;
  bool use_ema = true;
  SamplerKind sampler = SamplerKind::Ddim;
  double eta = 0;
  int64_t first_index = 0;  // image i of the request is image first_index + i of the seed's sequence
  int64_t batch_size = 64;  // images per pass through the loop (a memory bound); never changes results
  int64_t micro_batch = 16; // images per network evaluation, short ones padded; results depend on it
  Precision precision = Precision::Float32;  // the network's arithmetic
  NetworkKind network = NetworkKind::Auto;
  // How the fused plan computes its 3x3 convolutions (C++ only: benchmarks compare the two).
  ConvAlgorithm convolutions = ConvAlgorithm::Fastest;
  ProgressFn progress;      // may be empty
  // Each image's own (seed, index), to merge requests into one call: empty, or count entries that
  // replace (seed, first_index + i). Image i's pixels then equal those of its own request alone.
  std::vector<ImageId> images;
  PreviewFn preview;        // may be empty
  int64_t preview_every = 1;  // steps between previews; the last step of a chunk always has one
  // Class-conditional models: empty (no class: the model's unconditional prediction), one class
  // for all images, or one per image, each 0 .. classes - 1.
  std::vector<int64_t> classes;
  // Classifier-free guidance weight w, 0 .. kMaxGuidance: the network's prediction is
  // uncond + w * (cond - uncond); 1 is the plain conditional prediction, 0 the unconditional one.
  double guidance = 1;

  void validate() const;

  // The seed image i of the request draws its noise from: image_seed of its (seed, index).
  uint64_t image_seed_of(int64_t i) const;

  // What the network is conditioned on for the n images `first` images into the request.
  Conditioning conditioning(const Model& model, int64_t first, int64_t n) const;
};

// The seed of image `index` in a request seeded with `seed` (SplitMix64 of both), so that image i
// depends only on (seed, i), never on the batch it was drawn in.
uint64_t image_seed(uint64_t seed, int64_t index);

// [count, C, S, S] standard normal noise; image i drawn on the CPU from a generator seeded with
// image_seed(seed, first + i), then moved to `device`: the same noise on every device.
torch::Tensor initial_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count,
                            torch::Device device);

// [count, C, S, S] standard normal noise for a stochastic sampler's step `step`; image i's draw
// depends only on (seed, first + i, step).
torch::Tensor step_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count, int64_t step,
                         torch::Device device);

// Throws Status::InvalidArgument naming `name` unless every value is finite and in [0, 1]
// (pixels and masks passed in, for sampling and training alike).
void require_unit_range(const torch::Tensor& values, const std::string& name);

// Generates request.count images in [0, 1], [count, C, S, S] on the model's device. Starts from
// `noise` ([count, C, S, S], any device) when given, else from initial_noise(seed, first_index).
torch::Tensor sample(Model& model, const SampleRequest& request, const torch::Tensor& noise = {});

// Like sample(), and also the states the sampler passes through: [count, steps + 1, C, S, S] pixels
// in [0, 1] (states denormalised and clipped): frame k < steps the state at t = 1 - k/steps before
// evaluation k (frame 0 the starting noise), the last frame the sampled image.
torch::Tensor sample_trajectory(Model& model, const SampleRequest& request, const torch::Tensor& noise = {});

// One network evaluation as the sampling loop makes it, for callers that write their own samplers
// or compare with other implementations: `noisy` ([count, C, S, S], the network's normalised space,
// any finite values) at times `t` ([count], each in [0, 1]); the rates come from the model's
// schedule at t, computed as the loop computes them (float32, on the model's device), and the
// network sees micro-batches of request.micro_batch. Returns the predicted noise and image in the
// same space, [count, C, S, S] on the model's device. Uses count, use_ema, micro_batch and
// precision of the request.
Prediction predict(Model& model, const SampleRequest& request, const torch::Tensor& noisy, const torch::Tensor& t);

// DDIM inversion: runs deterministic DDIM backwards from `pixels` ([count, C, S, S] in [0, 1]) at
// t = 0 to t = 1, evaluating the network `steps` times at t = 0, 1/steps, ..., 1 - 1/steps, and
// returns the noise ([count, C, S, S]) from which deterministic DDIM with the same number of steps
// regenerates the images. Uses steps, use_ema, batch_size and progress of the request.
torch::Tensor invert(Model& model, const SampleRequest& request, const torch::Tensor& pixels);

// SDEdit variations: noises `pixels` to t = strength (0 < strength <= 1) with image i's starting
// noise, then denoises with the request's sampler over the uniform grid strength .. 0 in `steps`
// evaluations.
torch::Tensor vary(Model& model, const SampleRequest& request, const torch::Tensor& pixels, double strength);

// Inpainting: generates where `mask` ([1 or count, 1, S, S] in [0, 1]) is 1 and keeps `pixels`
// where it is 0. After every step the kept region is replaced by signal(t) * image + noise(t) * eps,
// eps the image's starting noise, so the generated region grows consistently around it.
torch::Tensor inpaint(Model& model, const SampleRequest& request, const torch::Tensor& pixels,
                      const torch::Tensor& mask);

}  // namespace ddim
