#include "samplers/sampler.h"

#include "error.h"
#include "samplers/ddim_sampler.h"
#include "samplers/ddpm_sampler.h"
#include "samplers/dpm_solver_sampler.h"

namespace ddim {

std::unique_ptr<Sampler> make_sampler(SamplerKind kind, double eta) {
  switch (kind) {
    case SamplerKind::Ddim: return std::make_unique<DdimSampler>(eta);
    case SamplerKind::Ddpm: return std::make_unique<DdpmSampler>();
    case SamplerKind::DpmSolverPP2M: return std::make_unique<DpmSolverPP2MSampler>();
  }
  fail(Status::InvalidArgument, "unknown sampler");
}

std::vector<double> sampling_times(int64_t steps) {
  std::vector<double> times(steps + 1);
  for (int64_t k = 0; k <= steps; ++k) times[k] = 1.0 - static_cast<double>(k) / static_cast<double>(steps);
  return times;
}

}  // namespace ddim
