#include "kernels_torch.h"

#include <c10/cuda/CUDAStream.h>

#include "kernels.h"

namespace ddim::cuda {
namespace {

// One float per image, contiguous, on `like`'s device.
torch::Tensor per_image(const torch::Tensor& rate, const torch::Tensor& like) {
  return rate.reshape({-1}).expand({like.size(0)}).to(like.device(), torch::kFloat).contiguous();
}

}  // namespace

torch::Tensor ddim_update(const torch::Tensor& image, const torch::Tensor& noise, const torch::Tensor& next_signal,
                          const torch::Tensor& next_noise) {
  const auto image_c = image.contiguous(), noise_c = noise.contiguous();
  const auto a = per_image(next_signal, image), s = per_image(next_noise, image);
  auto out = torch::empty_like(image_c);
  const int64_t images = image.size(0);
  ddim::cuda::ddim_update(image_c.data_ptr<float>(), noise_c.data_ptr<float>(), a.data_ptr<float>(), s.data_ptr<float>(),
                          images, images == 0 ? 0 : image_c.numel() / images, out.data_ptr<float>(),
                          c10::cuda::getCurrentCUDAStream());
  return out;
}

torch::Tensor dpm_solver_update(const torch::Tensor& x, const torch::Tensor& image, const torch::Tensor& previous_image,
                                const torch::Tensor& noise, const torch::Tensor& next_signal, const torch::Tensor& next_noise,
                                const torch::Tensor& h, const torch::Tensor& half_inverse_r) {
  const auto x_c = x.contiguous(), image_c = image.contiguous();
  const auto previous_c = previous_image.defined() ? previous_image.contiguous() : torch::Tensor();
  const auto s = per_image(noise, x), a_next = per_image(next_signal, x), s_next = per_image(next_noise, x);
  const auto h_c = per_image(h, x), k = per_image(half_inverse_r, x);
  auto out = torch::empty_like(x_c);
  const int64_t images = x.size(0);
  ddim::cuda::dpm_solver_update(x_c.data_ptr<float>(), image_c.data_ptr<float>(),
                                previous_c.defined() ? previous_c.data_ptr<float>() : nullptr, s.data_ptr<float>(),
                                a_next.data_ptr<float>(), s_next.data_ptr<float>(), h_c.data_ptr<float>(), k.data_ptr<float>(),
                                images, images == 0 ? 0 : x_c.numel() / images, out.data_ptr<float>(),
                                c10::cuda::getCurrentCUDAStream());
  return out;
}

torch::Tensor sinusoidal_embedding(const torch::Tensor& variances, int64_t dim) {
  const auto v = variances.reshape({-1}).to(torch::kFloat).contiguous();
  auto out = torch::empty({v.size(0), dim}, v.options());
  ddim::cuda::sinusoidal_embedding(v.data_ptr<float>(), v.size(0), dim, out.data_ptr<float>(), c10::cuda::getCurrentCUDAStream());
  return out;
}

}  // namespace ddim::cuda
