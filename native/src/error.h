// The one exception type the core throws on purpose. The C boundary (c_api.cpp) turns it, and
// anything libtorch throws, into a ddim_status and a short message.
#pragma once

#include <stdexcept>
#include <string>

#include "ddim.h"

namespace ddim {

class Error : public std::runtime_error {
 public:
  Error(ddim_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  ddim_status status() const { return status_; }

 private:
  ddim_status status_;
};

[[noreturn]] inline void fail(ddim_status status, const std::string& message) { throw Error(status, message); }

inline void require(bool condition, ddim_status status, const std::string& message) {
  if (!condition) fail(status, message);
}

}  // namespace ddim
