// The native benchmark driver: sampling and training throughput through the C ABI alone, no Java.
// Beside the JMH figures (the same work through Java) it gives Java's overhead; beside
// benchmarks/python/baseline.py, the speed of ddim4j against eager PyTorch.
//
//   ddim_bench --mode sample|train --config reference|fashion [--batch 16] [--steps 20]
//              [--iterations 3] [--min-seconds 20] [--warmup 2] [--threads 0] [--precision fp32|bf16] [--network auto|eager|fused] [--device cpu|cuda|N]
//              [--cpu-cache on|off]
//
// Training across processes: start one driver per rank with torchrun's variables (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT; benchmarks/distributed.sh does). --batch stays the global batch, each
// rank steps on batch / WORLD_SIZE images, and the JSON adds the collectives' time per step.
//
// Warms up, then times operations until it has at least --iterations of them and --min-seconds of
// timed work. Prints one JSON object: the settings, seconds per operation (median and all) and
// images/s over all timed operations.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ddim.h"

namespace {

struct Settings {
  std::string mode = "sample";
  std::string config = "reference";
  int batch = 16;
  int steps = 20;
  int iterations = 3;      // at least this many timed operations
  double min_seconds = 20;  // and at least this much timed time (the JMH measurement's length)
  int warmup = 2;
  int threads = 0;
  std::string precision = "fp32";
  std::string network = "auto";  // the library's default
  std::string device = "cpu";  // cpu, cuda (device 0) or a CUDA index
  bool cpu_cache = true;  // the library's default
};

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr, "ddim_bench: %s\nusage: ddim_bench --mode sample|train --config reference|fashion [--batch N] "
                       "[--steps N] [--iterations N] [--min-seconds S] [--warmup N] [--threads N] [--precision fp32|bf16] [--network auto|eager|fused] [--device cpu|cuda|N] [--cpu-cache on|off]\n", problem);
  std::exit(2);
}

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + flag).c_str());
    const std::string value = argv[++i];
    if (flag == "--mode") s.mode = value;
    else if (flag == "--config") s.config = value;
    else if (flag == "--batch") s.batch = std::atoi(value.c_str());
    else if (flag == "--steps") s.steps = std::atoi(value.c_str());
    else if (flag == "--iterations") s.iterations = std::atoi(value.c_str());
    else if (flag == "--warmup") s.warmup = std::atoi(value.c_str());
    else if (flag == "--min-seconds") s.min_seconds = std::atof(value.c_str());
    else if (flag == "--threads") s.threads = std::atoi(value.c_str());
    else if (flag == "--precision") s.precision = value;
    else if (flag == "--network") s.network = value;
    else if (flag == "--device") s.device = value;
    else if (flag == "--cpu-cache") s.cpu_cache = value != "off";
    else usage(("unknown option " + flag).c_str());
  }
  if (s.mode != "sample" && s.mode != "train") usage("--mode must be sample or train");
  if (s.config != "reference" && s.config != "fashion") usage("--config must be reference or fashion");
  if (s.precision != "fp32" && s.precision != "bf16") usage("--precision must be fp32 or bf16");
  if (s.network != "auto" && s.network != "eager" && s.network != "fused") usage("--network must be auto, eager or fused");
  if (s.batch < 1 || s.steps < 1 || s.iterations < 1 || s.warmup < 0) usage("counts must be positive");
  return s;
}

