// Shared helpers for the tests: the devices to run on, fresh random inputs, a float64 view of
// any array, and dtype-aware comparison against a reference.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::test {

// The CPU always; the GPU when one is present. Tests loop over these so that every check runs
// on both backends where it can.
inline std::vector<Device> devices() {
  std::vector<Device> d{Device(Device::cpu)};
  if (gpu_available()) d.emplace_back(Device::gpu);
  return d;
}

inline std::string device_name(const Device& d) { return d.type == Device::cpu ? "cpu" : "gpu"; }

// Prints a visible note once per test when no GPU is present, so skipped GPU coverage shows.
inline void note_gpu_skip() {
  if (!gpu_available()) std::cout << "[   SKIP   ] GPU part: no GPU present\n";
}

// A fresh generator per call site; seeded from std::random_device so each run sees new data.
inline std::mt19937_64& rng() {
  static std::mt19937_64 gen{std::random_device{}()};
  return gen;
}

inline std::vector<double> uniform_values(int64_t n, double lo, double hi) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng());
  return v;
}

inline std::vector<double> int_values(int64_t n, int64_t lo, int64_t hi) {
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<double>(dist(rng()));
  return v;
}

// An array of `dtype` holding `values` (converted), made on the host.
inline array from_doubles(const std::vector<double>& values, const Shape& shape, Dtype dtype) {
  return astype(array(values, shape), dtype, Device(Device::cpu));
}

// Random array of dtype and shape: floats uniform in [lo, hi), integers uniform in [lo, hi],
// bools fair coin flips. Returns the array and its exact values as doubles.
inline std::pair<array, std::vector<double>> random_array(const Shape& shape, Dtype dtype, double lo = -2,
                                                          double hi = 2) {
  int64_t n = shape_size(shape);
  std::vector<double> v;
  if (dtype == bool_) {
    v = int_values(n, 0, 1);
  } else if (is_integer(dtype)) {
    int64_t l = static_cast<int64_t>(std::ceil(lo)), h = static_cast<int64_t>(std::floor(hi));
    if (is_unsigned(dtype)) l = std::max<int64_t>(l, 0);
    v = int_values(n, l, h);
  } else {
    v = uniform_values(n, lo, hi);
  }
  array a = from_doubles(v, shape, dtype);
  // The exact values after rounding to dtype are what a reference must see.
  std::vector<double> exact = astype(a, float64, Device(Device::cpu)).to_vector<double>();
  return {a, exact};
}

// The values of any real array as doubles (row-major), read through the CPU.
inline std::vector<double> to_doubles(array a) { return astype(a, float64, Device(Device::cpu)).to_vector<double>(); }

// ‖out − ref‖ / ‖ref‖ with NaNs required in the same places (a NaN where the reference has a
// number fails). Infinities must match exactly and are left out of the norms.
inline double relative_error(const std::vector<double>& out, const std::vector<double>& ref) {
  if (out.size() != ref.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    bool on = std::isnan(out[i]), rn = std::isnan(ref[i]);
    if (on != rn) return INFINITY;
    if (on) continue;
    if (std::isinf(ref[i]) || std::isinf(out[i])) {
      if (out[i] != ref[i]) return INFINITY;
      continue;
    }
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  if (den == 0) return std::sqrt(num);
  return std::sqrt(num / den);
}

// Tolerances on the relative error, by the dtype the result is computed in.
inline double tolerance(Dtype dtype) {
  switch (dtype) {
    case float64: return 1e-12;
    case float32:
    case complex64: return 1e-5;
    case float16: return 2e-3;
    case bfloat16: return 1.2e-2;
    default: return 0;  // integers and bools are exact
  }
}

#define KILN_EXPECT_CLOSE(out, ref, dtype, what)                                              \
  do {                                                                                        \
    double kiln_err_ = ::kiln::test::relative_error(out, ref);                                \
    EXPECT_LE(kiln_err_, ::kiln::test::tolerance(dtype)) << what << " (dtype " << (dtype) << ")"; \
  } while (0)

// Expects `stmt` to throw E with a message containing `needle` (e.g. the op's name).
#define KILN_EXPECT_THROW_MSG(stmt, E, needle)                                                   \
  do {                                                                                           \
    try {                                                                                        \
      stmt;                                                                                      \
      ADD_FAILURE() << "expected " #E " from " #stmt;                                            \
    } catch (const E& e) {                                                                       \
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what(); \
    }                                                                                            \
  } while (0)

inline const std::vector<Dtype>& float_dtypes() {
  static std::vector<Dtype> d{float16, bfloat16, float32, float64};
  return d;
}
inline const std::vector<Dtype>& int_dtypes() {
  static std::vector<Dtype> d{uint8, uint16, uint32, uint64, int8, int16, int32, int64};
  return d;
}
inline const std::vector<Dtype>& all_dtypes() {
  static std::vector<Dtype> d{bool_, uint8, uint16, uint32, uint64, int8, int16, int32, int64,
                              float16, bfloat16, float32, float64, complex64};
  return d;
}

}  // namespace kiln::test
