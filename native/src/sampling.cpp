#include "sampling.h"

#include <ATen/CPUGeneratorImpl.h>

#include "error.h"
#include "samplers/ddim.h"
#include "schedule.h"

namespace ddim {

uint64_t image_seed(uint64_t seed, int64_t index) {
  // SplitMix64 finaliser over seed and index: well-mixed seeds for neighbouring images.
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(index) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

torch::Tensor initial_noise(const ModelConfig& config, uint64_t seed, int64_t first, int64_t count,
                            torch::Device device) {
  std::vector<torch::Tensor> images;
  images.reserve(count);
  for (int64_t i = 0; i < count; ++i) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(image_seed(seed, first + i));
    images.push_back(torch::randn({config.channels, config.image_size, config.image_size}, generator,
                                  torch::TensorOptions().dtype(torch::kFloat)));
  }
  return torch::stack(images).to(device);
}

torch::Tensor sample(Model& model, const SampleRequest& request) {
  require(request.count >= 1, DDIM_ERR_INVALID_ARGUMENT, "count must be >= 1");
  require(request.steps >= 1, DDIM_ERR_INVALID_ARGUMENT, "steps must be >= 1");
  torch::InferenceMode inference;
  UNet& network = model.network(request.use_ema);
  network->eval();

  const DdimSampler sampler(request.steps);
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(model.device());
  const auto rates = diffusion_rates(model.config().schedule, torch::tensor(sampler.times()).to(options));
  const auto rate_at = [&](const torch::Tensor& rate, int64_t k) { return rate[k].expand({request.count, 1, 1, 1}); };

  auto x = initial_noise(model.config(), request.seed, 0, request.count, model.device());
  Prediction prediction;
  for (int64_t k = 0; k < request.steps; ++k) {
    prediction = model.predict(network, x, rate_at(rates.signal, k), rate_at(rates.noise, k));
    x = sampler.step(prediction, rate_at(rates.signal, k + 1), rate_at(rates.noise, k + 1));
  }
  return model.denormalize(prediction.image).clamp(0.0, 1.0);
}

}  // namespace ddim