void check(ddim_status status, const char* what) {
  if (status != DDIM_OK) {
    std::fprintf(stderr, "ddim_bench: %s failed: %s: %s\n", what, ddim_status_name(status), ddim_last_error());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Settings s = parse(argc, argv);
  check(ddim_set_num_threads(s.threads), "ddim_set_num_threads");
  check(ddim_set_cpu_cache_limit(s.cpu_cache ? DDIM_DEFAULT_CPU_CACHE_BYTES : 0), "ddim_set_cpu_cache_limit");
  ddim_config config;
  ddim_config_init(&config);
  if (s.config == "fashion") {
    config.channels = 1;
    config.image_size = 32;
  }
  const int32_t device = s.device == "cpu" ? DDIM_DEVICE_CPU : s.device == "cuda" ? 0 : std::atoi(s.device.c_str());
  ddim_model* model = nullptr;
  check(ddim_model_create(&config, device, 1, &model), "ddim_model_create");
  const int64_t floats = int64_t{s.batch} * config.channels * config.image_size * config.image_size;
  std::vector<float> pixels(static_cast<size_t>(floats));

  ddim_sample_params sample;
  ddim_sample_params_init(&sample);
  sample.count = s.batch;
  sample.steps = s.steps;
  sample.seed = 1;
  sample.precision = s.precision == "bf16" ? DDIM_PRECISION_BFLOAT16 : DDIM_PRECISION_FLOAT32;
  sample.network = s.network == "fused" ? DDIM_NETWORK_FUSED : s.network == "eager" ? DDIM_NETWORK_EAGER : DDIM_NETWORK_AUTO;
  int32_t world_size = 1;
  int64_t per_rank = s.batch;
  if (s.mode == "train") {
    ddim_train_params train;
    ddim_train_params_init(&train);
    check(ddim_train_begin(model, &train), "ddim_train_begin");
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;
    if (const char* ranks = std::getenv("WORLD_SIZE"); ranks != nullptr && std::atoi(ranks) > 1) {
      ddim_distributed_params group;
      ddim_distributed_params_init(&group);
      world_size = std::atoi(ranks);
      group.world_size = world_size;
      group.rank = std::atoi(std::getenv("RANK") ? std::getenv("RANK") : "0");
      if (const char* address = std::getenv("MASTER_ADDR")) group.master_addr = address;
      if (const char* port = std::getenv("MASTER_PORT")) group.master_port = std::atoi(port);
      check(ddim_train_join(model, &group), "ddim_train_join");
      if (s.batch % world_size != 0) usage("--batch must be a multiple of WORLD_SIZE");
      per_rank = s.batch / world_size;
    }
  }
  ddim_distributed_stats first{}, last{};

  std::vector<double> seconds;
  double timed = 0;
  for (int i = 0; i < s.warmup || static_cast<int>(seconds.size()) < s.iterations || timed < s.min_seconds; ++i) {
    if (i == s.warmup) check(ddim_distributed_stats_get(model, &first), "ddim_distributed_stats_get");
    const auto start = std::chrono::steady_clock::now();
    if (s.mode == "sample") {
      check(ddim_sample(model, &sample, nullptr, 0, pixels.data(), floats), "ddim_sample");
    } else {
      float loss = 0;
      check(ddim_train_step(model, pixels.data(), per_rank, floats / s.batch * per_rank, &loss), "ddim_train_step");
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (i >= s.warmup) {
      seconds.push_back(elapsed);
      timed += elapsed;
    }
  }
  check(ddim_distributed_stats_get(model, &last), "ddim_distributed_stats_get");
  ddim_model_free(model);

  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  // Throughput over all timed operations, as JMH reports it.
  const double images_per_second = s.batch * static_cast<double>(seconds.size()) / timed;
  std::printf("{\"tool\": \"native\", \"mode\": \"%s\", \"config\": \"%s\", \"batch\": %d, \"steps\": %d, \"threads\": %d, "
              "\"precision\": \"%s\", \"network\": \"%s\", \"device\": \"%s\", \"cpu_cache\": %s, \"median_seconds\": %.6f, \"images_per_second\": %.3f, \"seconds\": [",
              s.mode.c_str(), s.config.c_str(), s.batch, s.mode == "sample" ? s.steps : 1, ddim_get_num_threads(),
              s.precision.c_str(), s.network.c_str(), s.device.c_str(), s.cpu_cache ? "true" : "false", median, images_per_second);
  for (size_t i = 0; i < seconds.size(); ++i) std::printf("%s%.6f", i ? ", " : "", seconds[i]);
  const double steps = static_cast<double>(seconds.size());
  const double collective_seconds = (last.seconds - first.seconds) / steps;
  std::printf("], \"world_size\": %d, \"rank\": %d, \"collective_calls_per_step\": %.1f, \"collective_bytes_per_step\": %.0f, "
              "\"collective_seconds_per_step\": %.6f, \"collective_share\": %.4f}\n",
              world_size, last.rank, static_cast<double>(last.calls - first.calls) / steps,
              static_cast<double>(last.bytes - first.bytes) / steps, collective_seconds, collective_seconds / (timed / steps));
  return 0;
}
