#pragma once

namespace ddim {
inline constexpr const char* kLibraryVersion = "0.1.0";
}
