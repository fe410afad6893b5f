#pragma once
// The backends' tuning switches, read from the environment. Callers keep the value in a static:
// a switch is read once per process.
#include <cstdlib>
#include <cstring>

namespace kiln::env {

// True when variable `name` is set to "0" (a feature that is on unless switched off).
inline bool off(const char* name) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, "0") == 0;
}

// Variable `name` as a number, or `fallback` when it is unset.
inline double number(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : fallback;
}

}  // namespace kiln::env
