#include "sampling.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>
#include <string>

#include "error.h"
#include "library_limits.h"
#include "samplers/ddim_sampler.h"
#include "schedule.h"

namespace ddim {

uint64_t image_seed(uint64_t seed, int64_t index) {
  // SplitMix64 finaliser over seed and index: well-mixed seeds for neighbouring images.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(index) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void SampleRequest::validate() const {
  // Caps come first: steps sizes the time grid and micro_batch the padded network batch.
  require(count >= 1, Status::InvalidArgument, "count must be >= 1, got " + std::to_string(count));
  require(steps >= 1 && steps <= kMaxSteps, Status::InvalidArgument,
          "steps must lie in [1, " + std::to_string(kMaxSteps) + "], got " + std::to_string(steps));
  require(eta >= 0 && eta <= kMaxEta, Status::InvalidArgument,  // false for NaN too
          "eta must lie in [0, " + std::to_string(kMaxEta) + "], got " + std::to_string(eta));
  // first_index + count must not overflow the image indices.
  require(first_index >= 0 && first_index <= kMaxFirstIndex, Status::InvalidArgument,
          "first_index must lie in [0, 2^62], got " + std::to_string(first_index));
  require(count <= INT32_MAX, Status::InvalidArgument, "count must be at most 2^31 - 1, got " + std::to_string(count));
  require(batch_size >= 1, Status::InvalidArgument, "batch_size must be >= 1, got " + std::to_string(batch_size));
  require(precision == Precision::Float32 || precision == Precision::BFloat16, Status::InvalidArgument,
          "unknown precision " + std::to_string(static_cast<int>(precision)));
  require(network == NetworkKind::Eager || network == NetworkKind::Fused || network == NetworkKind::Auto,
          Status::InvalidArgument, "unknown network " + std::to_string(static_cast<int>(network)));
  require(micro_batch >= 1 && micro_batch <= kMaxMicroBatch, Status::InvalidArgument,
          "micro_batch must lie in [1, " + std::to_string(kMaxMicroBatch) + "], got " + std::to_string(micro_batch));
  require(preview_every >= 1, Status::InvalidArgument, "preview_every must be >= 1, got " + std::to_string(preview_every));
  require(images.empty() || static_cast<int64_t>(images.size()) == count, Status::InvalidArgument,
          "images must hold count (" + std::to_string(count) + ") ids, got " + std::to_string(images.size()));
  for (const auto& id : images)
    require(id.index >= 0 && id.index <= kMaxFirstIndex + INT32_MAX, Status::InvalidArgument,
            "an image index must lie in [0, 2^62 + 2^31 - 1], got " + std::to_string(id.index));
  require(classes.size() <= 1 || static_cast<int64_t>(classes.size()) == count, Status::InvalidArgument,
          "classes must hold none, one, or count (" + std::to_string(count) + ") classes, got " +
              std::to_string(classes.size()));
  require(guidance >= 0 && guidance <= kMaxGuidance, Status::InvalidArgument,  // false for NaN too
          "guidance must lie in [0, " + std::to_string(static_cast<int>(kMaxGuidance)) + "], got " + std::to_string(guidance));
}

namespace {

// The request's checks, and those that need the model: its classes.
void validate_for(const Model& model, const SampleRequest& request) {
  request.validate();
  const int64_t classes = model.config().classes;
  require(request.classes.empty() || classes > 0, Status::InvalidArgument,
          "this model is unconditional: it takes no classes");
  for (const int64_t label : request.classes)
    require(label >= 0 && label < classes, Status::InvalidArgument,
            "class " + std::to_string(label) + " does not exist: the model has classes 0.." + std::to_string(classes - 1));
}

}  // namespace

Conditioning SampleRequest::conditioning(const Model& model, int64_t first, int64_t n) const {
  Conditioning conditioning;
  conditioning.guidance = guidance;
  conditioning.no_class = model.config().classes;
  if (classes.empty()) return conditioning;
  const auto options = torch::TensorOptions().dtype(torch::kLong);
  conditioning.labels = (classes.size() == 1 ? torch::full({n}, classes[0], options)
                                             : torch::tensor(std::vector<int64_t>(classes.begin() + first,
                                                                                  classes.begin() + first + n),
                                                             options))
                            .to(model.device());
  return conditioning;
}

uint64_t SampleRequest::image_seed_of(int64_t i) const {
  return images.empty() ? image_seed(seed, first_index + i) : image_seed(images[i].seed, images[i].index);
}

namespace {

// Distinguishes the per-step noise of stochastic samplers from the starting noise.
constexpr uint64_t kStepStream = 0x5354455053ULL;  // "STEPS"

// The seed of a stochastic sampler's draw at `step` for the image whose starting noise has `image_seed`.
uint64_t step_seed(uint64_t image_seed_value, int64_t step) { return image_seed(image_seed_value ^ kStepStream, step); }

torch::Tensor per_image_noise(const ModelConfig& config, int64_t count, torch::Device device,
                              const std::function<uint64_t(int64_t)>& seed_of) {
  std::vector<torch::Tensor> images;
  images.reserve(count);
  for (int64_t i = 0; i < count; ++i) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(seed_of(i));
    images.push_back(torch::randn({config.channels, config.image_size, config.image_size}, generator,
                                  torch::TensorOptions().dtype(torch::kFloat)));
  }
  return torch::stack(images).to(device);
}

// The region an inpainting chunk keeps, in the network's (normalised) space.
struct KeptRegion {
  torch::Tensor image;  // [n, C, S, S]
  torch::Tensor keep;   // [1 or n, 1, S, S], 1 = keep
  torch::Tensor noise;  // [n, C, S, S], the images' starting noise
  torch::Tensor at(const torch::Tensor& signal, const torch::Tensor& noise_rate, const torch::Tensor& x) const {
    return keep * (signal * image + noise_rate * noise) + (1 - keep) * x;
  }
};

// Drives `sampler` through times[0] > ... > times[steps] (or the reverse, for inversion) on one
// chunk of `x.size(0)` images starting `first` images into the request, evaluating the network
// once per step. Returns the sampler's image estimate and the final x.
struct ChunkResult {
  torch::Tensor image;
  torch::Tensor x;
};

// Sees the state x before each network evaluation k (sample_trajectory records it).
using StateObserver = std::function<void(int64_t k, const torch::Tensor& x)>;

ChunkResult run_chunk(Model& model, const NetworkFn& network, Sampler& sampler, const SampleRequest& request,
                      const std::vector<double>& times, torch::Tensor x, int64_t first, const KeptRegion* kept,
                      const StateObserver* observe = nullptr) {
  const int64_t n = x.size(0);
  const int64_t steps = static_cast<int64_t>(times.size()) - 1;
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(model.device());
  const auto rates = diffusion_rates(model.config().schedule, torch::tensor(times).to(options));
  const auto rate_at = [&](const torch::Tensor& rate, int64_t k) { return rate[k].expand({n, 1, 1, 1}); };
  const NoiseSource fresh_noise = [&](int64_t step) {
    return per_image_noise(model.config(), n, model.device(), [&](int64_t i) {
      return step_seed(request.image_seed_of(first + i), step);
    });
  };
  if (kept != nullptr) x = kept->at(rate_at(rates.signal, 0), rate_at(rates.noise, 0), x);
  const auto conditioning = request.conditioning(model, first, n);
  Prediction prediction;
  for (int64_t k = 0; k < steps; ++k) {
    const auto signal = rate_at(rates.signal, k), noise = rate_at(rates.noise, k);
    const auto next_signal = rate_at(rates.signal, k + 1), next_noise = rate_at(rates.noise, k + 1);
    if (observe != nullptr) (*observe)(k, x);
    prediction = model.predict(network, x, signal, noise, request.micro_batch, conditioning);
    x = sampler.step({k, x, prediction, signal, noise, next_signal, next_noise}, fresh_noise);
    if (kept != nullptr) x = kept->at(next_signal, next_noise, x);
    if (request.preview && ((k + 1) % request.preview_every == 0 || k + 1 == steps))
      request.preview(first, model.denormalize(prediction.image).clamp(0.0, 1.0));
    if (request.progress && !request.progress({k + 1, steps, first, n}))
      fail(Status::Cancelled, "cancelled after step " + std::to_string(k + 1) + " of " + std::to_string(steps) +
                                   " (images " + std::to_string(first) + " to " + std::to_string(first + n - 1) + ")");
  }
  return {sampler.result(prediction), x};
}

// Runs `chunk(first, n)` for consecutive chunks of at most batch_size images and concatenates the results.
torch::Tensor in_chunks(const SampleRequest& request, const std::function<torch::Tensor(int64_t, int64_t)>& chunk) {
  std::vector<torch::Tensor> parts;
  for (int64_t first = 0; first < request.count; first += request.batch_size)
    parts.push_back(chunk(first, std::min(request.batch_size, request.count - first)));
  return parts.size() == 1 ? parts[0] : torch::cat(parts);
}

void require_images(const Model& model, const SampleRequest& request, const torch::Tensor& pixels, const char* name) {
  const auto& config = model.config();
  require(pixels.dim() == 4 && pixels.size(0) == request.count && pixels.size(1) == config.channels &&
              pixels.size(2) == config.image_size && pixels.size(3) == config.image_size,
          Status::InvalidArgument, std::string(name) + " must be [count, channels, size, size]");
  require(torch::isfinite(pixels).all().item<bool>(), Status::InvalidArgument,
          std::string(name) + " contain NaN or infinite values");
}

// Extreme weights, eta or noise can overflow float32 inside the network; NaN must never become
// pixels (clamping keeps NaN), so every result is checked.
const torch::Tensor& require_finite_result(const torch::Tensor& result, const char* what) {
  require(torch::isfinite(result).all().item<bool>(), Status::NonFinite,
          std::string(what) + " produced NaN or infinite values (are the weights or the input extreme?)");
  return result;
}

// The network a request runs, in eval mode: the model's own, a bfloat16 copy of it, or its fused plan.
NetworkFn sampling_network(Model& model, const SampleRequest& request) {
  UNet& network = model.network(request.use_ema);
  network->eval();
  const bool bfloat16 = request.precision == Precision::BFloat16;
  if (request.network == NetworkKind::Fused) {
    require(fused_network_available(), Status::InvalidArgument,
            "this build of ddim4j has no fused network (it was built without oneDNN's headers)");
    require(model.device().is_cpu(), Status::Device, "the fused network runs on the CPU only; this model is on " +
                                                         model.device().str());
    std::string no_bfloat16;  // filled before the message is built: arguments have no evaluation order
    const bool runs_bfloat16 = !bfloat16 || fused_bfloat16_native(&no_bfloat16);
    require(runs_bfloat16, Status::InvalidArgument, "the fused network runs bfloat16 only where the CPU has it: " + no_bfloat16);
    return model.fused_network(network, {bfloat16 ? torch::kBFloat16 : torch::kFloat, request.convolutions});
  }
  if (request.network == NetworkKind::Auto && model.device().is_cpu() && fused_network_available()) {
    // bfloat16 is only a speed option on the CPU: where it would be emulated (~10x slower), float32.
    const bool native = bfloat16 && fused_bfloat16_native();
    return model.fused_network(network, {native ? torch::kBFloat16 : torch::kFloat, request.convolutions});
  }
  if (!bfloat16) return network_fn(network);
  auto copy = model.converted_copy(network, torch::kBFloat16);
  copy->eval();
  return network_fn(copy);
}

// The uniform grid from `start` down to 0 in `steps` steps (start = 1: sampling_times(steps)).
std::vector<double> times_from(double start, int64_t steps) {
  auto times = sampling_times(steps);
  for (auto& t : times) t *= start;
  return times;
}

// Images given for editing: the request's count of the model's shape, finite and in [0, 1].
void require_pixels(const Model& model, const SampleRequest& request, const torch::Tensor& pixels) {
  require_images(model, request, pixels, "pixels");
  require_unit_range(pixels, "pixels");
}

// The starting noise of the chunk of n images `first` images into the request.
torch::Tensor chunk_noise(const Model& model, const SampleRequest& request, int64_t first, int64_t n) {
  return per_image_noise(model.config(), n, model.device(), [&](int64_t i) { return request.image_seed_of(first + i); });
}

// The chunk's images from `pixels`, normalised, on the model's device.
torch::Tensor chunk_images(const Model& model, const torch::Tensor& pixels, int64_t first, int64_t n) {
  return model.normalize(pixels.slice(0, first, first + n).to(model.device()));
}

// Runs a fresh sampler of the request's kind over one chunk from x and returns its images as pixels in [0, 1].
torch::Tensor generate_chunk(Model& model, const NetworkFn& network, const SampleRequest& request, const std::vector<double>& times,
                             const torch::Tensor& x, int64_t first, const KeptRegion* kept = nullptr,
                             const StateObserver* observe = nullptr) {
  const auto sampler = make_sampler(request.sampler, request.eta);  // per chunk: DPM-Solver++ keeps state
  const auto image = run_chunk(model, network, *sampler, request, times, x, first, kept, observe).image;
  return model.denormalize(require_finite_result(image, "sampling")).clamp(0.0, 1.0);
}

// The request's starting state for the chunk of n images `first` images in: the caller's noise, or the seed's.
torch::Tensor chunk_start(const Model& model, const SampleRequest& request, const torch::Tensor& noise, int64_t first,
                          int64_t n) {
  return noise.defined() ? noise.slice(0, first, first + n).to(model.device(), torch::kFloat)
                         : chunk_noise(model, request, first, n);
}

}  // namespace

