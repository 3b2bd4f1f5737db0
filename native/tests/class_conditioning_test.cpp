// Class-conditional models and classifier-free guidance: the class embedding, guidance arithmetic,
// label dropout, model files and the C boundary. Unconditional models stay as they were (the
// other suites pin their numerics).
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "c_test_util.h"
#include "ddim.h"
#include "error.h"
#include "library_limits.h"
#include "model.h"
#include "model_file.h"
#include "sampling.h"
#include "test_util.h"
#include "training.h"

namespace ddim {
namespace {

constexpr int64_t kClasses = 3;

ModelConfig class_config() {
  auto config = testing::tiny_config();
  config.classes = kClasses;
  return config;
}

// A class model whose output layer is not zero, so that its predictions depend on every input.
Model class_model(uint64_t seed = 5) {
  Model model(class_config(), torch::kCPU, seed);
  torch::NoGradGuard no_grad;
  for (auto& item : model.net()->named_parameters())
    if (item.key().rfind("output_conv", 0) == 0) item.value().uniform_(-0.3, 0.3);
  return model;
}

Status status_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.status();
  }
  return Status::Ok;
}

SampleRequest prediction_request(int64_t count, int64_t micro_batch, std::vector<int64_t> classes, double guidance) {
  SampleRequest request;
  request.count = count;
  request.micro_batch = micro_batch;
  request.classes = std::move(classes);
  request.guidance = guidance;
  return request;
}

TEST(ClassConditioning, TheEmbeddingIsOneLearnedRowPerClassPlusNoClass) {
  auto model = class_model();
  const auto params = model.net()->named_parameters();
  ASSERT_TRUE(params.contains("class_embedding.weight"));
  EXPECT_EQ(params["class_embedding.weight"].sizes().vec(), (std::vector<int64_t>{kClasses + 1, 8}));
  // The extra channels cost exactly the embedding plus the wider first block.
  const auto unconditional = testing::tiny_config();
  const int64_t extra_in = unconditional.embedding_dim, out = unconditional.widths[0];
  const int64_t extra = (kClasses + 1) * 8 + extra_in * 2 /* norm */ + extra_in * out * (1 + 9) /* shortcut, conv_a */;
  EXPECT_EQ(model.parameter_count(), Model(unconditional, torch::kCPU, 5).parameter_count() + extra);
  EXPECT_FALSE(Model(unconditional, torch::kCPU, 5).net()->named_parameters().contains("class_embedding.weight"));
  // Created from the seed like every other weight.
  EXPECT_TRUE(torch::equal(params["class_embedding.weight"],
                           Model(class_config(), torch::kCPU, 5).net()->named_parameters()["class_embedding.weight"]));
}

TEST(ClassConditioning, TheClassChangesThePredictionAndNoneMeansNoClass) {
  auto model = class_model();
  model.net()->eval();
  torch::InferenceMode inference;
  const auto x = torch::randn({3, 1, 16, 16});
  const auto v = torch::rand({3});
  const auto a = model.net()->forward(x, v, torch::tensor({0, 0, 0}, torch::kLong));
  const auto b = model.net()->forward(x, v, torch::tensor({1, 1, 1}, torch::kLong));
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-4);
  EXPECT_TRUE(torch::equal(model.net()->forward(x, v), model.net()->forward(x, v, torch::full({3}, kClasses, torch::kLong))));
  // Each image sees its own class only.
  const auto mixed = model.net()->forward(x, v, torch::tensor({0, 1, 0}, torch::kLong));
  EXPECT_TRUE(torch::allclose(mixed[0], a[0], 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(mixed[1], b[1], 1e-5, 1e-6));
}

