// Tests of the indexing operations: slice_update, take, take_along_axis, put_along_axis, gather
// and scatter, each against a reference written here with loops over doubles.
#include <algorithm>
#include <limits>

#include "tests/test_utils.h"

using namespace kiln;

namespace {

using Idx = std::vector<int64_t>;

Idx unravel(int64_t flat, const Shape& shape) {
  Idx idx(shape.size());
  for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

int64_t ravel(const Idx& idx, const Shape& shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + idx[d];
  return flat;
}

// Position in an array of `shape` that broadcasting maps index `idx` (of a shape with at least
// as many axes) to.
int64_t ravel_broadcast(const Idx& idx, const Shape& shape) {
  size_t lead = idx.size() - shape.size();
  Idx j(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) j[d] = shape[d] == 1 ? 0 : idx[lead + d];
  return ravel(j, shape);
}

template <class F>
std::vector<double> build(const Shape& shape, F f) {
  std::vector<double> v(static_cast<size_t>(shape_size(shape)));
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) v[i] = f(unravel(i, shape));
  return v;
}

struct Input {
  array a;
  std::vector<double> v;  // its values, row-major
};

// A fresh random input in one of several layouts: 0 row-contiguous, 1 a transposed view, 2 a
// strided slice, 3 broadcast along the first axis (falling back to row-contiguous where the
// layout does not fit the shape).
Input make_input(const Shape& shape, Dtype dt, int layout, double lo = -3, double hi = 3) {
  array a = test::random_array(shape, dt, lo, hi).first;
  if (layout == 1 && shape.size() >= 2) {
    a = transpose(test::random_array(Shape(shape.rbegin(), shape.rend()), dt, lo, hi).first);
  } else if (layout == 2 && !shape.empty()) {
    Shape wide = shape;
    wide.back() = 2 * shape.back() + 1;
    Shape start(shape.size(), 0), step(shape.size(), 1);
    start.back() = 1;
    step.back() = 2;
    a = slice(test::random_array(wide, dt, lo, hi).first, start, wide, step);
  } else if (layout == 3 && !shape.empty()) {
    Shape one = shape;
    one[0] = 1;
    a = broadcast_to(test::random_array(one, dt, lo, hi).first, shape);
  }
  return {a, test::to_doubles(a)};
}

// Index values as a lazy array of dtype dt (so the front end cannot check them), transposed
// when `transposed` and 2-d.
Input make_indices(const std::vector<double>& values, const Shape& shape, Dtype dt, bool transposed = false) {
  if (transposed && shape.size() == 2) {
    // Lay the values out transposed, then view them back in the asked shape.
    std::vector<double> t(values.size());
    for (int64_t r = 0; r < shape[0]; ++r) {
      for (int64_t c = 0; c < shape[1]; ++c) t[c * shape[0] + r] = values[r * shape[1] + c];
    }
    array a = transpose(test::from_doubles(t, {shape[1], shape[0]}, dt));
    return {a, values};
  }
  return {test::from_doubles(values, shape, dt), values};
}

std::vector<double> random_ints(int64_t n, int64_t lo, int64_t hi) { return test::int_values(n, lo, hi); }

void expect_values(array out, const Shape& shape, const std::vector<double>& ref, const std::string& what) {
  ASSERT_EQ(out.shape(), shape) << what;
  auto v = test::to_doubles(out);
  ASSERT_EQ(v.size(), ref.size()) << what;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!(v[i] == ref[i] || (std::isnan(v[i]) && std::isnan(ref[i])))) {
      ADD_FAILURE() << what << ": element " << i << " is " << v[i] << ", expected " << ref[i];
      return;
    }
  }
}

std::string label(const Device& dev, Dtype dt, const std::string& more = "") {
  std::ostringstream os;
  os << test::device_name(dev) << " " << dt << " " << more;
  return os.str();
}

int64_t wrap(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

const std::vector<Dtype>& index_dtypes() {
  static std::vector<Dtype> d{int8, uint8, int16, uint16, int32, uint32, int64, uint64};
  return d;
}

// Python's slice.indices followed by range(): the positions a slice visits along an axis.
Idx py_range(int64_t start, int64_t stop, int64_t step, int64_t n) {
  auto adjust = [&](int64_t v) {
    if (v < 0) {
      v += n;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= n) {
      v = step < 0 ? n - 1 : n;
    }
    return v;
  };
  int64_t b = adjust(start), e = adjust(stop);
  Idx r;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) r.push_back(i);
  return r;
}

}  // namespace