void require_unit_range(const torch::Tensor& values, const std::string& name) {
  // One pass, and false for NaN as well as for values outside the range.
  require((values >= 0).logical_and(values <= 1).all().item<bool>(), Status::InvalidArgument,
          name + " must be finite and lie in [0, 1]");
}

torch::Tensor initial_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count,
                            torch::Device device) {
  return per_image_noise(config, count, device, [&](int64_t i) { return image_seed(seed, first + i); });
}

torch::Tensor step_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count, int64_t step,
                         torch::Device device) {
  return per_image_noise(config, count, device, [&](int64_t i) { return step_seed(image_seed(seed, first + i), step); });
}

namespace {

// The frame sample() and sample_trajectory() share: checks, the network, the time grid, and
// `chunk(network, times, x, first)` for each chunk from its starting state x.
template <typename Chunk>
torch::Tensor generate(Model& model, const SampleRequest& request, const torch::Tensor& noise, Chunk&& chunk) {
  validate_for(model, request);
  if (noise.defined()) require_images(model, request, noise, "noise");
  torch::InferenceMode inference;
  const NetworkFn network = sampling_network(model, request);
  const auto times = sampling_times(request.steps);
  return in_chunks(request, [&](int64_t first, int64_t n) {
    return chunk(network, times, chunk_start(model, request, noise, first, n), first);
  });
}

}  // namespace

