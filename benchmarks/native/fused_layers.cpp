// Per-layer timing of the fused network (native/src/fused_unet.h): every step of the plan, for
// each convolution algorithm, with GFLOP/s. The "per layer" table of benchmarks/RESULTS.md.
//
//   build/ddim_fused_layers [--config reference|fashion] [--batch 16] [--runs 5] [--threads 0]
//                           [--algorithms direct,winograd] [--precision fp32|bf16]
//
// Prints one JSON line per step and algorithm: {"layer", "algorithm", "implementation", "flops",
// "ms", "gflops"}, then a summary line per algorithm (the whole forward).
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

#include "config.h"
#include "fused_unet.h"

namespace {

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "ddim_fused_layers: %s\nusage: ddim_fused_layers [--config reference|fashion] [--batch N] [--runs N] "
               "[--threads N] [--algorithms direct,winograd,fastest] [--precision fp32|bf16]\n",
               problem.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_name = "reference", algorithms = "direct,winograd", precision = "fp32";
  int64_t batch = 16;
  int runs = 5, threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--config") config_name = value;
    else if (flag == "--batch") batch = std::atoll(value.c_str());
    else if (flag == "--runs") runs = std::atoi(value.c_str());
    else if (flag == "--threads") threads = std::atoi(value.c_str());
    else if (flag == "--algorithms") algorithms = value;
    else if (flag == "--precision") precision = value;
    else usage("unknown option " + flag);
  }
  if (batch < 1 || batch > 4096 || runs < 1 || runs > 1000) usage("--batch must be 1..4096 and --runs 1..1000");
  if (precision != "fp32" && precision != "bf16") usage("--precision must be fp32 or bf16");
  ddim::ModelConfig config;  // the reference: 3x64x64, widths 32-64-96-128
  if (config_name == "fashion") {  // the shipped models' architecture: 1x32x32, widths 32-64-96
    config.channels = 1;
    config.image_size = 32;
    config.widths = {32, 64, 96};
  } else if (config_name != "reference") {
    usage("--config must be reference or fashion");
  }
  at::set_num_threads(threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()));  // as ddim4j does
  std::stringstream list(algorithms);
  for (std::string name; std::getline(list, name, ',');) {
    ddim::FusedOptions options;
    options.dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat;
    if (name == "direct") options.convolutions = ddim::ConvAlgorithm::Direct;
    else if (name == "winograd") options.convolutions = ddim::ConvAlgorithm::Winograd;
    else if (name == "fastest") options.convolutions = ddim::ConvAlgorithm::Fastest;
    else usage("unknown algorithm " + name);
    ddim::FusedUNet plan(config, batch, options);
    double total_ms = 0, total_flops = 0;
    for (const auto& step : plan.profile(runs)) {
      total_ms += step.milliseconds;
      total_flops += step.flops;
      std::printf("{\"config\": \"%s\", \"batch\": %lld, \"precision\": \"%s\", \"algorithm\": \"%s\", \"layer\": \"%s\", "
                  "\"implementation\": \"%s\", \"flops\": %.0f, \"ms\": %.4f, \"gflops\": %.2f}\n",
                  config_name.c_str(), static_cast<long long>(batch), precision.c_str(), name.c_str(), step.layer.c_str(),
                  step.implementation.c_str(), step.flops, step.milliseconds,
                  step.flops > 0 ? step.flops / step.milliseconds / 1e6 : 0.0);
    }
    std::printf("{\"config\": \"%s\", \"batch\": %lld, \"precision\": \"%s\", \"algorithm\": \"%s\", \"layer\": \"total\", "
                "\"layout\": \"%s\", \"joins_in_place\": %s, \"threads\": %d, \"flops\": %.0f, \"ms\": %.3f, \"gflops\": %.2f}\n",
                config_name.c_str(), static_cast<long long>(batch), precision.c_str(), name.c_str(),
                plan.activation_layout(), plan.joins_in_place() ? "true" : "false", at::get_num_threads(), total_flops,
                total_ms, total_flops / total_ms / 1e6);
    std::fflush(stdout);
  }
  return 0;
}
