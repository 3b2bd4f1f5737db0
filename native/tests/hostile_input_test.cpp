// Hostile and careless input: the files and arguments that once crashed the process, allocated
// without bound, hung or returned NaN pixels. Each now gets a clear status. Loads that would
// exhaust memory or hang if a bound were lost run in a forked child with a capped data segment and
// an alarm, so a regression fails the test instead of taking the machine down.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "c_test_util.h"
#include "ddim.h"
#include "model.h"
#include "error.h"
#include "feature_extractor.h"
#include "model_file.h"
#include "test_util.h"
#include "unet.h"

namespace ddim {
namespace {

using nlohmann::json;
using testing::join;
using testing::read_bytes;
using testing::split;
using testing::TempDir;
using testing::write_bytes;

// The child's data segment (heap and private mappings) in KiB, from /proc/self/status.
long data_kib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmData:") {
      long kib = 0;
      status >> kib;
      return kib;
    }
  }
  return 0;
}

// Runs `body` in a forked child whose data segment may grow by at most `megabytes` and which is
// killed after `seconds`; returns what `body` returned, or -signal when the child died (a crash, or
// SIGALRM for a hang). Only for code that fails before running any libtorch operator (libtorch's
// thread pool is not safe to use after fork).
int in_bounded_child(const std::function<int()>& body, long megabytes = 256, unsigned seconds = 30) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const rlim_t bytes = static_cast<rlim_t>(data_kib() + megabytes * 1024) * 1024;
    const rlimit limit{bytes, bytes};
    ::setrlimit(RLIMIT_DATA, &limit);
    ::alarm(seconds);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// ddim_model_load's status on `path` in a bounded child.
int bounded_load_status(const std::string& path) {
  return in_bounded_child([&] {
    ddim_model* model = nullptr;
    const int status = ddim_model_load(path.c_str(), DDIM_DEVICE_CPU, &model);
    ddim_model_free(model);
    return status;
  });
}

// ddim_model_load's status and message on `path`, in this process.
ddim_status load_status(const std::string& path, std::string* message = nullptr) {
  ddim_model* model = nullptr;
  const ddim_status status = ddim_model_load(path.c_str(), DDIM_DEVICE_CPU, &model);
  if (message != nullptr) *message = ddim_last_error();
  ddim_model_free(model);
  return status;
}

// A model file's header text with ddim4j's metadata for `config` and `tensors` (a JSON object text
// without braces, may be empty), and no data.
std::vector<uint8_t> header_only_file(const json& config, const std::string& tensors = "") {
  const json metadata = {{"format", "ddim4j"}, {"format_version", "1"}, {"config", config.dump()}};
  return join("{\"__metadata__\":" + metadata.dump() + (tensors.empty() ? "" : "," + tensors) + "}", {});
}

json tiny_config_json() { return testing::tiny_config().to_json(); }

// Sampling parameters for `count` images in `steps` steps, reporting to `progress` when given.
ddim_sample_params sample_params(int32_t count, int32_t steps, ddim_progress_callback progress = nullptr,
                                 void* user_data = nullptr) {
  ddim_sample_params params;
  ddim_sample_params_init(&params);
  params.count = count;
  params.steps = steps;
  params.progress = progress;
  params.progress_user_data = user_data;
  return params;
}

class HostileFiles : public ::testing::Test {
 protected:
  std::string write(const std::vector<uint8_t>& bytes, const std::string& name = "hostile.safetensors") {
    const auto path = dir.file(name);
    write_bytes(path, bytes);
    return path;
  }
  TempDir dir;
};

