#include "processors.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

namespace ddim {
namespace {

// CPUs' worth of time the cgroup may use per period, or 0 when it sets no quota. cgroup v2 (cpu.max:
// "max 100000" or "150000 100000" in the process's own cgroup), else v1 (cpu.cfs_quota_us, -1: none).
double cgroup_cpu_quota() {
  std::string own_group;
  std::ifstream groups("/proc/self/cgroup");
  for (std::string line; std::getline(groups, line);) {
    if (line.rfind("0::", 0) == 0) own_group = line.substr(3);
  }
  for (const std::string& path : {"/sys/fs/cgroup" + own_group + "/cpu.max", std::string("/sys/fs/cgroup/cpu.max")}) {
    std::ifstream max(path);
    std::string quota;
    double period = 0;
    if (max >> quota >> period) {
      if (quota == "max" || period <= 0) return 0;
      try {
        return std::stod(quota) / period;
      } catch (...) {
        return 0;
      }
    }
  }
  std::ifstream quota_file("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  std::ifstream period_file("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double quota = 0, period = 0;
  if (quota_file >> quota && period_file >> period && quota > 0 && period > 0) return quota / period;
  return 0;
}

}  // namespace

int32_t available_threads() {
  int count = 0;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) count = CPU_COUNT(&cpus);
  if (count <= 0) count = static_cast<int>(std::thread::hardware_concurrency());
  const double quota = cgroup_cpu_quota();
  if (quota > 0) count = std::min(count, static_cast<int>(std::ceil(quota)));
  return std::max(1, count);
}

}  // namespace ddim
