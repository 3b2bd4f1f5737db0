#include "sampling.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>

#include "error.h"
#include "schedule.h"

namespace ddim {

uint64_t image_seed(uint64_t seed, int64_t index) {
  // SplitMix64 finaliser over seed and index: well-mixed seeds for neighbouring images.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(index) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

namespace {

// Distinguishes the per-step noise of stochastic samplers from the starting noise.
constexpr uint64_t kStepStream = 0x5354455053ULL;  // "STEPS"

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

}  // namespace

torch::Tensor initial_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count,
                            torch::Device device) {
  return per_image_noise(config, count, device, [&](int64_t i) { return image_seed(seed, first + i); });
}

torch::Tensor step_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count, int64_t step,
                         torch::Device device) {
  return per_image_noise(config, count, device,
                         [&](int64_t i) { return image_seed(image_seed(seed, first + i) ^ kStepStream, step); });
}

torch::Tensor sample(Model& model, const SampleRequest& request) {
  require(request.count >= 1, DDIM_ERR_INVALID_ARGUMENT, "count must be >= 1");
  require(request.steps >= 1, DDIM_ERR_INVALID_ARGUMENT, "steps must be >= 1");
  require(request.eta >= 0 && std::isfinite(request.eta), DDIM_ERR_INVALID_ARGUMENT, "eta must be finite and >= 0");
  torch::InferenceMode inference;
  UNet& network = model.network(request.use_ema);
  network->eval();

  const auto sampler = make_sampler(request.sampler, request.eta);
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(model.device());
  const auto rates = diffusion_rates(model.config().schedule, torch::tensor(sampling_times(request.steps)).to(options));
  const auto rate_at = [&](const torch::Tensor& rate, int64_t k) { return rate[k].expand({request.count, 1, 1, 1}); };
  const NoiseSource fresh_noise = [&](int64_t step) {
    return step_noise(model.config(), request.seed, 0, request.count, step, model.device());
  };

  auto x = initial_noise(model.config(), request.seed, 0, request.count, model.device());
  Prediction prediction;
  for (int64_t k = 0; k < request.steps; ++k) {
    const auto signal = rate_at(rates.signal, k), noise = rate_at(rates.noise, k);
    const auto next_signal = rate_at(rates.signal, k + 1), next_noise = rate_at(rates.noise, k + 1);
    prediction = model.predict(network, x, signal, noise);
    x = sampler->step({k, x, prediction, signal, noise, next_signal, next_noise}, fresh_noise);
  }
  return model.denormalize(prediction.image).clamp(0.0, 1.0);
}

}  // namespace ddim