TEST_F(HostileFiles, DeeplyNestedJsonIsAFormatErrorNotAStackOverflow) {
  // 10,000 nested arrays as a dtype once crashed the JVM in the error path (a recursive dump()).
  const std::string nested = std::string(10000, '[') + std::string(10000, ']');
  const auto path = write(header_only_file(tiny_config_json(), "\"net.x\":{\"dtype\":" + nested +
                                                                   ",\"shape\":[],\"data_offsets\":[0,0]}"));
  EXPECT_EQ(bounded_load_status(path), DDIM_ERR_FORMAT);
  std::string message;
  EXPECT_EQ(load_status(path, &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("nests deeper than 32"), std::string::npos) << message;

  // The same inside the config string, which is parsed on its own.
  const json metadata = {{"format", "ddim4j"}, {"format_version", "1"}, {"config", nested}};
  EXPECT_EQ(load_status(write(join("{\"__metadata__\":" + metadata.dump() + "}", {}))), DDIM_ERR_FORMAT);
}

TEST_F(HostileFiles, AConfigBeyondTheParameterLimitIsRefusedBeforeAllocating) {
  // 335 bytes asking for widths [4096] x 8, depth 64, 4096 pixels once built the whole network.
  auto config = tiny_config_json();
  config["widths"] = std::vector<int64_t>(8, 4096);
  config["block_depth"] = 64;
  config["image_size"] = 4096;
  const auto path = write(header_only_file(config));
  EXPECT_EQ(bounded_load_status(path), DDIM_ERR_FORMAT);
  std::string message;
  EXPECT_EQ(load_status(path, &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("DDIM_MAX_PARAMETERS"), std::string::npos) << message;
}

TEST_F(HostileFiles, ALargeConfigWithoutItsTensorsAllocatesNothing) {
  // Within the parameter limit but far beyond the child's 256 MB: the tensors are checked against
  // the config before the network is built, so the load fails fast and small.
  auto config = tiny_config_json();
  config["widths"] = {512, 512, 512, 512};
  config["block_depth"] = 4;
  config["image_size"] = 64;
  ASSERT_GT(unet_parameter_count(ModelConfig::from_json(config)), 100'000'000);
  const auto path = write(header_only_file(config));
  EXPECT_EQ(bounded_load_status(path), DDIM_ERR_FORMAT);
  std::string message;
  EXPECT_EQ(load_status(path, &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("missing tensor"), std::string::npos) << message;
}

TEST_F(HostileFiles, DevicesFifosAndDirectoriesAreRefusedWithoutReading) {
  // /dev/zero was read until memory ran out; a FIFO blocked forever.
  EXPECT_EQ(bounded_load_status("/dev/zero"), DDIM_ERR_IO);
  const auto fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(bounded_load_status(fifo), DDIM_ERR_IO);
  std::string message;
  EXPECT_EQ(load_status(fifo, &message), DDIM_ERR_IO);
  EXPECT_NE(message.find("not a regular file"), std::string::npos) << message;
  EXPECT_EQ(load_status(std::filesystem::temp_directory_path().string(), &message), DDIM_ERR_IO);
  EXPECT_NE(message.find("directory"), std::string::npos) << message;
}

TEST_F(HostileFiles, HeaderLengthsBeyondTheFileOrTheLimitAreFormatErrors) {
  std::vector<uint8_t> claim(16, 0);
  claim[7] = 0x80;  // 2^63 bytes of header
  EXPECT_EQ(bounded_load_status(write(claim)), DDIM_ERR_FORMAT);
  // A header over the 16 MiB limit, really present in the file.
  const std::string padding(DDIM_MAX_HEADER_BYTES + 8, ' ');
  std::string message;
  EXPECT_EQ(load_status(write(join(padding, {})), &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("limit"), std::string::npos) << message;
}

TEST_F(HostileFiles, ShapeProductsThatOverflowAreFormatErrors) {
  // [2^40, 2^24] floats wrapped to a small byte count in an unchecked product.
  const auto path = write(header_only_file(
      tiny_config_json(), "\"net.x\":{\"dtype\":\"F32\",\"shape\":[1099511627776,16777216],\"data_offsets\":[0,0]}"));
  EXPECT_EQ(bounded_load_status(path), DDIM_ERR_FORMAT);
  std::string message;
  EXPECT_EQ(load_status(path, &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("too large"), std::string::npos) << message;
}

TEST_F(HostileFiles, LongTensorNamesAreShortenedInMessages) {
  const std::string name(100000, 'n');
  std::string message;
  EXPECT_EQ(load_status(write(header_only_file(tiny_config_json(), "\"" + name + "\":{\"dtype\":\"F32\"}")), &message),
            DDIM_ERR_FORMAT);
  EXPECT_LT(message.size(), 300u) << message;
}

// A saved tiny model (with `prepare` applied to it first), as bytes.
std::vector<uint8_t> saved_model(const TempDir& dir, const std::function<void(Model&)>& prepare = {}) {
  Model model(testing::tiny_config(), torch::kCPU, 3);
  if (prepare) {
    torch::NoGradGuard no_grad;
    prepare(model);
  }
  const auto path = dir.file("saved.safetensors");
  save_model(model, path);
  return read_bytes(path);
}

TEST_F(HostileFiles, NegativeBatchNormVariancesAreRejectedAtLoad) {
  const auto bytes = saved_model(dir, [](Model& model) {
    model.net()->named_buffers()["down.0.blocks.0.norm.running_var"].fill_(-1.0f);
  });
  std::string message;
  EXPECT_EQ(load_status(write(bytes), &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("running_var"), std::string::npos) << message;
  EXPECT_NE(message.find("negative"), std::string::npos) << message;
}

// A model with the given state, loaded through the C ABI; the caller frees it.
ddim_model* load_handle(const std::string& path) {
  ddim_model* model = nullptr;
  EXPECT_EQ(ddim_model_load(path.c_str(), DDIM_DEVICE_CPU, &model), DDIM_OK) << ddim_last_error();
  return model;
}

TEST_F(HostileFiles, ExtremeWeightsGiveNonFiniteErrorsNotNaNPixels) {
  // Finite weights of 1e30 overflow float32 inside the network: loading works, results do not.
  const auto path = write(saved_model(dir, [](Model& model) {
    for (auto& p : model.net()->parameters()) p.fill_(1e30f);
  }));
  ddim_model* model = load_handle(path);
  auto params = sample_params(2, 2);
  std::vector<float> pixels(2 * 16 * 16);
  EXPECT_EQ(ddim_sample(model, &params, nullptr, 0, pixels.data(), pixels.size()), DDIM_ERR_NON_FINITE);
  EXPECT_NE(std::string(ddim_last_error()).find("NaN or infinite"), std::string::npos) << ddim_last_error();
  EXPECT_EQ(ddim_invert(model, &params, std::vector<float>(pixels.size(), 0.5f).data(), pixels.size(), pixels.data(),
                        pixels.size()),
            DDIM_ERR_NON_FINITE);
  // Training on it diverges at once: reported before any weight changes.
  ddim_train_params train;
  ddim_train_params_init(&train);
  ASSERT_EQ(ddim_train_begin(model, &train), DDIM_OK);
  float loss = 0;
  std::vector<float> batch(2 * 16 * 16, 0.5f);
  EXPECT_EQ(ddim_train_step(model, batch.data(), 2, batch.size(), &loss), DDIM_ERR_NON_FINITE);
  int64_t steps = -1;
  ASSERT_EQ(ddim_train_state(model, nullptr, nullptr, &steps), DDIM_OK);
  EXPECT_EQ(steps, 0);
  ddim_model_free(model);
}

// A tiny checkpoint after one training step, as bytes.
std::vector<uint8_t> checkpoint_bytes(const TempDir& dir) {
  const auto config = testing::tiny_c_config();
  ddim_model* model = nullptr;
  EXPECT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 5, &model), DDIM_OK);
  ddim_train_params params;
  ddim_train_params_init(&params);
  EXPECT_EQ(ddim_train_begin(model, &params), DDIM_OK);
  std::vector<float> batch(4 * 16 * 16, 0.25f);
  float loss = 0;
  EXPECT_EQ(ddim_train_step(model, batch.data(), 4, batch.size(), &loss), DDIM_OK);
  const auto path = dir.file("checkpoint.safetensors");
  EXPECT_EQ(ddim_checkpoint_save(model, path.c_str(), "state"), DDIM_OK);
  ddim_model_free(model);
  return read_bytes(path);
}

TEST_F(HostileFiles, CheckpointTrainingStateIsValidatedAtLoad) {
  const auto bytes = checkpoint_bytes(dir);
  ddim_model_free(load_handle(write(bytes)));  // the untouched checkpoint loads

  // An optimizer moment of the right size but the wrong shape once loaded and failed later with INTERNAL.
  auto parts = split(bytes);
  parts.header["optim.input_conv.weight.exp_avg"]["shape"] = {1, 8, 1, 1};
  std::string message;
  EXPECT_EQ(load_status(write(join(parts)), &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("optim.input_conv.weight.exp_avg"), std::string::npos) << message;

  // A stored learning rate of -1 once gave INTERNAL on the first step.
  parts = split(bytes);
  auto training = json::parse(parts.header["__metadata__"]["training"].get<std::string>());
  training["config"]["learning_rate"] = -1;
  parts.header["__metadata__"]["training"] = training.dump();
  EXPECT_EQ(load_status(write(join(parts)), &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("learning_rate"), std::string::npos) << message;

  parts = split(bytes);
  training = json::parse(parts.header["__metadata__"]["training"].get<std::string>());
  training["steps"] = -5;
  parts.header["__metadata__"]["training"] = training.dump();
  EXPECT_EQ(load_status(write(join(parts)), &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("step count"), std::string::npos) << message;

  // Half the optimizer state: its bytes become a gap, so drop the checksum and pack the data.
  parts = split(bytes);
  const auto offsets = parts.header["optim.output_conv.bias.exp_avg_sq"]["data_offsets"];
  parts.header.erase("optim.output_conv.bias.exp_avg_sq");
  parts.header["__metadata__"].erase("data_crc32");
  parts.header["__metadata__"].erase("tensors_crc32");
  const uint64_t begin = offsets[0], end = offsets[1];
  parts.data.erase(parts.data.begin() + static_cast<std::ptrdiff_t>(begin), parts.data.begin() + static_cast<std::ptrdiff_t>(end));
  for (auto& item : parts.header.items()) {
    if (item.key() == "__metadata__") continue;
    auto& range = item.value()["data_offsets"];
    for (auto& offset : range)
      if (offset.get<uint64_t>() >= end) offset = offset.get<uint64_t>() - (end - begin);
  }
  EXPECT_EQ(load_status(write(join(parts)), &message), DDIM_ERR_FORMAT);
  EXPECT_NE(message.find("optimizer state are incomplete"), std::string::npos) << message;
}

// Integer fields read with nlohmann's get<int64_t>() took 2.5 as 2, and 1e300 was undefined behaviour
// (UBSan: float-cast-overflow). Every integer field must now be a JSON integer in range, named when not.
TEST_F(HostileFiles, IntegerFieldsMustBeJsonIntegersInRange) {
  const auto refused = [&](json config, const std::string& field, const json& value, const std::string& named) {
    if (field == "widths") {
      config["widths"][1] = value;
    } else {
      config[field] = value;
    }
    std::string message;
    EXPECT_EQ(load_status(write(header_only_file(config)), &message), DDIM_ERR_FORMAT) << field << " = " << value.dump();
    EXPECT_NE(message.find(named), std::string::npos) << message;
  };
  for (const std::string field : {"channels", "image_size", "block_depth", "embedding_dim", "classes", "widths"}) {
    const std::string named = field == "widths" ? "widths[1]" : field;
    refused(tiny_config_json(), field, 2.5, named + " must be an integer, got 2.5");
    refused(tiny_config_json(), field, 1e300, named + " must be an integer");
    refused(tiny_config_json(), field, std::numeric_limits<uint64_t>::max(), named + " must lie in");
    refused(tiny_config_json(), field, "2", named + " must be an integer");
  }

  const auto bytes = checkpoint_bytes(dir);
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"steps", 1e300}, {"steps", 3.5}, {"seed", -1}, {"seed", 2.5}, {"accumulate", 2.5}, {"accumulate", 1e300}}) {
    auto parts = split(bytes);
    auto training = json::parse(parts.header["__metadata__"]["training"].get<std::string>());
    (field == "steps" ? training["steps"] : training["config"][field]) = value;
    parts.header["__metadata__"]["training"] = training.dump();
    std::string message;
    EXPECT_EQ(load_status(write(join(parts)), &message), DDIM_ERR_FORMAT) << field << " = " << value.dump();
    EXPECT_NE(message.find(field + " must be an integer"), std::string::npos) << message;
  }

  const auto spec = dir.file("extractor.json");
  std::ofstream(spec) << R"({"input_size": 28.5, "input_channels": 1})";
  try {
    ExtractorSpec::read(spec);
    ADD_FAILURE() << "input_size 28.5 was accepted";
  } catch (const ddim::Error& e) {
    EXPECT_EQ(e.status(), Status::Format);
    EXPECT_NE(std::string(e.what()).find("input_size must be an integer"), std::string::npos) << e.what();
  }
}

// ---- arguments ----

struct TinyHandle {
  TinyHandle() {
    const auto config = testing::tiny_c_config();
    EXPECT_EQ(ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &model), DDIM_OK);
  }
  ~TinyHandle() { ddim_model_free(model); }
  ddim_model* model = nullptr;
};

constexpr int64_t kTinyImage = 16 * 16;

TEST(HostileArguments, OversizedRequestsAreRefusedBeforeAllocating) {
  TinyHandle handle;
  std::vector<float> pixels(kTinyImage);
  const auto refused = [&](const std::function<void(ddim_sample_params&)>& change, const char* named) {
    auto params = sample_params(1, 20);
    change(params);
    EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), kTinyImage), DDIM_ERR_INVALID_ARGUMENT)
        << named;
    EXPECT_NE(std::string(ddim_last_error()).find(named), std::string::npos) << ddim_last_error();
  };
  // steps = INT32_MAX once allocated 17 GB of time grid before the first step.
  refused([](auto& p) { p.steps = INT32_MAX; }, "steps");
  refused([](auto& p) { p.steps = DDIM_MAX_STEPS + 1; }, "steps");
  refused([](auto& p) { p.micro_batch = INT32_MAX; }, "micro_batch");  // padded to that many images
  refused([](auto& p) { p.eta = 1e300; }, "eta");
  refused([](auto& p) { p.eta = std::nan(""); }, "eta");
  refused([](auto& p) { p.first_index = INT64_MAX; }, "first_index");  // first_index + i overflowed

  auto params = sample_params(1, 1);
  params.first_index = DDIM_MAX_FIRST_INDEX;
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), kTinyImage), DDIM_OK) << ddim_last_error();
}