TEST(Index, SliceUpdate) {
  test::note_gpu_skip();
  struct Case {
    Shape start, stop, step;
  };
  std::vector<Case> cases = {{{1, 0}, {4, 6}, {1, 2}},     {{4, -1}, {0, -7}, {-1, -1}}, {{-2, 1}, {100, 5}, {1, 3}},
                             {{2}, {4}, {}},                {{-100, 5}, {100, -100}, {2, -2}},
                             {{0, 0}, {5, 6}, {2, -2}}};  // the last region is empty
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int layout = 0; layout < 4; ++layout) {
        Input src = make_input({5, 6}, dt, layout);
        for (auto& c : cases) {
          Shape step = c.step.empty() ? Shape(c.start.size(), 1) : c.step;
          Idx rows = py_range(c.start[0], c.stop[0], step[0], 5);
          Idx cols = c.start.size() > 1 ? py_range(c.start[1], c.stop[1], step[1], 6) : py_range(0, 6, 1, 6);
          Shape region{static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols.size())};
          for (Shape us : std::vector<Shape>{region, {1, region[1]}, {}, {region[0], 1}}) {
            Input upd = make_input(us, dt, (layout + 1) % 4);
            std::vector<double> ref = src.v;
            for (size_t r = 0; r < rows.size(); ++r) {
              for (size_t k = 0; k < cols.size(); ++k) {
                ref[rows[r] * 6 + cols[k]] = upd.v[ravel_broadcast({static_cast<int64_t>(r), static_cast<int64_t>(k)}, us)];
              }
            }
            expect_values(slice_update(src.a, upd.a, c.start, c.stop, c.step, dev), {5, 6}, ref,
                          label(dev, dt, "update shape rank " + std::to_string(us.size())));
          }
        }
      }
    }
    // The update is cast to src's dtype; a 0-d src is replaced whole.
    auto [f, fv] = test::random_array({3, 4}, float32);
    auto [u, uv] = test::random_array({3, 2}, int16);
    std::vector<double> ref = fv;
    for (int r = 0; r < 3; ++r) {
      for (int k = 0; k < 2; ++k) ref[r * 4 + 1 + 2 * k] = uv[r * 2 + k];
    }
    array out = slice_update(f, u, {0, 1}, {3, 4}, {1, 2}, dev);
    EXPECT_EQ(out.dtype(), float32);
    expect_values(out, {3, 4}, ref, label(dev, float32, "cast"));
    expect_values(slice_update(array(1.f), array(5.f), {}, {}, {}, dev), {}, {5}, label(dev, float32, "0-d"));
  }
  array a = zeros({5, 6});
  KILN_EXPECT_THROW_MSG(slice_update(a, zeros({2}), {0, 0}, {2}, {}), ValueError, "[slice_update]");
  KILN_EXPECT_THROW_MSG(slice_update(a, zeros({2}), {0, 0, 0}, {2, 2, 2}, {}), ValueError, "[slice_update]");
  KILN_EXPECT_THROW_MSG(slice_update(a, zeros({2}), {0}, {2}, {0}), ValueError, "[slice_update]");
  KILN_EXPECT_THROW_MSG(slice_update(a, zeros({3, 6}), {0}, {2}, {}), ValueError, "[slice_update]");
  KILN_EXPECT_THROW_MSG(slice_update(a, zeros({1, 2, 6}), {0}, {2}, {}), ValueError, "[slice_update]");
}

