// libFuzzer target for the model loader: any bytes, loaded as a model file through the C ABI, give
// DDIM_OK or a clean error status; never a crash, a C++ exception across the ABI, a hang or
// unbounded memory (run with -rss_limit_mb and -timeout; scripts/sanitize.sh does).
//
// The regression corpus beside this file (native/fuzz/corpus) holds a valid model and checkpoint
// to mutate from and every hostile file found so far; CI replays it on every change.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "ddim.h"

namespace {

// One in-memory file reused for every input: the loader opens it by path like any model file.
const std::string& input_path() {
  static const std::string path = [] {
    const int fd = ::memfd_create("ddim-fuzz-input", 0);
    if (fd < 0) std::abort();
    return "/proc/self/fd/" + std::to_string(fd);
  }();
  return path;
}

int input_fd() { return std::stoi(input_path().substr(std::string("/proc/self/fd/").size())); }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ddim_set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = input_fd();
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  ddim_model* model = nullptr;
  const ddim_status status = ddim_model_load(input_path().c_str(), DDIM_DEVICE_CPU, &model);
  const bool consistent = status == DDIM_OK ? model != nullptr : model == nullptr && ddim_last_error()[0] != '\0';
  if (!consistent || status == DDIM_ERR_INTERNAL) std::abort();  // INTERNAL would mean an unexpected libtorch error
  ddim_model_free(model);
  return 0;
}