TEST(HostileArguments, SizeProductsThatOverflowAreRefused) {
  const auto config = testing::tiny_c_config();
  std::vector<float> values(8);
  EXPECT_EQ(ddim_noise_embedding(&config, values.data(), INT64_MAX / 2, values.data(), 8), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("too large"), std::string::npos) << ddim_last_error();
  ddim_kid_params kid;
  ddim_kid_params_init(&kid);
  ddim_kid_result result;
  EXPECT_EQ(ddim_kid(values.data(), INT64_MAX / 4, values.data(), 2, 4, &kid, &result), DDIM_ERR_INVALID_ARGUMENT);
}

TEST(HostileArguments, ThreadCountsAreCapped) {
  const int32_t before = ddim_get_num_threads();
  const int32_t available = ddim_available_threads();
  EXPECT_EQ(ddim_set_num_threads(DDIM_MAX_THREADS_PER_CORE * available + 1), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ddim_set_num_threads(3000 + DDIM_MAX_THREADS_PER_CORE * available), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ddim_get_num_threads(), before);
}

TEST(HostileArguments, ExtremeNoiseGivesANonFiniteErrorNotNaNPixels) {
  TinyHandle handle;
  auto params = sample_params(1, 3);
  std::vector<float> noise(kTinyImage, 3e38f), pixels(kTinyImage);
  EXPECT_EQ(ddim_sample(handle.model, &params, noise.data(), kTinyImage, pixels.data(), kTinyImage), DDIM_ERR_NON_FINITE);
  noise[5] = std::nanf("");
  EXPECT_EQ(ddim_sample(handle.model, &params, noise.data(), kTinyImage, pixels.data(), kTinyImage),
            DDIM_ERR_INVALID_ARGUMENT);
}