torch::Tensor sample(Model& model, const SampleRequest& request, const torch::Tensor& noise) {
  return generate(model, request, noise, [&](const NetworkFn& network, const std::vector<double>& times, const torch::Tensor& x,
                                             int64_t first) {
    return generate_chunk(model, network, request, times, x, first);
  });
}

torch::Tensor sample_trajectory(Model& model, const SampleRequest& request, const torch::Tensor& noise) {
  return generate(model, request, noise, [&](const NetworkFn& network, const std::vector<double>& times, const torch::Tensor& x,
                                             int64_t first) {
    std::vector<torch::Tensor> frames;
    const StateObserver record = [&](int64_t, const torch::Tensor& state) {
      frames.push_back(model.denormalize(state).clamp(0.0, 1.0));
    };
    const auto images = generate_chunk(model, network, request, times, x, first, nullptr, &record);
    frames.push_back(images);  // after the states it recorded
    return torch::stack(frames, 1);
  });
}

Prediction predict(Model& model, const SampleRequest& request, const torch::Tensor& noisy, const torch::Tensor& t) {
  validate_for(model, request);
  require_images(model, request, noisy, "noisy images");
  require(t.dim() == 1 && t.size(0) == request.count, Status::InvalidArgument, "t must hold one time per image");
  require_unit_range(t, "t");
  torch::InferenceMode inference;
  const NetworkFn network = sampling_network(model, request);
  // As run_chunk: float32 times on the device, then the schedule; rates shaped [count, 1, 1, 1].
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(model.device());
  const auto rates = diffusion_rates(model.config().schedule, t.to(options));
  const std::vector<int64_t> per_image{request.count, 1, 1, 1};
  auto prediction = model.predict(network, noisy.to(options), rates.signal.reshape(per_image),
                                  rates.noise.reshape(per_image), request.micro_batch,
                                  request.conditioning(model, 0, request.count));
  require_finite_result(prediction.noise, "the prediction");
  require_finite_result(prediction.image, "the prediction");
  return prediction;
}

