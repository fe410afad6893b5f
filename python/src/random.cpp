// kiln.random: counter-based random numbers (kiln/random.h). Functions take an optional key;
// without one they draw from the global sequence that seed() resets.
#include "common.h"

namespace kiln_py {

using kiln::array;
using kiln::Dtype;

namespace {

bool is_number(nb::handle h) { return PyLong_Check(h.ptr()) || PyFloat_Check(h.ptr()); }

const std::vector<int64_t> kScalar;

}  // namespace

void init_random(nb::module_& parent) {
  nb::module_ m = parent.def_submodule("random", "Random numbers from keys, in the manner of JAX and MLX.");
  m.def("seed", &kiln::random::seed, "seed"_a, "Re-seeds the global key sequence.");
  m.def("key", &kiln::random::key, "seed"_a, "The key (uint32, shape (2,)) of a 64-bit seed.");
  m.def(
      "split",
      [](const ArrayLike& key, int num, StreamOrDevice s) { return kiln::random::split(to_array(key), num, s); },
      "key"_a, "num"_a = 2, nb::kw_only(), "stream"_a = nb::none(),
      "num new keys from key, as rows of a (num, 2) array.");
  m.def(
      "bits",
      [](const ShapeArg& shape, int width, std::optional<ArrayLike> key, StreamOrDevice s) {
        return kiln::random::bits(to_shape(shape), width, to_array(key), s);
      },
      "shape"_a = kScalar, "width"_a = 4, "key"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Raw random bits: unsigned integers of width bytes (1, 2, 4 or 8).");
  m.def(
      "uniform",
      [](const ArrayLike& low, const ArrayLike& high, const ShapeArg& shape, Dtype dtype, std::optional<ArrayLike> key,
         StreamOrDevice s) {
        if (is_number(low.obj) && is_number(high.obj)) {
          return kiln::random::uniform(nb::cast<double>(low.obj), nb::cast<double>(high.obj), to_shape(shape), dtype,
                                       to_array(key), s);
        }
        return kiln::random::uniform(to_array(low), to_array(high), to_shape(shape), dtype, to_array(key), s);
      },
      "low"_a = 0.0, "high"_a = 1.0, "shape"_a = kScalar, "dtype"_a = kiln::float32, "key"_a = nb::none(),
      nb::kw_only(), "stream"_a = nb::none(), "Uniform values in [low, high) (the bounds broadcast to shape).");
  m.def(
      "normal",
      [](const ShapeArg& shape, Dtype dtype, double loc, double scale, std::optional<ArrayLike> key, StreamOrDevice s) {
        return kiln::random::normal(to_shape(shape), dtype, loc, scale, to_array(key), s);
      },
      "shape"_a = kScalar, "dtype"_a = kiln::float32, "loc"_a = 0.0, "scale"_a = 1.0, "key"_a = nb::none(),
      nb::kw_only(), "stream"_a = nb::none(), "Normal values loc + scale * z.");
  m.def(
      "randint",
      [](const ArrayLike& low, const ArrayLike& high, const ShapeArg& shape, Dtype dtype, std::optional<ArrayLike> key,
         StreamOrDevice s) {
        if (PyLong_Check(low.obj.ptr()) && PyLong_Check(high.obj.ptr())) {
          return kiln::random::randint(nb::cast<int64_t>(low.obj), nb::cast<int64_t>(high.obj), to_shape(shape), dtype,
                                       to_array(key), s);
        }
        return kiln::random::randint(to_array(low), to_array(high), to_shape(shape), dtype, to_array(key), s);
      },
      "low"_a, "high"_a, "shape"_a = kScalar, "dtype"_a = kiln::int32, "key"_a = nb::none(), nb::kw_only(),
      "stream"_a = nb::none(), "Integers in [low, high) of an integer dtype.");
  m.def(
      "bernoulli",
      [](const ArrayLike& p, std::optional<ShapeArg> shape, std::optional<ArrayLike> key, StreamOrDevice s) {
        if (is_number(p.obj)) {
          return kiln::random::bernoulli(nb::cast<double>(p.obj), shape ? to_shape(*shape) : kiln::Shape{},
                                         to_array(key), s);
        }
        std::optional<kiln::Shape> sh;
        if (shape) sh = to_shape(*shape);
        return kiln::random::bernoulli(to_array(p), sh, to_array(key), s);
      },
      "p"_a = 0.5, "shape"_a = nb::none(), "key"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "bool values that are true with probability p (shape defaults to p's).");
  m.def(
      "truncated_normal",
      [](const ArrayLike& lower, const ArrayLike& upper, const ShapeArg& shape, Dtype dtype,
         std::optional<ArrayLike> key, StreamOrDevice s) {
        if (is_number(lower.obj) && is_number(upper.obj)) {
          return kiln::random::truncated_normal(nb::cast<double>(lower.obj), nb::cast<double>(upper.obj),
                                                to_shape(shape), dtype, to_array(key), s);
        }
        return kiln::random::truncated_normal(to_array(lower), to_array(upper), to_shape(shape), dtype, to_array(key),
                                              s);
      },
      "lower"_a, "upper"_a, "shape"_a = kScalar, "dtype"_a = kiln::float32, "key"_a = nb::none(), nb::kw_only(),
      "stream"_a = nb::none(), "Standard normal values restricted to [lower, upper].");
  m.def(
      "gumbel",
      [](const ShapeArg& shape, Dtype dtype, std::optional<ArrayLike> key, StreamOrDevice s) {
        return kiln::random::gumbel(to_shape(shape), dtype, to_array(key), s);
      },
      "shape"_a = kScalar, "dtype"_a = kiln::float32, "key"_a = nb::none(), nb::kw_only(), "stream"_a = nb::none(),
      "Standard Gumbel values.");
  m.def(
      "categorical",
      [](const ArrayLike& logits, int axis, std::optional<int> num_samples, std::optional<ArrayLike> key,
         StreamOrDevice s) {
        return kiln::random::categorical(to_array(logits), axis, num_samples, to_array(key), s);
      },
      "logits"_a, "axis"_a = -1, "num_samples"_a = nb::none(), "key"_a = nb::none(), nb::kw_only(),
      "stream"_a = nb::none(),
      "Category indices (uint32) sampled from unnormalized log-probabilities along axis.");
}

}  // namespace kiln_py