TEST(HostileArguments, EvaluationAndTrainingNeedPixelsInTheUnitRange) {
  TinyHandle handle;
  std::vector<float> pixels(kTinyImage, 0.5f);
  pixels[7] = 2.0f;
  float noise_loss = 0, image_loss = 0;
  EXPECT_EQ(ddim_evaluate(handle.model, pixels.data(), 1, kTinyImage, 1, 1, &noise_loss, &image_loss),
            DDIM_ERR_INVALID_ARGUMENT);
  ddim_train_params params;
  ddim_train_params_init(&params);
  ASSERT_EQ(ddim_train_begin(handle.model, &params), DDIM_OK);
  pixels[7] = -0.5f;
  float loss = 0;
  EXPECT_EQ(ddim_train_step(handle.model, pixels.data(), 1, kTinyImage, &loss), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("[0, 1]"), std::string::npos) << ddim_last_error();
}

// ---- re-entrant and concurrent calls ----

struct Reentry {
  ddim_model* model;
  int32_t inner_status = -1;
  bool free_from_callback = false;
};

int32_t call_back_in(void* user_data, int32_t, int32_t, int64_t, int32_t) {
  auto* reentry = static_cast<Reentry*>(user_data);
  int32_t has_ema = 0;
  reentry->inner_status = ddim_model_has_ema(reentry->model, &has_ema);
  if (reentry->free_from_callback) ddim_model_free(reentry->model);
  return 0;
}