// A KV cache's update: whole head rows (a multiple of 16 bytes) from a transposed view into a
// slice of positions, which the GPU moves 16 bytes at a time; concatenate shares that copy.
TEST(Index, SliceUpdateWholeRows) {
  test::note_gpu_skip();
  for (auto dev : test::devices()) {
    for (Dtype dt : {bfloat16, float32}) {
      const int64_t B = 2, H = 3, L = 11, T = 4, D = 32, at = 5;
      auto [cache, cv] = test::random_array({B, H, L, D}, dt);
      auto [kv, kvv] = test::random_array({B, T, H, D}, dt);
      array upd = transpose(kv, {0, 2, 1, 3});  // (B, H, T, D), rows strided
      std::vector<double> ref = cv;
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t h = 0; h < H; ++h) {
          for (int64_t t = 0; t < T; ++t) {
            for (int64_t d = 0; d < D; ++d) {
              ref[((b * H + h) * L + at + t) * D + d] = kvv[((b * T + t) * H + h) * D + d];
            }
          }
        }
      }
      array out = slice_update(cache, upd, {0, 0, at, 0}, {B, H, at + T, D}, {}, dev);
      expect_values(out, {B, H, L, D}, ref, label(dev, dt, "whole rows"));
      array cat = concatenate({cache, upd}, 2, dev);
      auto want = build({B, H, L + T, D}, [&](Idx i) {
        return i[2] < L ? cv[((i[0] * H + i[1]) * L + i[2]) * D + i[3]]
                        : kvv[((i[0] * T + (i[2] - L)) * H + i[1]) * D + i[3]];
      });
      expect_values(cat, {B, H, L + T, D}, want, label(dev, dt, "concatenate whole rows"));
    }
  }
}

TEST(Index, Take) {
  int counter = 0;
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int layout = 0; layout < 4; ++layout) {
        Input a = make_input({4, 5, 3}, dt, layout);
        const Shape as{4, 5, 3};
        for (Shape is : std::vector<Shape>{{}, {6}, {2, 3}}) {
          for (std::optional<int> axis : {std::optional<int>{}, std::optional<int>{0}, std::optional<int>{1},
                                          std::optional<int>{2}, std::optional<int>{-1}}) {
            Dtype idt = index_dtypes()[counter++ % index_dtypes().size()];
            int ax = axis ? (*axis < 0 ? *axis + 3 : *axis) : 0;
            int64_t n = axis ? as[ax] : 60;
            int64_t lo = is_unsigned(idt) ? 0 : -n;
            Input idx = make_indices(random_ints(shape_size(is), lo, n - 1), is, idt, counter % 2 == 0);
            std::string what = label(dev, dt, std::string("index ") + dtype_name(idt));
            array out = take(a.a, idx.a, axis, dev);
            EXPECT_EQ(out.dtype(), dt);
            if (!axis) {
              expect_values(out, is, build(is, [&](const Idx& i) { return a.v[wrap(static_cast<int64_t>(idx.v[ravel(i, is)]), 60)]; }), what);
              continue;
            }
            Shape os(as.begin(), as.begin() + ax);
            os.insert(os.end(), is.begin(), is.end());
            os.insert(os.end(), as.begin() + ax + 1, as.end());
            auto ref = build(os, [&](const Idx& i) {
              Idx ii(i.begin() + ax, i.begin() + ax + is.size());
              Idx j(i.begin(), i.begin() + ax);
              j.push_back(wrap(static_cast<int64_t>(idx.v[ravel(ii, is)]), n));
              j.insert(j.end(), i.begin() + ax + is.size(), i.end());
              return a.v[ravel(j, as)];
            });
            expect_values(out, os, ref, what + " axis " + std::to_string(ax));
          }
        }
      }
    }
    // Whole rows of a 16-byte multiple (an embedding lookup): the GPU copies them as vectors.
    for (Dtype dt : {float32, bfloat16, int8, float64}) {
      Input w = make_input({10, 48}, dt, 0);
      std::vector<double> ids = random_ints(7, -10, 9);
      Input idx = make_indices(ids, {7}, int32);
      std::vector<double> want;
      for (double id : ids) {
        for (int64_t d = 0; d < 48; ++d) want.push_back(w.v[wrap(static_cast<int64_t>(id), 10) * 48 + d]);
      }
      expect_values(take(w.a, idx.a, 0, dev), {7, 48}, want, label(dev, dt, "rows"));
    }
    // Lazy out-of-range indices clamp, the same on every device.
    auto [v, vv] = test::random_array({5}, float32);
    Input idx = make_indices({7, -9, 2, -1}, {4}, int32);
    expect_values(take(v, idx.a, 0, dev), {4}, {vv[4], vv[0], vv[2], vv[4]}, label(dev, float32, "clamp"));
    // Empty indices and empty axes.
    expect_values(take(v, zeros({0}, int32), 0, dev), {0}, {}, label(dev, float32, "no indices"));
    expect_values(take(zeros({0, 3}), zeros({0}, int64), 0, dev), {0, 3}, {}, label(dev, float32, "empty axis"));
    expect_values(take(zeros({2, 0}), array({1, 0}), 0, dev), {2, 0}, {}, label(dev, float32, "empty rows"));
  }
  array a = zeros({4, 5});
  // Indices evaluated on the host are checked.
  KILN_EXPECT_THROW_MSG(take(a, array({0, 5}), 1), IndexError, "[take] index 5 is out of bounds for axis 1 with size 5");
  KILN_EXPECT_THROW_MSG(take(a, array({-6}), -1), IndexError, "index -6 is out of bounds");
  KILN_EXPECT_THROW_MSG(take(a, array({20}), {}), IndexError, "[take]");
  KILN_EXPECT_THROW_MSG(take(a, array({uint64_t{1} << 63}, Shape{1}), 0), IndexError, "[take]");
  KILN_EXPECT_THROW_MSG(take(a, zeros({2}), 0), TypeError, "[take]");
  KILN_EXPECT_THROW_MSG(take(a, array({true}), 0), TypeError, "[take]");
  KILN_EXPECT_THROW_MSG(take(a, array({0}), 2), IndexError, "[take]");
  KILN_EXPECT_THROW_MSG(take(zeros({0, 3}), array({0}), 0), IndexError, "[take]");
  KILN_EXPECT_THROW_MSG(take(array(1.f), array({0}), 0), IndexError, "[take]");
}