torch::Tensor invert(Model& model, const SampleRequest& request, const torch::Tensor& pixels) {
  validate_for(model, request);
  require_pixels(model, request, pixels);
  torch::InferenceMode inference;
  const NetworkFn network = sampling_network(model, request);
  auto times = sampling_times(request.steps);
  std::reverse(times.begin(), times.end());  // 0 = t_0 < t_1 < ... < t_steps = 1
  return in_chunks(request, [&](int64_t first, int64_t n) {
    // The clean image at t = 0 carries no noise yet; each DDIM step, taken forward in time, re-mixes
    // the predicted image and noise at the next t.
    const auto [signal, noise_rate] = diffusion_rates(model.config().schedule, 0.0);
    const auto x = static_cast<float>(signal) * chunk_images(model, pixels, first, n);
    DdimSampler deterministic(0.0);
    return require_finite_result(run_chunk(model, network, deterministic, request, times, x, first, nullptr).x, "inversion");
  });
}

torch::Tensor vary(Model& model, const SampleRequest& request, const torch::Tensor& pixels, double strength) {
  validate_for(model, request);
  require(std::isfinite(strength) && strength > 0 && strength <= 1, Status::InvalidArgument,
          "strength must lie in (0, 1], got " + std::to_string(strength));
  require_pixels(model, request, pixels);
  torch::InferenceMode inference;
  const NetworkFn network = sampling_network(model, request);
  const auto times = times_from(strength, request.steps);
  // Plain variables, not a structured binding: C++17 lambdas can't capture those (clang refuses).
  const auto rates = diffusion_rates(model.config().schedule, strength);
  const auto signal = static_cast<float>(rates.first), noise_rate = static_cast<float>(rates.second);
  return in_chunks(request, [&](int64_t first, int64_t n) {
    const auto x = signal * chunk_images(model, pixels, first, n) + noise_rate * chunk_noise(model, request, first, n);
    return generate_chunk(model, network, request, times, x, first);
  });
}