TEST(HostileArguments, ACallbackCallingBackInIsRefusedNotDeadlocked) {
  TinyHandle handle;
  Reentry reentry{handle.model};
  auto params = sample_params(1, 2, call_back_in, &reentry);
  std::vector<float> pixels(kTinyImage);
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), kTinyImage), DDIM_OK);
  EXPECT_EQ(reentry.inner_status, DDIM_ERR_REENTRANT);
  // The handle still works afterwards.
  int32_t has_ema = -1;
  EXPECT_EQ(ddim_model_has_ema(handle.model, &has_ema), DDIM_OK);
}

TEST(HostileArguments, AFreeFromTheCallbackWaitsForTheCallToReturn) {
  TinyHandle handle;
  Reentry reentry{handle.model, -1, true};
  auto params = sample_params(1, 1, call_back_in, &reentry);
  std::vector<float> pixels(kTinyImage);
  // Sampling finishes on the live model (AddressSanitizer checks this), then the handle is freed.
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), kTinyImage), DDIM_OK);
  handle.model = nullptr;
}

struct Blocking {
  ddim_model* model;
  std::atomic<bool> started{false};
  std::atomic<bool> freed{false};
  bool freed_during_call = true;
};

int32_t block_while_freed(void* user_data, int32_t step, int32_t, int64_t, int32_t) {
  auto* blocking = static_cast<Blocking*>(user_data);
  if (step == 1) {
    blocking->started = true;
    // No sleep: wait until the free has begun. A call from here is REENTRANT while the handle is live, and
    // INVALID_ARGUMENT ("not live") once the free has unregistered it; this call still holds it.
    int32_t has_ema = 0;
    while (ddim_model_has_ema(blocking->model, &has_ema) != DDIM_ERR_INVALID_ARGUMENT) std::this_thread::yield();
    blocking->freed_during_call = blocking->freed;
  }
  return 0;
}

