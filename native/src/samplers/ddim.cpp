#include "samplers/ddim.h"

namespace ddim {

std::vector<double> DdimSampler::times() const {
  std::vector<double> times(steps_ + 1);
  for (int64_t k = 0; k <= steps_; ++k) times[k] = 1.0 - static_cast<double>(k) / static_cast<double>(steps_);
  return times;
}

}  // namespace ddim