TEST(Index, TakeAlongAxis) {
  struct Case {
    Shape a, idx;
    int axis;
  };
  std::vector<Case> cases = {{{4, 5}, {4, 3}, 1},       {{4, 5}, {6, 5}, 0},       {{4, 5}, {1, 3}, 1},
                             {{4, 5}, {4, 1}, -1},      {{1, 5}, {3, 2}, 1},       {{3, 4, 2}, {3, 2, 2}, 1},
                             {{3, 4, 2}, {3, 6, 1}, -2}, {{3, 4, 2}, {3, 4, 0}, 2}, {{5}, {7}, 0}};
  int counter = 0;
  for (auto dev : test::devices()) {
    for (Dtype dt : {bool_, uint8, int32, int64, float16, bfloat16, float32, complex64}) {
      for (int layout = 0; layout < 4; ++layout) {
        for (auto& c : cases) {
          Input a = make_input(c.a, dt, layout);
          int nd = static_cast<int>(c.a.size());
          int ax = c.axis < 0 ? c.axis + nd : c.axis;
          int64_t n = c.a[ax];
          Dtype idt = index_dtypes()[counter++ % index_dtypes().size()];
          Input idx = make_indices(random_ints(shape_size(c.idx), is_unsigned(idt) ? 0 : -n, n - 1), c.idx, idt,
                                   counter % 2 == 0);
          Shape os = c.idx;
          for (int d = 0; d < nd; ++d) {
            if (d != ax && c.a[d] != 1) os[d] = c.a[d];
          }
          auto ref = build(os, [&](const Idx& i) {
            Idx j(nd);
            for (int d = 0; d < nd; ++d) j[d] = c.a[d] == 1 ? 0 : i[d];
            j[ax] = wrap(static_cast<int64_t>(idx.v[ravel_broadcast(i, c.idx)]), n);
            return a.v[ravel(j, c.a)];
          });
          expect_values(take_along_axis(a.a, idx.a, c.axis, dev), os, ref,
                        label(dev, dt, std::string("index ") + dtype_name(idt)));
        }
      }
    }
    auto [v, vv] = test::random_array({2, 3}, int32);
    Input idx = make_indices({5, -7}, {2, 1}, int64);
    expect_values(take_along_axis(v, idx.a, 1, dev), {2, 1}, {vv[2], vv[3]}, label(dev, int32, "clamp"));
  }
  array a = zeros({4, 5});
  KILN_EXPECT_THROW_MSG(take_along_axis(a, array({5}, Shape{1, 1}), 1), IndexError, "[take_along_axis] index 5");
  KILN_EXPECT_THROW_MSG(take_along_axis(a, array({1}), 1), ValueError, "[take_along_axis]");
  KILN_EXPECT_THROW_MSG(take_along_axis(a, zeros({4, 2}), 1), TypeError, "[take_along_axis]");
  KILN_EXPECT_THROW_MSG(take_along_axis(a, zeros({3, 2}, int32), 1), ValueError, "[take_along_axis]");
  KILN_EXPECT_THROW_MSG(take_along_axis(a, zeros({4, 2}, int32), 2), IndexError, "[take_along_axis]");
}