TEST(HostileArguments, AFreeFromAnotherThreadWaitsForTheRunningCall) {
  TinyHandle handle;
  Blocking blocking{handle.model};
  std::thread freer([&] {
    while (!blocking.started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ddim_model_free(handle.model);
    blocking.freed = true;
  });
  auto params = sample_params(1, 2, block_while_freed, &blocking);
  std::vector<float> pixels(kTinyImage);
  EXPECT_EQ(ddim_sample(handle.model, &params, nullptr, 0, pixels.data(), kTinyImage), DDIM_OK);
  freer.join();
  EXPECT_FALSE(blocking.freed_during_call);
  EXPECT_TRUE(blocking.freed);
  handle.model = nullptr;
}

struct RacingFree {
  std::atomic<bool> started{false};
  std::atomic<bool> freeing{false};
};

int32_t cancel_once_freeing(void* user_data, int32_t, int32_t, int64_t, int32_t) {
  auto* race = static_cast<RacingFree*>(user_data);
  race->started = true;
  return race->freeing ? 1 : 0;
}

// C callers do not serialise a free with their other calls: calls on other threads racing
// ddim_model_free finish before the model goes, or fail with INVALID_ARGUMENT after; none touches
// freed memory (this test runs under AddressSanitizer and ThreadSanitizer in CI). A second free does nothing.
TEST(HostileArguments, CallsRacingAFreeFinishBeforeItOrFailCleanlyAfter) {
  TinyHandle handle;
  ddim_model* model = handle.model;
  RacingFree race;
  ddim_status sampled = DDIM_OK;
  std::thread sampler([&] {
    auto params = sample_params(1, 1000, cancel_once_freeing, &race);
    std::vector<float> pixels(kTinyImage);
    sampled = ddim_sample(model, &params, nullptr, 0, pixels.data(), kTinyImage);
  });
  constexpr int kCallers = 3;
  std::vector<ddim_status> last(kCallers, DDIM_OK);
  std::vector<int64_t> calls(kCallers, 0);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      int32_t has_ema = 0;
      while ((last[i] = ddim_model_has_ema(model, &has_ema)) == DDIM_OK) ++calls[i];
    });
  }
  while (!race.started) std::this_thread::yield();
  race.freeing = true;
  ddim_model_free(model);
  sampler.join();
  for (auto& caller : callers) caller.join();
  handle.model = nullptr;
  EXPECT_TRUE(sampled == DDIM_OK || sampled == DDIM_ERR_CANCELLED) << sampled;
  for (int i = 0; i < kCallers; ++i) EXPECT_EQ(last[i], DDIM_ERR_INVALID_ARGUMENT) << "caller " << i << " after " << calls[i] << " calls";
  int32_t has_ema = 0;
  EXPECT_EQ(ddim_model_has_ema(model, &has_ema), DDIM_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ddim_last_error()).find("not live"), std::string::npos) << ddim_last_error();
  ddim_model_free(model);  // a double free is a no-op
}

