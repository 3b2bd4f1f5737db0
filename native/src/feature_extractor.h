// Feature extractors for KID: a TorchScript module (torch::jit::load) that maps images to feature
// vectors, with the preprocessing it expects. The preprocessing comes from a JSON file beside the
// module (`<module>.json`); without one, the extractor is taken for torchvision's InceptionV3
// (3x299x299, ImageNet mean and std), the network KID is usually computed with.
//
// <module>.json (every key optional):
//   input_size      side the images are resized to (bilinear), default 299
//   input_channels  1 or 3: grey images are repeated to 3 channels, colour ones averaged to 1; default 3
//   mean, std       per-channel normalisation after resizing: (x - mean) / std, x in [0, 1]; default ImageNet's
//   feature_mean,   per-dimension standardisation of the features: (f - feature_mean) / feature_std,
//   feature_std     so that KID does not depend on the scale of the features; default none
//
// (Not "features.h": glibc has a header of that name, and native/src is on the include path.)
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace ddim {

struct ExtractorSpec {
  int64_t input_size = 299;
  int64_t input_channels = 3;
  std::vector<double> mean{0.485, 0.456, 0.406};
  std::vector<double> std{0.229, 0.224, 0.225};
  std::vector<float> feature_mean;  // empty: no standardisation
  std::vector<float> feature_std;
  // Reads `path`; missing keys keep their defaults. Throws a FORMAT error for malformed JSON or values.
  static ExtractorSpec read(const std::string& path);
};

class FeatureExtractor {
 public:
  // Loads the module at `path` (and `path`.json when it exists) onto `device`. Probes it once with
  // a blank batch to learn the feature dimension.
  FeatureExtractor(const std::string& path, torch::Device device);

  // Features of `pixels` ([n, C, H, W] in [0, 1], any channels 1..4, any H and W) as [n, dim]
  // float32 on the CPU, computed in batches of `batch` images.
  torch::Tensor features(const torch::Tensor& pixels, int64_t batch = 64);

  int64_t dimension() const { return dimension_; }
  const ExtractorSpec& spec() const { return spec_; }

 private:
  torch::Tensor preprocess(const torch::Tensor& pixels) const;
  torch::Tensor forward(const torch::Tensor& input);

  torch::jit::Module module_;
  ExtractorSpec spec_;
  torch::Device device_;
  int64_t dimension_ = 0;
};

}  // namespace ddim