TEST(ClassConditioning, GuidanceIsUnconditionalPlusWeightTimesTheDifference) {
  auto model = class_model();
  const auto noisy = torch::randn({5, 1, 16, 16});
  const auto t = torch::rand({5}) * 0.9 + 0.05;
  const std::vector<int64_t> classes{0, 1, 2, 1, 0};
  // Guidance evaluates batches of 2 x micro_batch: compare with plain predictions of that batch shape.
  const auto conditional = predict(model, prediction_request(5, 4, classes, 1), noisy, t);
  const auto unconditional = predict(model, prediction_request(5, 4, {}, 1), noisy, t);
  EXPECT_GT((conditional.noise - unconditional.noise).abs().max().item<double>(), 1e-4);
  for (const double w : {0.0, 1.0, 3.0, 7.5}) {
    const auto guided = predict(model, prediction_request(5, 2, classes, w), noisy, t);
    const auto expected = unconditional.noise + w * (conditional.noise - unconditional.noise);
    EXPECT_TRUE(torch::allclose(guided.noise, expected, 1e-5, 1e-5)) << "w = " << w;
    EXPECT_TRUE(torch::allclose(guided.image, unconditional.image + w * (conditional.image - unconditional.image), 1e-4,
                                1e-4))
        << "w = " << w;
  }
  // w = 0 is the unconditional prediction and w = 1 the conditional one, bit for bit at one batch shape.
  EXPECT_TRUE(torch::equal(predict(model, prediction_request(5, 4, classes, 1), noisy, t).noise, conditional.noise));
  const auto half = predict(model, prediction_request(5, 2, classes, 0), noisy, t);
  EXPECT_TRUE(torch::allclose(half.noise, unconditional.noise, 0, 1e-6));
}

TEST(ClassConditioning, GuidedSamplesAreBatchInvariantAndOneClassMeansAll) {
  auto model = class_model();
  model.set_normalizer(torch::tensor({0.3f}), torch::tensor({0.4f}));
  for (const auto kind : {SamplerKind::Ddim, SamplerKind::Ddpm, SamplerKind::DpmSolverPP2M}) {
    SampleRequest all;
    all.count = 5;
    all.steps = 3;
    all.seed = 9;
    all.sampler = kind;
    all.micro_batch = 2;
    all.batch_size = 3;
    all.classes = {2, 0, 1, 1, 2};
    all.guidance = 3;
    const auto images = sample(model, all);
    SampleRequest part = all;
    part.count = 2;
    part.first_index = 3;
    part.classes = {1, 2};
    part.batch_size = 64;
    EXPECT_TRUE(torch::equal(sample(model, part), images.slice(0, 3, 5)));
    SampleRequest same = all;
    same.classes = {1};
    SampleRequest each = all;
    each.classes = {1, 1, 1, 1, 1};
    EXPECT_TRUE(torch::equal(sample(model, same), sample(model, each)));
  }
}

TEST(ClassConditioning, EveryEditingCallTakesTheClass) {
  auto model = class_model();
  SampleRequest request;
  request.count = 2;
  request.steps = 2;
  request.classes = {1};
  request.guidance = 2;
  const auto pixels = torch::rand({2, 1, 16, 16});
  SampleRequest other = request;
  other.classes = {2};
  const auto differ = [](const torch::Tensor& a, const torch::Tensor& b) { return !torch::equal(a, b); };
  EXPECT_TRUE(differ(vary(model, request, pixels, 0.8), vary(model, other, pixels, 0.8)));
  const auto mask = torch::ones({1, 1, 16, 16});
  EXPECT_TRUE(differ(inpaint(model, request, pixels, mask), inpaint(model, other, pixels, mask)));
  EXPECT_TRUE(differ(invert(model, request, pixels), invert(model, other, pixels)));
  EXPECT_TRUE(differ(sample_trajectory(model, request), sample_trajectory(model, other)));
}

TEST(ClassConditioning, BadClassesAndGuidanceAreRefusedByName) {
  auto model = class_model();
  SampleRequest request;
  request.count = 2;
  request.steps = 1;
  request.classes = {kClasses};
  EXPECT_EQ(status_of([&] { sample(model, request); }), Status::InvalidArgument);
  request.classes = {-1};
  EXPECT_EQ(status_of([&] { sample(model, request); }), Status::InvalidArgument);
  request.classes = {0, 1, 2};  // neither one nor count
  EXPECT_EQ(status_of([&] { sample(model, request); }), Status::InvalidArgument);
  request.classes = {0};
  for (const double w : {-0.5, std::nan(""), 101.0}) {
    request.guidance = w;
    EXPECT_EQ(status_of([&] { sample(model, request); }), Status::InvalidArgument) << w;
  }
  request.guidance = 1;
  Model unconditional(testing::tiny_config(), torch::kCPU, 1);
  request.network = NetworkKind::Eager;
  EXPECT_EQ(status_of([&] { sample(unconditional, request); }), Status::InvalidArgument);
  auto config = class_config();
  config.classes = kMaxClasses + 1;
  EXPECT_EQ(status_of([&] { config.validate(); }), Status::InvalidArgument);
  config = class_config();
  config.class_names = {"a", "b"};
  EXPECT_EQ(status_of([&] { config.validate(); }), Status::InvalidArgument);
  config.class_names = {"a", "b", "a"};
  EXPECT_EQ(status_of([&] { config.validate(); }), Status::InvalidArgument);
  config.class_names = {"a", "b", "c\n"};
  EXPECT_EQ(status_of([&] { config.validate(); }), Status::InvalidArgument);
  config.class_names = {"a", "b", std::string(kMaxClassNameBytes + 1, 'x')};
  EXPECT_EQ(status_of([&] { config.validate(); }), Status::InvalidArgument);
}