// Creates a reference model, caps the data segment 48 MB above it, samples a batch that needs more,
// and exits with the status.
[[noreturn]] void sample_beyond_a_data_limit() {
  ddim_set_num_threads(1);
  ddim_config config;
  ddim_config_init(&config);
  ddim_model* model = nullptr;
  if (ddim_model_create(&config, DDIM_DEVICE_CPU, 1, &model) != DDIM_OK) ::_exit(100);
  std::vector<float> pixels(64 * 3 * 64 * 64);  // the caller's buffer, allocated before the limit
  const rlim_t bytes = static_cast<rlim_t>(data_kib() + 48 * 1024) * 1024;
  const rlimit limit{bytes, bytes};
  ::setrlimit(RLIMIT_DATA, &limit);
  auto params = sample_params(64, 1);
  params.micro_batch = 64;
  const int status = ddim_sample(model, &params, nullptr, 0, pixels.data(), static_cast<int64_t>(pixels.size()));
  std::fprintf(stderr, "%s\n", ddim_last_error());
  ::_exit(status);
}

TEST(HostileArguments, RunningOutOfMemoryIsAStatusNotACrash) {
  // In a freshly started copy of this test binary (gtest's threadsafe death-test style), so that
  // libtorch's threads and the memory cap stay out of this process.
#if defined(DDIM_UNDER_ASAN)
  GTEST_SKIP() << "AddressSanitizer's allocator aborts when its own mmap hits the cap; the plain build checks this";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(sample_beyond_a_data_limit(), ::testing::ExitedWithCode(DDIM_ERR_OUT_OF_MEMORY), "");
}

