// How many CPU threads this process may use: the one count behind the default thread count and the
// thread limit, on every entry point (the C ABI, the Java API, the CLI).
#pragma once

#include <cstdint>

namespace ddim {

// The CPUs in the process's affinity mask, capped by its cgroup's CPU quota rounded up (what a
// container's --cpus sets), as the JVM's Runtime.availableProcessors() counts them. At least 1.
int32_t available_threads();

}  // namespace ddim
