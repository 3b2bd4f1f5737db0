// Per-layer timing of the fused network (native/src/fused_unet.h): every step of the plan, for
// each convolution algorithm, with GFLOP/s. The "per layer" table of benchmarks/RESULTS.md.
//
//   build/ddim_fused_layers [--config reference|fashion] [--batch 16] [--runs 5] [--threads 0]
//                           [--algorithms direct,winograd] [--precision fp32|bf16]
//
// Prints one JSON line per step and algorithm: {"layer", "isa", "algorithm", "implementation", "flops",
// "ms", "gflops"}, then a summary line per algorithm (the whole forward). "isa": the instructions
// oneDNN runs on (DNNL_MAX_CPU_ISA=AVX2 runs the AVX2 plan on an AVX-512 CPU).
//
//   build/ddim_fused_layers --pixels MODEL_FILE [--count 64] [--steps 20] [--guidance 3]
//
// instead compares the pixels of 20-step samples of a model file (a class model: classes 0, 1, ...
// in turn, with guidance) across networks: fused Winograd, fused direct and fused bfloat16 against
// the eager network, and Winograd against direct. One JSON line per pair: max and mean |difference|.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "config.h"
#include "fused_unet.h"
#include "model_file.h"
#include "sampling.h"

namespace {

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "ddim_fused_layers: %s\nusage: ddim_fused_layers [--config reference|fashion] [--batch N] [--runs N] "
               "[--threads N] [--algorithms direct,winograd,winograd-norms,fastest] [--precision fp32|bf16]\n"
               "       ddim_fused_layers --pixels MODEL_FILE [--count N] [--steps N] [--guidance W]\n",
               problem.c_str());
  std::exit(2);
}