// The weights after one training step with `labels` and `dropout`.
torch::Tensor weights_after_step(const torch::Tensor& labels, double dropout) {
  Model model(class_config(), torch::kCPU, 3);
  TrainConfig config;
  config.label_dropout = dropout;
  config.ema_decay = 0;
  Trainer trainer(model, config);
  torch::manual_seed(0);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(11);
  trainer.step(torch::rand({8, 1, 16, 16}, generator), labels);
  std::vector<torch::Tensor> flat;
  for (const auto& p : model.net()->parameters()) flat.push_back(p.detach().reshape({-1}));
  return torch::cat(flat);
}

TEST(ClassConditioning, LabelDropoutReplacesLabelsByNoClass) {
  const auto some = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1}, torch::kLong);
  const auto other = torch::tensor({2, 2, 0, 1, 0, 1, 2, 0}, torch::kLong);
  const auto none = torch::full({8}, kClasses, torch::kLong);
  // Dropout 1: every label is "no class", so the labels given do not matter.
  EXPECT_TRUE(torch::equal(weights_after_step(some, 1), weights_after_step(other, 1)));
  EXPECT_TRUE(torch::equal(weights_after_step(some, 1), weights_after_step(none, 0)));
  // Dropout 0: they do; and a step is reproducible.
  EXPECT_FALSE(torch::equal(weights_after_step(some, 0), weights_after_step(other, 0)));
  EXPECT_TRUE(torch::equal(weights_after_step(some, 0.5), weights_after_step(some, 0.5)));
  // Dropout 0.5 lies strictly between: some labels kept, some dropped.
  const auto half = weights_after_step(some, 0.5);
  EXPECT_FALSE(torch::equal(half, weights_after_step(some, 0)));
  EXPECT_FALSE(torch::equal(half, weights_after_step(none, 0)));
}

TEST(ClassConditioning, TrainingChecksItsLabels) {
  Model model(class_config(), torch::kCPU, 3);
  Trainer trainer(model, TrainConfig{});
  const auto pixels = torch::rand({4, 1, 16, 16});
  EXPECT_EQ(status_of([&] { trainer.step(pixels); }), Status::InvalidArgument);
  EXPECT_EQ(status_of([&] { trainer.step(pixels, torch::tensor({0, 1, 2}, torch::kLong)); }), Status::BufferSize);
  EXPECT_EQ(status_of([&] { trainer.step(pixels, torch::tensor(std::vector<int64_t>{0, 1, 2, kClasses + 1})); }),
            Status::InvalidArgument);
  EXPECT_EQ(status_of([&] { trainer.step(pixels, torch::tensor(std::vector<int64_t>{0, 1, 2, kClasses})); }), Status::Ok);
  EXPECT_EQ(trainer.steps(), 1);
  Model unconditional(testing::tiny_config(), torch::kCPU, 3);
  Trainer plain(unconditional, TrainConfig{});
  EXPECT_EQ(status_of([&] { plain.step(pixels, torch::tensor({0, 1, 2, 0}, torch::kLong)); }), Status::InvalidArgument);
  TrainConfig bad;
  bad.label_dropout = 1.5;
  EXPECT_EQ(status_of([&] { bad.validate(); }), Status::InvalidArgument);
}

