#pragma once

namespace kiln {
inline constexpr const char* kVersion = "0.1.0";
// Build options, filled in by the build system.
bool built_with_cuda();
const char* build_type();
}  // namespace kiln
