#include "feature_extractor.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <string>

#include "error.h"
#include "json_fields.h"

namespace ddim {

namespace {

bool file_exists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return in.good();
}

template <typename T>
std::vector<T> finite_list(const nlohmann::json& json, const char* key, const std::string& path) {
  std::vector<T> values;
  for (const auto& value : json.at(key)) {
    const auto number = value.get<double>();
    require(std::isfinite(number), Status::Format, path + ": " + key + " holds a non-finite value");
    values.push_back(static_cast<T>(number));
  }
  return values;
}

}  // namespace

ExtractorSpec ExtractorSpec::read(const std::string& path) {
  std::ifstream in(path);
  require(in.good(), Status::Io, "cannot open " + path);
  ExtractorSpec spec;
  try {
    const auto json = nlohmann::json::parse(in);
    require(json.is_object(), Status::Format, path + ": expected a JSON object");
    try {
      spec.input_size = json_integer_field_or(json, "input_size", spec.input_size);
      spec.input_channels = json_integer_field_or(json, "input_channels", spec.input_channels);
    } catch (const Error& e) {
      fail(Status::Format, path + ": " + e.what());
    }
    if (json.contains("mean")) spec.mean = finite_list<double>(json, "mean", path);
    if (json.contains("std")) spec.std = finite_list<double>(json, "std", path);
    if (json.contains("feature_mean")) spec.feature_mean = finite_list<float>(json, "feature_mean", path);
    if (json.contains("feature_std")) spec.feature_std = finite_list<float>(json, "feature_std", path);
  } catch (const nlohmann::json::exception& e) {
    fail(Status::Format, path + ": " + e.what());
  }
  require(spec.input_size >= 1 && spec.input_size <= 4096, Status::Format, path + ": input_size must lie in [1, 4096]");
  require(spec.input_channels == 1 || spec.input_channels == 3, Status::Format, path + ": input_channels must be 1 or 3");
  require(static_cast<int64_t>(spec.mean.size()) == spec.input_channels &&
              static_cast<int64_t>(spec.std.size()) == spec.input_channels,
          Status::Format, path + ": mean and std need one value per input channel");
  for (double s : spec.std) require(s > 0, Status::Format, path + ": std values must be > 0");
  require(spec.feature_mean.size() == spec.feature_std.size(), Status::Format,
          path + ": feature_mean and feature_std differ in length");
  for (float s : spec.feature_std) require(s > 0, Status::Format, path + ": feature_std values must be > 0");
  return spec;
}

FeatureExtractor::FeatureExtractor(const std::string& path, torch::Device device) : device_(device) {
  require(file_exists(path), Status::Io, "cannot open " + path);
  try {
    module_ = torch::jit::load(path, device);
  } catch (const c10::Error& e) {
    std::string message = e.what_without_backtrace();
    message = message.substr(0, message.find('\n'));
    fail(Status::Format, path + " is not a TorchScript module: " + message);
  }
  module_.eval();
  if (file_exists(path + ".json")) spec_ = ExtractorSpec::read(path + ".json");
  // One blank image tells the feature dimension, and that the module runs at all.
  const auto probe = forward(torch::zeros({1, spec_.input_channels, spec_.input_size, spec_.input_size},
                                          torch::TensorOptions().device(device_)));
  dimension_ = probe.size(1);
  require(spec_.feature_mean.empty() || static_cast<int64_t>(spec_.feature_mean.size()) == dimension_, Status::Format,
          path + ".json: feature_mean has " + std::to_string(spec_.feature_mean.size()) + " values, the module gives " +
              std::to_string(dimension_) + " features");
}

torch::Tensor FeatureExtractor::forward(const torch::Tensor& input) {
  torch::InferenceMode inference;
  const auto output = module_.forward({input});
  require(output.isTensor(), Status::Format, "the feature extractor must return one tensor");
  const auto features = output.toTensor();
  require(features.dim() >= 2 && features.size(0) == input.size(0), Status::Format,
          "the feature extractor must return [batch, ...] features");
  return features.flatten(1).to(torch::kCPU, torch::kFloat);
}

torch::Tensor FeatureExtractor::preprocess(const torch::Tensor& pixels) const {
  auto x = pixels.to(device_, torch::kFloat);
  const int64_t channels = x.size(1);
  if (channels == 2 || channels == 4) x = x.slice(1, 0, channels - 1);  // drop alpha
  if (spec_.input_channels == 3 && x.size(1) == 1) x = x.expand({-1, 3, -1, -1});
  if (spec_.input_channels == 1 && x.size(1) == 3) x = x.mean(1, true);
  if (x.size(2) != spec_.input_size || x.size(3) != spec_.input_size) {
    namespace F = torch::nn::functional;
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{spec_.input_size, spec_.input_size})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  }
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device_);
  const auto mean = torch::tensor(spec_.mean, torch::kDouble).to(options).view({1, -1, 1, 1});
  const auto std = torch::tensor(spec_.std, torch::kDouble).to(options).view({1, -1, 1, 1});
  return (x - mean) / std;
}

torch::Tensor FeatureExtractor::features(const torch::Tensor& pixels, int64_t batch) {
  require(pixels.dim() == 4 && pixels.size(0) >= 1 && pixels.size(1) >= 1 && pixels.size(1) <= 4, Status::InvalidArgument,
          "images must be [count >= 1, channels 1..4, height, width]");
  require(batch >= 1, Status::InvalidArgument, "batch must be >= 1");
  require(torch::isfinite(pixels).all().item<bool>(), Status::InvalidArgument, "images contain NaN or infinite values");
  require(pixels.min().item<float>() >= 0.0f && pixels.max().item<float>() <= 1.0f, Status::InvalidArgument,
          "images must lie in [0, 1]");
  std::vector<torch::Tensor> parts;
  for (int64_t first = 0; first < pixels.size(0); first += batch)
    parts.push_back(forward(preprocess(pixels.slice(0, first, std::min(first + batch, pixels.size(0))))));
  auto features = torch::cat(parts);
  if (!spec_.feature_mean.empty()) {
    features = (features - torch::tensor(spec_.feature_mean)) / torch::tensor(spec_.feature_std);
  }
  require(torch::isfinite(features).all().item<bool>(), Status::Internal, "the feature extractor produced NaN or infinite features");
  return features;
}

}  // namespace ddim