torch::Tensor inpaint(Model& model, const SampleRequest& request, const torch::Tensor& pixels,
                      const torch::Tensor& mask) {
  validate_for(model, request);
  require_pixels(model, request, pixels);
  const auto size = model.config().image_size;
  require(mask.dim() == 4 && (mask.size(0) == 1 || mask.size(0) == request.count) && mask.size(1) == 1 &&
              mask.size(2) == size && mask.size(3) == size,
          Status::InvalidArgument, "mask must be [1 or count, 1, size, size]");
  require(torch::isfinite(mask).all().item<bool>(), Status::InvalidArgument, "mask contains NaN or infinite values");
  require_unit_range(mask, "mask");
  torch::InferenceMode inference;
  const NetworkFn network = sampling_network(model, request);
  const auto times = sampling_times(request.steps);
  return in_chunks(request, [&](int64_t first, int64_t n) {
    const auto eps = chunk_noise(model, request, first, n);
    const auto chunk_mask = mask.size(0) == 1 ? mask : mask.slice(0, first, first + n);
    const KeptRegion kept{chunk_images(model, pixels, first, n), 1 - chunk_mask.to(model.device(), torch::kFloat), eps};
    return generate_chunk(model, network, request, times, eps, first, &kept);
  });
}

}  // namespace ddim