// ---- caller memory across chunked calls ----

// Floats that end exactly where an inaccessible page begins, so that any read or write past their
// end faults at once, even from libtorch's and oneDNN's own (uninstrumented) code.
class GuardedFloats {
 public:
  GuardedFloats(size_t count, float fill) : count_(count) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t bytes = count * sizeof(float);
    size_ = (bytes + page - 1) / page * page + page;
    base_ = static_cast<uint8_t*>(::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(base_, MAP_FAILED);
    EXPECT_EQ(::mprotect(base_ + size_ - page, page, PROT_NONE), 0);
    data_ = reinterpret_cast<float*>(base_ + size_ - page - bytes);
    std::fill(data_, data_ + count, fill);
  }
  ~GuardedFloats() { ::munmap(base_, size_); }
  float* data() { return data_; }
  int64_t size() const { return static_cast<int64_t>(count_); }

 private:
  size_t count_, size_;
  uint8_t* base_;
  float* data_;
};

TEST(CallerMemory, ChunkedCallsStayInsideTheCallersBuffers) {
  // A 1000-image sample of the shipped model once died reading unmapped memory inside oneDNN. Every
  // buffer the caller hands over (noise, pixels, mask, output) ends at a guard page here, and the
  // request is split into chunks and padded micro-batches (with the CPU cache on, as always).
  ddim_model* model = nullptr;
  const std::string path = std::string(DDIM_SOURCE_DIR) + "/models/fashion-mnist-32.safetensors";
  ASSERT_EQ(ddim_model_load(path.c_str(), DDIM_DEVICE_CPU, &model), DDIM_OK) << ddim_last_error();
  ddim_config config;
  ASSERT_EQ(ddim_model_config(model, &config), DDIM_OK);
  const int64_t count = 7, plane = int64_t{config.image_size} * config.image_size, image = config.channels * plane;
  auto params = sample_params(static_cast<int32_t>(count), 3);
  params.batch_size = 3;   // chunks of 3, 3 and 1
  params.micro_batch = 2;  // odd chunks are padded
  GuardedFloats noise(count * image, 0.0f), pixels(count * image, 0.5f), mask(count * plane, 1.0f), out(count * image, 0.0f);
  GuardedFloats frames(count * (params.steps + 1) * image, 0.0f);
  ASSERT_EQ(ddim_initial_noise(model, params.seed, 0, params.count, noise.data(), noise.size()), DDIM_OK);
  EXPECT_EQ(ddim_sample(model, &params, noise.data(), noise.size(), out.data(), out.size()), DDIM_OK) << ddim_last_error();
  EXPECT_EQ(ddim_sample_trajectory(model, &params, noise.data(), noise.size(), frames.data(), frames.size()), DDIM_OK);
  EXPECT_EQ(ddim_invert(model, &params, pixels.data(), pixels.size(), out.data(), out.size()), DDIM_OK);
  EXPECT_EQ(ddim_vary(model, &params, 0.5, pixels.data(), pixels.size(), out.data(), out.size()), DDIM_OK);
  EXPECT_EQ(ddim_inpaint(model, &params, pixels.data(), pixels.size(), mask.data(), mask.size(), out.data(), out.size()),
            DDIM_OK);
  float noise_loss = 0, image_loss = 0;
  EXPECT_EQ(ddim_evaluate(model, pixels.data(), count, pixels.size(), 1, 1, &noise_loss, &image_loss), DDIM_OK);
  ddim_train_params train;
  ddim_train_params_init(&train);
  ASSERT_EQ(ddim_train_begin(model, &train), DDIM_OK);
  float loss = 0;
  EXPECT_EQ(ddim_train_step(model, pixels.data(), count, pixels.size(), &loss), DDIM_OK) << ddim_last_error();
  ddim_model_free(model);
}

}  // namespace
}  // namespace ddim