TEST(Index, PutAlongAxis) {
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int layout = 0; layout < 4; ++layout) {
        Input a = make_input({4, 5}, dt, layout);
        for (int axis : {1, 0, -1}) {
          int ax = axis < 0 ? axis + 2 : axis;
          int64_t n = ax == 1 ? 5 : 4, k = 3;
          // Distinct indices along the axis (so the result does not depend on which duplicate wins),
          // some of them negative.
          Shape is = ax == 1 ? Shape{4, k} : Shape{k, 5};
          std::vector<double> iv(shape_size(is));
          for (int64_t line = 0; line < (ax == 1 ? 4 : 5); ++line) {
            Idx perm(n);
            for (int64_t t = 0; t < n; ++t) perm[t] = t;
            std::shuffle(perm.begin(), perm.end(), test::rng());
            for (int64_t t = 0; t < k; ++t) {
              int64_t val = perm[t] - (test::rng()() % 2 ? n : 0);
              iv[ax == 1 ? line * k + t : t * 5 + line] = static_cast<double>(val);
            }
          }
          Input idx = make_indices(iv, is, layout % 2 ? int64 : int16, layout == 2);
          for (Shape vs : std::vector<Shape>{is, {}, ax == 1 ? Shape{1, k} : Shape{k, 1}}) {
            Input vals = make_input(vs, dt, (layout + 1) % 4);
            std::vector<double> ref = a.v;
            for (int64_t p = 0; p < shape_size(is); ++p) {
              Idx i = unravel(p, is);
              Idx j = i;
              j[ax] = wrap(static_cast<int64_t>(iv[p]), n);
              ref[ravel(j, {4, 5})] = vals.v[ravel_broadcast(i, vs)];
            }
            expect_values(put_along_axis(a.a, idx.a, vals.a, axis, dev), {4, 5}, ref,
                          label(dev, dt, "axis " + std::to_string(axis)));
          }
        }
      }
    }
    // Repeated indices: the CPU keeps the last value, the GPU one of them.
    array out = put_along_axis(zeros({1, 3}), array({1, 1, 1}, Shape{1, 3}), array({3.f, 7.f, 9.f}, Shape{1, 3}), 1, dev);
    auto v = out.to_vector<float>();
    if (dev.type == Device::cpu) {
      EXPECT_EQ(v, (std::vector<float>{0, 9, 0}));
    } else {
      EXPECT_TRUE(v[1] == 3 || v[1] == 7 || v[1] == 9) << v[1];
    }
    // Lazy out-of-range indices are dropped.
    auto [b, bv] = test::random_array({2, 3}, float32);
    Input idx = make_indices({5, -4, 1, 2}, {2, 2}, int32);
    std::vector<double> ref = bv;
    ref[3 + 1] = 10;
    ref[3 + 2] = 11;
    expect_values(put_along_axis(b, idx.a, array({8.f, 9.f, 10.f, 11.f}, Shape{2, 2}), 1, dev), {2, 3}, ref,
                  label(dev, float32, "drop"));
  }
  array a = zeros({4, 5});
  KILN_EXPECT_THROW_MSG(put_along_axis(a, array({-6}, Shape{1, 1}), array(1.f), 1), IndexError,
                        "[put_along_axis] index -6");
  KILN_EXPECT_THROW_MSG(put_along_axis(a, zeros({4, 2}, int32), zeros({4, 3}), 1), ValueError, "[put_along_axis]");
  KILN_EXPECT_THROW_MSG(put_along_axis(a, zeros({4}, int32), zeros({4}), 1), ValueError, "[put_along_axis]");
  KILN_EXPECT_THROW_MSG(put_along_axis(a, zeros({4, 2}), zeros({4, 2}), 1), TypeError, "[put_along_axis]");
}