// The --pixels comparison.
int compare_pixels(const std::string& path, int64_t count, int64_t steps, double guidance) {
  const auto model = ddim::load_model(path, torch::kCPU);
  ddim::SampleRequest request;
  request.count = count;
  request.steps = steps;
  request.seed = 2026;
  if (model->config().classes > 0) {
    for (int64_t i = 0; i < count; ++i) request.classes.push_back(i % model->config().classes);
    request.guidance = guidance;
  }
  const auto run = [&](ddim::NetworkKind network, ddim::Precision precision, ddim::ConvAlgorithm convolutions) {
    auto variant = request;
    variant.network = network;
    variant.precision = precision;
    variant.convolutions = convolutions;
    return ddim::sample(*model, variant);
  };
  using ddim::ConvAlgorithm;
  using ddim::NetworkKind;
  using ddim::Precision;
  // Fastest is Winograd wherever oneDNN has it (fused_unet.cpp), so one run serves both rows.
  const auto eager = run(NetworkKind::Eager, Precision::Float32, ConvAlgorithm::Fastest);
  const auto direct = run(NetworkKind::Fused, Precision::Float32, ConvAlgorithm::Direct);
  const auto fastest = run(NetworkKind::Fused, Precision::Float32, ConvAlgorithm::Fastest);
  const auto print = [&](const char* a, const char* b, const torch::Tensor& x, const torch::Tensor& y) {
    const auto difference = (x - y).abs();
    std::printf("{\"model\": \"%s\", \"isa\": \"%s\", \"count\": %lld, \"steps\": %lld, \"guidance\": %g, "
                "\"network\": \"%s\", \"against\": \"%s\", \"max_abs\": %.3g, \"mean_abs\": %.3g}\n",
                path.c_str(), ddim::fused_instruction_set().c_str(), static_cast<long long>(count), static_cast<long long>(steps), request.guidance, a, b,
                difference.max().item<double>(), difference.mean().item<double>());
  };
  print("fused (default: Winograd)", "eager", fastest, eager);
  print("fused direct", "eager", direct, eager);
  print("fused (default: Winograd)", "fused direct", fastest, direct);
  if (ddim::fused_bfloat16_native()) {
    print("fused bfloat16", "fused float32 (default)", run(NetworkKind::Fused, Precision::BFloat16, ConvAlgorithm::Fastest),
          fastest);
    print("eager bfloat16", "eager", run(NetworkKind::Eager, Precision::BFloat16, ConvAlgorithm::Fastest), eager);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_name = "reference", algorithms = "direct,winograd", precision = "fp32", pixels;
  int64_t batch = 16, count = 64, steps = 20;
  double guidance = 3;
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
    else if (flag == "--pixels") pixels = value;
    else if (flag == "--count") count = std::atoll(value.c_str());
    else if (flag == "--steps") steps = std::atoll(value.c_str());
    else if (flag == "--guidance") guidance = std::atof(value.c_str());
    else usage("unknown option " + flag);
  }
  if (batch < 1 || batch > 4096 || runs < 1 || runs > 1000) usage("--batch must be 1..4096 and --runs 1..1000");
  if (precision != "fp32" && precision != "bf16") usage("--precision must be fp32 or bf16");
  at::set_num_threads(threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()));  // as ddim4j does
  if (!pixels.empty()) return compare_pixels(pixels, count, steps, guidance);
  ddim::ModelConfig config;  // the reference: 3x64x64, widths 32-64-96-128
  if (config_name == "fashion") {  // the shipped models' architecture: 1x32x32, widths 32-64-96
    config.channels = 1;
    config.image_size = 32;
    config.widths = {32, 64, 96};
  } else if (config_name != "reference") {
    usage("--config must be reference or fashion");
  }
  const std::string isa = ddim::fused_instruction_set();  // DNNL_MAX_CPU_ISA=AVX2 times the AVX2 plan on an AVX-512 CPU
  std::stringstream list(algorithms);
  for (std::string name; std::getline(list, name, ',');) {
    ddim::FusedOptions options;
    options.dtype = precision == "bf16" ? torch::kBFloat16 : torch::kFloat;
    if (name == "direct") options.convolutions = ddim::ConvAlgorithm::Direct;
    else if (name == "winograd") options.convolutions = ddim::ConvAlgorithm::Winograd;
    else if (name == "winograd-norms") {  // Winograd with the BatchNorm passes kept (not folded into conv_a)
      options.convolutions = ddim::ConvAlgorithm::Winograd;
      options.fold_norms = false;
    }
    else if (name == "fastest") options.convolutions = ddim::ConvAlgorithm::Fastest;
    else usage("unknown algorithm " + name);
    ddim::FusedUNet plan(config, batch, options);
    // The whole forward as sampling calls it (embeddings, input and output conversions included).
    const auto noisy = torch::randn({batch, config.channels, config.image_size, config.image_size});
    const auto variances = torch::rand({batch});
    double forward_ms = 1e300;
    for (int run = 0; run <= runs; ++run) {
      const auto start = std::chrono::steady_clock::now();
      plan.forward(noisy, variances);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (run > 0) forward_ms = std::min(forward_ms, ms);
    }
    double total_ms = 0, total_flops = 0, in_forward_ms = 0;
    for (const auto& step : plan.profile(runs)) {
      total_ms += step.milliseconds;
      in_forward_ms += step.milliseconds_in_forward;
      total_flops += step.flops;
      std::printf("{\"config\": \"%s\", \"isa\": \"%s\", \"batch\": %lld, \"precision\": \"%s\", \"algorithm\": \"%s\", "
                  "\"layer\": \"%s\", \"implementation\": \"%s\", \"flops\": %.0f, \"ms\": %.4f, \"ms_in_forward\": %.4f, "
                  "\"gflops\": %.2f}\n",
                  config_name.c_str(), isa.c_str(), static_cast<long long>(batch), precision.c_str(), name.c_str(), step.layer.c_str(),
                  step.implementation.c_str(), step.flops, step.milliseconds, step.milliseconds_in_forward,
                  step.flops > 0 ? step.flops / step.milliseconds / 1e6 : 0.0);
    }
    std::printf("{\"config\": \"%s\", \"isa\": \"%s\", \"batch\": %lld, \"precision\": \"%s\", \"algorithm\": \"%s\", "
                "\"layer\": \"total\", \"layout\": \"%s\", \"joins_in_place\": %s, \"threads\": %d, \"flops\": %.0f, "
                "\"ms\": %.3f, \"gflops\": %.2f, \"in_forward_ms\": %.3f, \"forward_ms\": %.3f}\n",
                config_name.c_str(), isa.c_str(), static_cast<long long>(batch), precision.c_str(), name.c_str(),
                plan.activation_layout(), plan.joins_in_place() ? "true" : "false", at::get_num_threads(), total_flops,
                total_ms, total_flops / total_ms / 1e6, in_forward_ms, forward_ms);
    std::fflush(stdout);
  }
  return 0;
}