TEST(ClassConditioning, ModelFilesKeepTheClassesAndTheirNames) {
  testing::TempDir dir;
  auto model = class_model();
  model.set_class_names({"coat", "bag", "sneaker"});
  save_model(model, dir.file("classes.safetensors"));
  const auto loaded = load_model(dir.file("classes.safetensors"), torch::kCPU);
  EXPECT_EQ(loaded->config().classes, kClasses);
  EXPECT_EQ(loaded->config().class_names, (std::vector<std::string>{"coat", "bag", "sneaker"}));
  EXPECT_EQ(loaded->config().class_name(2), "sneaker");
  SampleRequest request;
  request.count = 2;
  request.steps = 2;
  request.classes = {2, 0};
  request.guidance = 2.5;
  EXPECT_TRUE(torch::equal(sample(*loaded, request), sample(model, request)));
  // An unconditional model's config says nothing of classes, as before class models existed.
  Model plain(testing::tiny_config(), torch::kCPU, 1);
  EXPECT_FALSE(plain.config().to_json().contains("classes"));
  EXPECT_EQ(ModelConfig::from_json(plain.config().to_json()).classes, 0);
  // Names are optional: classes are then named by number.
  auto unnamed = class_config();
  EXPECT_EQ(ModelConfig::from_json(unnamed.to_json()).class_name(1), "1");
  // A file whose config has names that do not fit is a format error.
  auto json = model.config().to_json();
  json["class_names"] = {"one"};
  EXPECT_EQ(status_of([&] { ModelConfig::from_json(json); }), Status::Format);
  json = model.config().to_json();
  json["classes"] = 1 << 30;
  EXPECT_EQ(status_of([&] { ModelConfig::from_json(json); }), Status::Format);
}

struct ModelHandle {
  ddim_model* model = nullptr;
  ~ModelHandle() { ddim_model_free(model); }
};

TEST(ClassConditioning, TheCBoundaryNamesSamplesAndTrainsClasses) {
  auto config = testing::tiny_c_config();
  config.classes = 3;
  ModelHandle handle;
  ASSERT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &handle.model), DDIM_OK);
  ddim_config read;
  ASSERT_EQ(ddim_model_config(handle.model, &read), DDIM_OK);
  EXPECT_EQ(read.classes, 3);
  int64_t length = -1;
  ASSERT_EQ(ddim_model_class_names(handle.model, nullptr, 0, &length), DDIM_OK);
  EXPECT_EQ(length, 0);
  EXPECT_EQ(ddim_model_set_class_names(handle.model, "coat\nbag"), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("class names"), std::string::npos);
  ASSERT_EQ(ddim_model_set_class_names(handle.model, "coat\nbag\nsneaker"), DDIM_OK);
  char names[32];
  ASSERT_EQ(ddim_model_class_names(handle.model, names, sizeof names, &length), DDIM_OK);
  EXPECT_STREQ(names, "coat\nbag\nsneaker");
  EXPECT_EQ(ddim_model_class_names(handle.model, names, 4, &length), DDIM_ERR_BUFFER_SIZE);

  ddim_sample_params params;
  ddim_sample_params_init(&params);
  EXPECT_EQ(params.guidance, 1.0);
  EXPECT_EQ(params.classes, nullptr);
  params.count = 2;
  params.steps = 2;
  const int32_t classes[] = {2, 1};
  params.classes = classes;
  params.class_count = 3;
  std::vector<float> out(2 * 16 * 16);
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), static_cast<int64_t>(out.size())),
            DDIM_ERR_BUFFER_SIZE);
  params.class_count = 2;
  params.guidance = 3;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), static_cast<int64_t>(out.size())), DDIM_OK);
  params.classes = nullptr;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, out.data(), static_cast<int64_t>(out.size())),
            DDIM_ERR_NULL_POINTER);

  ddim_train_params train;
  ddim_train_params_init(&train);
  EXPECT_EQ(train.label_dropout, 0.1);
  ASSERT_EQ(ddim_train_begin(handle.model, &train), DDIM_OK);
  std::vector<float> pixels(2 * 16 * 16, 0.5f);
  float loss = 0;
  EXPECT_EQ(ddim_train_step(handle.model, pixels.data(), 2, static_cast<int64_t>(pixels.size()), &loss),
            DDIM_ERR_INVALID_ARGUMENT);
  const int32_t labels[] = {0, 3};
  EXPECT_EQ(ddim_train_step_labeled(handle.model, pixels.data(), 2, static_cast<int64_t>(pixels.size()), labels, 1, &loss),
            DDIM_ERR_BUFFER_SIZE);
  EXPECT_EQ(ddim_train_step_labeled(handle.model, pixels.data(), 2, static_cast<int64_t>(pixels.size()), labels, 2, &loss),
            DDIM_OK);
  float noise_loss = 0, image_loss = 0;
  EXPECT_EQ(ddim_evaluate_labeled(handle.model, pixels.data(), 2, static_cast<int64_t>(pixels.size()), labels, 2, 1, 1,
                                  &noise_loss, &image_loss),
            DDIM_OK);
  EXPECT_GT(noise_loss, 0);
}

}  // namespace
}  // namespace ddim