namespace {
// Reference gather: out[i, j] = a[start(i) + j], start from the (broadcast) index arrays.
std::vector<double> gather_ref(const Input& a, const Shape& as, const std::vector<Input>& idx,
                               const std::vector<Shape>& ishapes, const std::vector<int>& axes, const Shape& sizes,
                               Shape& out_shape) {
  Shape is;
  for (auto& s : ishapes) is = broadcast_shapes(is, s);
  out_shape = is;
  out_shape.insert(out_shape.end(), sizes.begin(), sizes.end());
  return build(out_shape, [&](const Idx& o) {
    Idx i(o.begin(), o.begin() + is.size());
    Idx j(o.begin() + is.size(), o.end());
    for (size_t k = 0; k < axes.size(); ++k) {
      int ax = axes[k] < 0 ? axes[k] + static_cast<int>(as.size()) : axes[k];
      j[ax] += wrap(static_cast<int64_t>(idx[k].v[ravel_broadcast(i, ishapes[k])]), as[ax]);
    }
    return a.v[ravel(j, as)];
  });
}
}  // namespace

TEST(Index, Gather) {
  const Shape as{5, 6, 4};
  int counter = 0;
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int layout = 0; layout < 4; ++layout) {
        Input a = make_input(as, dt, layout);
        struct Case {
          std::vector<int> axes;
          std::vector<Shape> ishapes;
          Shape sizes;
        };
        std::vector<Case> cases = {{{0, 2}, {{3, 1}, {1, 2}}, {2, 3, 1}},
                                   {{-2}, {{4}}, {5, 2, 4}},
                                   {{}, {}, {2, 2, 2}},
                                   {{2, 0, 1}, {{2, 3}, {3}, {1, 1}}, {1, 1, 1}},
                                   {{1}, {{0}}, {1, 1, 1}},
                                   {{0}, {{3}}, {0, 6, 4}}};
        for (auto& c : cases) {
          std::vector<Input> idx;
          std::vector<array> arrs;
          for (size_t k = 0; k < c.axes.size(); ++k) {
            int ax = c.axes[k] < 0 ? c.axes[k] + 3 : c.axes[k];
            int64_t hi = as[ax] - c.sizes[ax];
            Dtype idt = index_dtypes()[counter++ % index_dtypes().size()];
            std::vector<double> v = random_ints(shape_size(c.ishapes[k]), 0, hi);
            if (!is_unsigned(idt)) {
              for (auto& x : v) x -= test::rng()() % 2 ? static_cast<double>(as[ax]) : 0.0;
            }
            idx.push_back(make_indices(v, c.ishapes[k], idt, counter % 2 == 0));
            arrs.push_back(idx.back().a);
          }
          Shape os;
          auto ref = gather_ref(a, as, idx, c.ishapes, c.axes, c.sizes, os);
          expect_values(gather(a.a, arrs, c.axes, c.sizes, dev), os, ref, label(dev, dt, "gather"));
        }
      }
    }
    // Lazy out-of-range indices clamp to [0, n - slice size]; a 0-d array gathers itself.
    auto [v, vv] = test::random_array({6}, int64);
    Input idx = make_indices({7, -10, 5}, {3}, int32);
    expect_values(gather(v, {idx.a}, {0}, {2}, dev), {3, 2}, {vv[4], vv[5], vv[0], vv[1], vv[4], vv[5]},
                  label(dev, int64, "clamp"));
    expect_values(gather(array(3.f), {}, {}, {}, dev), {}, {3}, label(dev, float32, "0-d"));
  }
  array a = zeros({6, 4});
  array i = zeros({2}, int32);
  KILN_EXPECT_THROW_MSG(gather(a, {array({5})}, {0}, {2, 4}), IndexError,
                        "[gather] index 5 is out of bounds for axis 0 with size 6 and slice size 2");
  KILN_EXPECT_THROW_MSG(gather(a, {i, i}, {0}, {1, 1}), ValueError, "[gather]");
  KILN_EXPECT_THROW_MSG(gather(a, {i}, {0}, {1}), ValueError, "[gather]");
  KILN_EXPECT_THROW_MSG(gather(a, {i}, {0}, {1, 5}), ValueError, "[gather]");
  KILN_EXPECT_THROW_MSG(gather(a, {i}, {0}, {-1, 1}), ValueError, "[gather]");
  KILN_EXPECT_THROW_MSG(gather(a, {i, i}, {0, -2}, {1, 1}), ValueError, "[gather]");
  KILN_EXPECT_THROW_MSG(gather(a, {i}, {2}, {1, 1}), IndexError, "[gather]");
  KILN_EXPECT_THROW_MSG(gather(a, {zeros({2})}, {0}, {1, 1}), TypeError, "[gather]");
  KILN_EXPECT_THROW_MSG(gather(a, {i, zeros({3}, int32)}, {0, 1}, {1, 1}), ValueError, "[gather]");
}

namespace {
double combine_ref(ScatterMode mode, Dtype dt, double x, double u) {
  bool b = dt == bool_;
  switch (mode) {
    case ScatterMode::set: return u;
    case ScatterMode::add: return b ? double(x != 0 || u != 0) : x + u;
    case ScatterMode::prod: return b ? double(x != 0 && u != 0) : x * u;
    case ScatterMode::max: return std::max(x, u);
    case ScatterMode::min: return std::min(x, u);
  }
  return 0;
}
}  // namespace

TEST(Index, Scatter) {
  const Shape as{6, 5};
  int counter = 0;
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (ScatterMode mode : {ScatterMode::set, ScatterMode::add, ScatterMode::max, ScatterMode::min,
                               ScatterMode::prod}) {
        int layout = counter % 4;
        Input a = make_input(as, dt, layout);
        struct Case {
          std::vector<int> axes;
          std::vector<Shape> ishapes;
          Shape block;
        };
        std::vector<Case> cases = {{{0}, {{8}}, {1, 5}},
                                   {{0}, {{3}}, {2, 3}},
                                   {{0, -1}, {{4}, {1}}, {1, 1}},
                                   {{0, 1}, {{10}, {10}}, {1, 1}},
                                   {{1}, {{2, 2}}, {6, 1}},
                                   {{}, {}, {3, 2}},
                                   {{0}, {{0}}, {1, 5}}};
        for (auto& c : cases) {
          std::vector<Input> idx;
          std::vector<array> arrs;
          Shape is;
          bool skip = false;
          for (size_t k = 0; k < c.axes.size() && !skip; ++k) {
            int ax = c.axes[k] < 0 ? c.axes[k] + 2 : c.axes[k];
            int64_t hi = as[ax] - c.block[ax];
            Dtype idt = index_dtypes()[counter++ % index_dtypes().size()];
            int64_t cnt = shape_size(c.ishapes[k]);
            std::vector<double> v;
            if (mode == ScatterMode::set && k == 0) {
              // Starts whose blocks do not overlap along the first axis, so that the result does
              // not depend on which of several updates of one element wins.
              Idx starts;
              for (int64_t t = 0; t <= hi; t += std::max<int64_t>(c.block[ax], 1)) starts.push_back(t);
              if (cnt > static_cast<int64_t>(starts.size())) {
                skip = true;
                break;
              }
              std::shuffle(starts.begin(), starts.end(), test::rng());
              for (int64_t t = 0; t < cnt; ++t) v.push_back(static_cast<double>(starts[t]));
            } else {
              v = random_ints(cnt, 0, hi);
            }
            if (!is_unsigned(idt)) {
              for (auto& x : v) x -= test::rng()() % 2 ? static_cast<double>(as[ax]) : 0.0;
            }
            idx.push_back(make_indices(v, c.ishapes[k], idt, counter % 2 == 0));
            arrs.push_back(idx.back().a);
            is = broadcast_shapes(is, c.ishapes[k]);
          }
          if (skip) continue;  // not enough distinct starts for set
          Shape us = is;
          us.insert(us.end(), c.block.begin(), c.block.end());
          bool small = mode == ScatterMode::prod && !is_inexact(dt);
          Input upd = make_input(us, dt, (layout + 1) % 4, small ? -1 : -2, small ? 1 : 2);
          std::vector<double> ref = a.v;
          for (int64_t p = 0; p < shape_size(us); ++p) {
            Idx o = unravel(p, us);
            Idx i(o.begin(), o.begin() + is.size());
            Idx j(o.begin() + is.size(), o.end());
            for (size_t k = 0; k < c.axes.size(); ++k) {
              int ax = c.axes[k] < 0 ? c.axes[k] + 2 : c.axes[k];
              j[ax] += wrap(static_cast<int64_t>(idx[k].v[ravel_broadcast(i, c.ishapes[k])]), as[ax]);
            }
            double& x = ref[ravel(j, as)];
            x = combine_ref(mode, dt, x, upd.v[p]);
          }
          array out = scatter(a.a, arrs, upd.a, c.axes, mode, dev);
          EXPECT_EQ(out.dtype(), dt);
          EXPECT_EQ(out.shape(), as);
          std::ostringstream what;
          what << label(dev, dt) << " mode " << static_cast<int>(mode) << " block " << c.block;
          KILN_EXPECT_CLOSE(test::to_doubles(out), ref, dt, what.str());
        }
      }
    }
    // Repeated indices with set: the CPU keeps the last update, the GPU one of them.
    auto v = scatter(zeros({3}), {array({1, 1, 1})}, array({3.f, 7.f, 9.f}, Shape{3, 1}), {0}, ScatterMode::set, dev)
                 .to_vector<float>();
    if (dev.type == Device::cpu) {
      EXPECT_EQ(v, (std::vector<float>{0, 9, 0}));
    } else {
      EXPECT_TRUE(v[1] == 3 || v[1] == 7 || v[1] == 9) << v[1];
    }
    // Lazy out-of-range indices drop their whole update block.
    Input idx = make_indices({0, 9, -7, 2, -1}, {5}, int32);
    auto [b, bv] = test::random_array({6}, float32);
    std::vector<double> ref = bv;
    ref[0] += 1;
    ref[2] += 4;
    ref[5] += 5;
    KILN_EXPECT_CLOSE(
        test::to_doubles(scatter(b, {idx.a}, array({1.f, 2.f, 3.f, 4.f, 5.f}, Shape{5, 1}), {0}, ScatterMode::add, dev)),
        ref, float32, label(dev, float32, "drop"));
    Input starts = make_indices({4, 5}, {2}, int64);
    ref = bv;
    ref[4] = 1;
    ref[5] = 2;
    expect_values(scatter(b, {starts.a}, array({1.f, 2.f, 3.f, 4.f}, Shape{2, 2}), {0}, ScatterMode::set, dev), {6},
                  ref, label(dev, float32, "drop block"));
    // max and min propagate NaN; a 0-d array scatters into itself.
    float nan = std::numeric_limits<float>::quiet_NaN();
    for (ScatterMode m : {ScatterMode::max, ScatterMode::min}) {
      auto r = scatter(zeros({3}), {array({1, 1})}, array({nan, 2.f}, Shape{2, 1}), {0}, m, dev).to_vector<float>();
      EXPECT_TRUE(std::isnan(r[1])) << test::device_name(dev);
      EXPECT_EQ(r[0], 0.f);
    }
    expect_values(scatter(array(2.f), {}, array(3.f), {}, ScatterMode::add, dev), {}, {5}, label(dev, float32, "0-d"));
  }
  array a = zeros({6, 4});
  array i = zeros({2}, int32);
  KILN_EXPECT_THROW_MSG(scatter(a, {array({9, 0})}, zeros({2, 1, 4}), {0}), IndexError,
                        "[scatter] index 9 is out of bounds for axis 0 with size 6");
  KILN_EXPECT_THROW_MSG(scatter(a, {array({5})}, zeros({1, 2, 4}), {0}), IndexError, "slice size 2");
  KILN_EXPECT_THROW_MSG(scatter(a, {i}, zeros({2, 4}), {0}), ValueError, "[scatter]");
  KILN_EXPECT_THROW_MSG(scatter(a, {i}, zeros({3, 1, 4}), {0}), ValueError, "[scatter]");
  KILN_EXPECT_THROW_MSG(scatter(a, {i}, zeros({2, 7, 4}), {0}), ValueError, "[scatter]");
  KILN_EXPECT_THROW_MSG(scatter(a, {i}, zeros({2, 1, 4}), {0, 1}), ValueError, "[scatter]");
  KILN_EXPECT_THROW_MSG(scatter(a, {zeros({2})}, zeros({2, 1, 4}), {0}), TypeError, "[scatter]");
  KILN_EXPECT_THROW_MSG(scatter(a, {i}, zeros({2, 1, 4}), {3}), IndexError, "[scatter]");
}
