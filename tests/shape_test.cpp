// Shape and layout ops: views share their input's buffer (checked by comparing buffer pointers
// after eval) and give the right values (checked against index arithmetic written here); reshape
// of non-contiguous data copies; slicing follows Python's rules for any start, stop and step.
#include <gtest/gtest.h>

#include <numeric>

#include "tests/test_utils.h"

using namespace kiln;

namespace {

// Row-major values of a strided view over row-major `base` values.
std::vector<double> gather(const std::vector<double>& base, const Shape& shape, const Strides& strides,
                           int64_t offset) {
  std::vector<double> out;
  int64_t n = shape_size(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t pos = offset;
    for (size_t k = 0; k < shape.size(); ++k) pos += idx[k] * strides[k];
    out.push_back(base.at(pos));
    for (int k = static_cast<int>(shape.size()) - 1; k >= 0; --k) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

// Transpose of row-major values.
std::vector<double> transpose_ref(const std::vector<double>& v, const Shape& shape, const std::vector<int>& axes) {
  Strides rm = row_major_strides(shape), st;
  Shape out;
  for (int a : axes) {
    out.push_back(shape[a]);
    st.push_back(rm[a]);
  }
  return gather(v, out, st, 0);
}

// Python's slice.indices(length) for explicit start, stop and step (CPython's rules).
struct PySlice {
  int64_t start, len;
};
PySlice py_slice(int64_t start, int64_t stop, int64_t step, int64_t length) {
  auto adjust = [&](int64_t v) {
    if (v < 0) {
      v += length;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= length) {
      v = step < 0 ? length - 1 : length;
    }
    return v;
  };
  start = adjust(start);
  stop = adjust(stop);
  int64_t len = 0;
  if (step > 0 && stop > start) len = (stop - start - 1) / step + 1;
  if (step < 0 && start > stop) len = (start - stop - 1) / (-step) + 1;
  return {start, len};
}

// Slicing of row-major values by Python's rules; axes past the given ones are taken whole.
std::pair<std::vector<double>, Shape> slice_ref(const std::vector<double>& v, const Shape& shape, const Shape& start,
                                                const Shape& stop, const Shape& step) {
  Strides rm = row_major_strides(shape), st(shape.size());
  Shape out(shape.size());
  int64_t offset = 0;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < start.size()) {
      PySlice s = py_slice(start[i], stop[i], step[i], shape[i]);
      out[i] = s.len;
      st[i] = rm[i] * step[i];
      if (s.len > 0) offset += s.start * rm[i];
    } else {
      out[i] = shape[i];
      st[i] = rm[i];
    }
  }
  if (shape_size(out) == 0) return {{}, out};
  return {gather(v, out, st, offset), out};
}

std::pair<array, std::vector<double>> rand_arr(const Shape& shape, Dtype dt = float32) {
  auto [a, v] = test::random_array(shape, dt, -100, 100);
  a.eval();
  return {a, v};
}

void expect_values(array a, const std::vector<double>& want, const std::string& what) {
  auto got = test::to_doubles(a);
  EXPECT_EQ(got, want) << what;
}

// Evaluates `view` and checks that it shares `base`'s buffer.
void expect_shares(array view, const array& base, const std::string& what) {
  view.eval();
  EXPECT_EQ(view.buffer().get(), base.buffer().get()) << what << " copied instead of viewing";
}

}  // namespace

TEST(ShapeViews, ShareTheBufferAndAreCorrect) {
  for (Device dev : test::devices()) {
    std::string on = " on " + test::device_name(dev);
    auto [a, v] = rand_arr({2, 3, 4});
    for (Shape s : {Shape{24}, Shape{4, 6}, Shape{2, 12}, Shape{-1, 4}, Shape{2, 3, 2, 2}, Shape{1, 24, 1}}) {
      array r = reshape(a, s, dev);
      expect_shares(r, a, "reshape" + on);
      expect_values(r, v, "reshape" + on);
    }
    for (std::vector<int> axes : {std::vector<int>{2, 0, 1}, {1, 0, 2}, {0, 2, 1}, {-1, -2, -3}}) {
      array t = transpose(a, axes, dev);
      std::vector<int> pos = axes;
      for (auto& x : pos) x = x < 0 ? x + 3 : x;
      expect_shares(t, a, "transpose" + on);
      expect_values(t, transpose_ref(v, {2, 3, 4}, pos), "transpose" + on);
    }
    expect_values(transpose(a, dev), transpose_ref(v, {2, 3, 4}, {2, 1, 0}), "transpose reversed" + on);
    expect_values(swapaxes(a, 0, -1, dev), transpose_ref(v, {2, 3, 4}, {2, 1, 0}), "swapaxes" + on);
    expect_values(moveaxis(a, 0, 2, dev), transpose_ref(v, {2, 3, 4}, {1, 2, 0}), "moveaxis" + on);
    expect_values(moveaxis(a, -1, 0, dev), transpose_ref(v, {2, 3, 4}, {2, 0, 1}), "moveaxis back" + on);
    expect_shares(swapaxes(a, 0, 1, dev), a, "swapaxes" + on);

    auto [row, rv] = rand_arr({1, 4});
    array b = broadcast_to(row, {5, 3, 4}, dev);
    expect_shares(b, row, "broadcast_to" + on);
    expect_values(b, gather(rv, {5, 3, 4}, {0, 0, 1}, 0), "broadcast_to" + on);
    auto arrs = broadcast_arrays({row, a}, dev);
    EXPECT_EQ(arrs[0].shape(), (Shape{2, 3, 4}));
    expect_values(arrs[0], gather(rv, {2, 3, 4}, {0, 0, 1}, 0), "broadcast_arrays" + on);
    expect_shares(arrs[1], a, "broadcast_arrays" + on);

    array s = slice(a, {1, 2, 3}, {2, -4, -5}, {1, -1, -2}, dev);  // steps of both signs
    EXPECT_EQ(s.shape(), (Shape{1, 3, 2}));
    expect_shares(s, a, "slice" + on);
    expect_values(s, slice_ref(v, {2, 3, 4}, {1, 2, 3}, {2, -4, -5}, {1, -1, -2}).first, "slice" + on);
    array s2 = slice(a, {0, 0, 1}, {2, 3, 4}, {1, 2, 2}, dev);
    expect_shares(s2, a, "slice" + on);
    expect_values(s2, slice_ref(v, {2, 3, 4}, {0, 0, 1}, {2, 3, 4}, {1, 2, 2}).first, "slice" + on);

    array e = expand_dims(a, {0, -1}, dev);
    EXPECT_EQ(e.shape(), (Shape{1, 2, 3, 4, 1}));
    expect_shares(e, a, "expand_dims" + on);
    expect_values(e, v, "expand_dims" + on);
    EXPECT_EQ(expand_dims(a, 2, dev).shape(), (Shape{2, 3, 1, 4}));
    array q = squeeze(e, dev);
    EXPECT_EQ(q.shape(), (Shape{2, 3, 4}));
    expect_shares(q, a, "squeeze" + on);
    EXPECT_EQ(squeeze(e, {-1}, dev).shape(), (Shape{1, 2, 3, 4}));
    expect_shares(flatten(a, 0, -1, dev), a, "flatten" + on);
    EXPECT_EQ(flatten(a, 1, 2, dev).shape(), (Shape{2, 12}));
    EXPECT_EQ(flatten(array(3.f), 0, -1, dev).shape(), (Shape{1}));

    // Sliding windows and a diagonal through as_strided.
    auto [line, lv] = rand_arr({10});
    array win = as_strided(line, {8, 3}, {1, 1}, 0, dev);
    expect_shares(win, line, "as_strided" + on);
    expect_values(win, gather(lv, {8, 3}, {1, 1}, 0), "as_strided" + on);
    auto [m, mv] = rand_arr({4, 4});
    array diag = as_strided(m, {4}, {5}, 0, dev);
    expect_shares(diag, m, "as_strided diagonal" + on);
    expect_values(diag, gather(mv, {4}, {5}, 0), "as_strided diagonal" + on);
    array anti = as_strided(m, {4}, {3}, 3, dev);
    expect_values(anti, gather(mv, {4}, {3}, 3), "as_strided anti-diagonal" + on);

    // as_strided of a not-yet-computed array views its result (no copy first).
    array lazy = line * 2.0;
    array lwin = as_strided(lazy, {8, 3}, {1, 1}, 0, dev);
    eval(lwin, lazy);
    EXPECT_EQ(lwin.buffer().get(), lazy.buffer().get()) << "as_strided of a lazy array copied" << on;
    std::vector<double> l2 = lv;
    for (auto& x : l2) x *= 2;
    expect_values(lwin, gather(l2, {8, 3}, {1, 1}, 0), "as_strided of lazy" + on);
    // ... and of a transposed one, made contiguous first.
    array tw = as_strided(transpose(m, dev), {4}, {1}, 0, dev);
    expect_values(tw, gather(mv, {4}, {4}, 0), "as_strided of transposed" + on);

    // Views of views keep sharing and compose their offsets.
    array chain = slice(transpose(slice(a, {1}, {2}, {1}, dev), dev), {3, 0}, {0, 3}, {-2, 2}, dev);
    auto [r1, sh1] = slice_ref(v, {2, 3, 4}, {1}, {2}, {1});
    auto t1 = transpose_ref(r1, sh1, {2, 1, 0});
    auto [r2, sh2] = slice_ref(t1, {4, 3, 1}, {3, 0}, {0, 3}, {-2, 2});
    EXPECT_EQ(chain.shape(), sh2);
    expect_shares(chain, a, "slice of transpose of slice" + on);
    expect_values(chain, r2, "slice of transpose of slice" + on);
  }
}

// A view of an unevaluated array is a view of its result once computed.
TEST(ShapeViews, ViewsOfLazyArrays) {
  for (Device dev : test::devices()) {
    auto [a, v] = rand_arr({3, 4});
    array y = a + 1.0;
    array t = transpose(y, dev);
    array s = slice(y, {0, 3}, {3, 0}, {2, -1}, dev);
    eval(t, s, y);
    EXPECT_EQ(t.buffer().get(), y.buffer().get());
    EXPECT_EQ(s.buffer().get(), y.buffer().get());
    std::vector<double> v1 = v;
    for (auto& x : v1) x = static_cast<float>(x + 1.0);
    expect_values(t, transpose_ref(v1, {3, 4}, {1, 0}), "transpose of lazy");
    expect_values(s, slice_ref(v1, {3, 4}, {0, 3}, {3, 0}, {2, -1}).first, "slice of lazy");
  }
}

// Reshape copies when no strides describe the result, and views whenever some do.
TEST(ShapeReshape, NonContiguousInputs) {
  for (Device dev : test::devices()) {
    std::string on = " on " + test::device_name(dev);
    auto [a, v] = rand_arr({4, 6});
    array t = transpose(a, dev);  // (6, 4), column-major data
    array r = reshape(t, {3, 8}, dev);
    r.eval();
    EXPECT_NE(r.buffer().get(), a.buffer().get()) << "reshape of transposed data must copy" << on;
    expect_values(r, transpose_ref(v, {4, 6}, {1, 0}), "reshape of transposed" + on);
    expect_values(reshape(t, {24}, dev), transpose_ref(v, {4, 6}, {1, 0}), "flatten of transposed" + on);

    array b = broadcast_to(slice(a, {0}, {1}), {3, 6}, dev);
    expect_values(reshape(b, {18}, dev), gather(v, {3, 6}, {0, 1}, 0), "reshape of broadcast" + on);

    // Every other row: rows are still contiguous inside, so splitting the last axis is a view.
    array rows = slice(a, {0}, {4}, {2}, dev);
    array split = reshape(rows, {2, 2, 3}, dev);
    expect_shares(split, a, "reshape splitting a contiguous axis" + on);
    expect_values(split, gather(v, {2, 6}, {12, 1}, 0), "reshape of row slice" + on);
    array merged = reshape(rows, {12}, dev);  // merging across the gap must copy
    merged.eval();
    EXPECT_NE(merged.buffer().get(), a.buffer().get()) << on;
    expect_values(merged, gather(v, {2, 6}, {12, 1}, 0), "reshape merging a row slice" + on);

    // Transposing the two leading axes of a 3-d array keeps the last contiguous.
    auto [c, cv] = rand_arr({2, 3, 4});
    array ct = transpose(c, {1, 0, 2}, dev);
    array cs = reshape(ct, {3, 2, 2, 2}, dev);
    expect_shares(cs, c, "reshape splitting the contiguous axis of a transpose" + on);
    expect_values(cs, transpose_ref(cv, {2, 3, 4}, {1, 0, 2}), "reshape of partial transpose" + on);
    expect_values(reshape(ct, {6, 4}, dev), transpose_ref(cv, {2, 3, 4}, {1, 0, 2}), "reshape merging transposed axes" + on);
  }
}

// Random chains of views followed by random reshapes, against the reference's index arithmetic.
TEST(ShapeReshape, RandomChains) {
  std::uniform_int_distribution<int> coin(0, 1), pick(0, 2);
  for (int trial = 0; trial < 60; ++trial) {
    Shape shape{2 + pick(test::rng()), 2 + pick(test::rng()), 2 * (1 + pick(test::rng()))};
    auto [a, v] = rand_arr(shape);
    array x = a;
    std::vector<double> xv = v;
    Shape xs = shape;
    if (coin(test::rng())) {
      std::vector<int> axes{0, 1, 2};
      std::shuffle(axes.begin(), axes.end(), test::rng());
      x = transpose(x, axes);
      xv = transpose_ref(xv, xs, axes);
      Shape ns;
      for (int ax : axes) ns.push_back(xs[ax]);
      xs = ns;
    }
    if (coin(test::rng())) {
      Shape st{0, 0, 0}, sp{xs[0], xs[1], xs[2]}, step{1, 1, 1};
      int ax = pick(test::rng());
      if (coin(test::rng())) {
        st[ax] = xs[ax] - 1;
        sp[ax] = -xs[ax] - 1;
        step[ax] = -1;
      } else {
        step[ax] = 2;
      }
      x = slice(x, st, sp, step);
      auto [nv, ns] = slice_ref(xv, xs, st, sp, step);
      xv = nv;
      xs = ns;
    }
    // A random factorisation of the size.
    int64_t n = shape_size(xs);
    Shape target;
    int64_t rest = n;
    for (int64_t f = 2; f <= rest;) {
      if (rest % f == 0 && coin(test::rng())) {
        target.push_back(f);
        rest /= f;
      } else {
        ++f;
      }
    }
    if (rest > 1 || target.empty()) target.push_back(rest);
    if (coin(test::rng())) target.push_back(1);  // axes of length 1 anywhere
    std::shuffle(target.begin(), target.end(), test::rng());
    for (Device dev : test::devices()) {
      std::ostringstream what;
      what << "reshape " << xs << " -> " << target << " on " << test::device_name(dev);
      array r = reshape(x, target, dev);
      EXPECT_EQ(r.shape(), target) << what.str();
      expect_values(r, xv, what.str());
    }
  }
}

// Slicing against Python's rules for random starts, stops and steps, in and out of range.
TEST(ShapeSlice, PythonRules) {
  std::uniform_int_distribution<int64_t> bound(-14, 14), stepd(-4, 4), lend(0, 9);
  for (int trial = 0; trial < 400; ++trial) {
    int64_t n = lend(test::rng());
    int64_t st = bound(test::rng()), sp = bound(test::rng()), step = stepd(test::rng());
    if (step == 0) step = 1;
    auto [a, v] = rand_arr({n});
    auto [want, wshape] = slice_ref(v, {n}, {st}, {sp}, {step});
    for (Device dev : test::devices()) {
      std::ostringstream what;
      what << "x[" << st << ":" << sp << ":" << step << "] of length " << n << " on " << test::device_name(dev);
      array s = slice(a, {st}, {sp}, {step}, dev);
      EXPECT_EQ(s.shape(), wshape) << what.str();
      expect_values(s, want, what.str());
      expect_shares(s, a, what.str());
    }
  }
  // Several axes at once, fewer parameters than axes, and slicing a slice.
  for (int trial = 0; trial < 100; ++trial) {
    Shape shape{lend(test::rng()) + 1, lend(test::rng()), lend(test::rng()) + 1};
    auto [a, v] = rand_arr(shape);
    size_t given = 1 + trial % 3;
    Shape st, sp, step;
    for (size_t i = 0; i < given; ++i) {
      st.push_back(bound(test::rng()));
      sp.push_back(bound(test::rng()));
      int64_t s = stepd(test::rng());
      step.push_back(s == 0 ? -1 : s);
    }
    auto [want, wshape] = slice_ref(v, shape, st, sp, step);
    auto [want2, wshape2] = slice_ref(want, wshape, {-1}, {-100}, {-1});
    for (Device dev : test::devices()) {
      std::ostringstream what;
      what << "slice of " << shape << " start " << st << " stop " << sp << " step " << step << " on "
           << test::device_name(dev);
      array s = slice(a, st, sp, step, dev);
      EXPECT_EQ(s.shape(), wshape) << what.str();
      expect_values(s, want, what.str());
      array s2 = slice(s, {-1}, {-100}, {-1}, dev);
      EXPECT_EQ(s2.shape(), wshape2) << what.str() << " reversed";
      expect_values(s2, want2, what.str() + " reversed");
    }
  }
  // The default step is 1.
  auto [a, v] = rand_arr({6});
  expect_values(slice(a, {1}, {4}), {v[1], v[2], v[3]}, "default step");
}

TEST(ShapeZeroSize, Views) {
  for (Device dev : test::devices()) {
    array e = zeros({0, 3}, float32, dev);
    EXPECT_EQ(reshape(e, {3, 0}, dev).shape(), (Shape{3, 0}));
    EXPECT_EQ(transpose(e, dev).shape(), (Shape{3, 0}));
    EXPECT_EQ(broadcast_to(zeros({1, 3}), {0, 3}, dev).shape(), (Shape{0, 3}));
    EXPECT_EQ(slice(zeros({5}), {3}, {1}, {1}, dev).shape(), (Shape{0}));
    EXPECT_EQ(expand_dims(e, 1, dev).shape(), (Shape{0, 1, 3}));
    for (array x : {reshape(e, {3, 0}, dev), transpose(e, dev), slice(zeros({5}), {3}, {1}, {1}, dev), flatten(e, 0, -1, dev)}) {
      EXPECT_EQ(x.to_vector<float>().size(), 0u);
    }
    array s = slice(zeros({4, 0}), {1, 0}, {3, 0}, {1, 1}, dev);
    EXPECT_EQ(s.shape(), (Shape{2, 0}));
    EXPECT_EQ(reshape(transpose(zeros({2, 0, 3}), dev), {0, 6}, dev).to_vector<float>().size(), 0u);
  }
}

TEST(ShapeErrors, BadArguments) {
  array a = zeros({2, 3, 4});
  KILN_EXPECT_THROW_MSG(reshape(a, {5, 5}), ValueError, "[reshape]");
  KILN_EXPECT_THROW_MSG(reshape(a, {5, 5}), ValueError, "24");
  KILN_EXPECT_THROW_MSG(reshape(a, {-1, -1}), ValueError, "[reshape]");
  KILN_EXPECT_THROW_MSG(reshape(a, {-2, -12}), ValueError, "[reshape]");
  KILN_EXPECT_THROW_MSG(reshape(a, {-1, 5}), ValueError, "[reshape]");
  KILN_EXPECT_THROW_MSG(reshape(zeros({0, 2}), {-1, 0}), ValueError, "[reshape]");
  KILN_EXPECT_THROW_MSG(transpose(a, {0, 0, 1}), ValueError, "[transpose]");
  KILN_EXPECT_THROW_MSG(transpose(a, {0, 1}), ValueError, "[transpose]");
  KILN_EXPECT_THROW_MSG(transpose(a, {0, 1, 3}), IndexError, "[transpose]");
  KILN_EXPECT_THROW_MSG(transpose(a, {0, 1, -4}), IndexError, "[transpose]");
  KILN_EXPECT_THROW_MSG(swapaxes(a, 0, 3), IndexError, "[swapaxes]");
  KILN_EXPECT_THROW_MSG(moveaxis(a, -4, 0), IndexError, "[moveaxis]");
  KILN_EXPECT_THROW_MSG(squeeze(a, {0}), ValueError, "[squeeze]");
  KILN_EXPECT_THROW_MSG(squeeze(a, {3}), IndexError, "[squeeze]");
  KILN_EXPECT_THROW_MSG(expand_dims(a, 4), IndexError, "[expand_dims]");
  KILN_EXPECT_THROW_MSG(expand_dims(a, -5), IndexError, "[expand_dims]");
  KILN_EXPECT_THROW_MSG(expand_dims(a, {1, 1}), ValueError, "[expand_dims]");
  KILN_EXPECT_THROW_MSG(expand_dims(a, {0, -5}), ValueError, "[expand_dims]");
  KILN_EXPECT_THROW_MSG(broadcast_to(a, {3, 3, 4}), ValueError, "[broadcast_to]");
  KILN_EXPECT_THROW_MSG(broadcast_to(a, {3, 4}), ValueError, "[broadcast_to]");
  KILN_EXPECT_THROW_MSG(broadcast_to(zeros({1}), {-1}), ValueError, "[broadcast_to]");
  KILN_EXPECT_THROW_MSG(broadcast_arrays({a, zeros({5})}), ValueError, "[broadcast_arrays]");
  KILN_EXPECT_THROW_MSG(slice(a, {0}, {1}, {0}), ValueError, "[slice]");
  KILN_EXPECT_THROW_MSG(slice(a, {0, 0, 0, 0}, {1, 1, 1, 1}), ValueError, "[slice]");
  KILN_EXPECT_THROW_MSG(slice(a, {0, 0}, {1}), ValueError, "[slice]");
  KILN_EXPECT_THROW_MSG(flatten(a, 2, 1), ValueError, "[flatten]");
  KILN_EXPECT_THROW_MSG(flatten(a, 0, 3), IndexError, "[flatten]");
  KILN_EXPECT_THROW_MSG(as_strided(a, {2, 2}, {1}), ValueError, "[as_strided]");
  // Strides that would reach past the input's data are rejected, not read.
  KILN_EXPECT_THROW_MSG(as_strided(zeros({4}), {10}, {5}), ValueError, "[as_strided]");
  KILN_EXPECT_THROW_MSG(as_strided(zeros({4}), {2}, {-1}), ValueError, "[as_strided]");
  KILN_EXPECT_THROW_MSG(as_strided(zeros({4}), {2}, {1}, 3), ValueError, "[as_strided]");
  KILN_EXPECT_THROW_MSG(as_strided(zeros({4}), {-2}, {1}), ValueError, "[as_strided]");
  EXPECT_EQ(as_strided(zeros({4}), {2}, {-1}, 3).to_vector<float>().size(), 2u);
  EXPECT_EQ(as_strided(zeros({4}), {0, 7}, {100, 100}).shape(), (Shape{0, 7}));
  KILN_EXPECT_THROW_MSG(a.shape(3), IndexError, "[shape]");
}

// Every shape op takes a stream and builds its node there.
TEST(ShapeStreams, StreamArgument) {
  for (Device dev : test::devices()) {
    Stream s = new_stream(dev);
    auto [a, v] = rand_arr({2, 3, 4});
    for (array r : {reshape(a, {6, 4}, s), transpose(a, s), transpose(a, {1, 0, 2}, s), swapaxes(a, 0, 1, s),
                    moveaxis(a, 0, 2, s), broadcast_to(a, {2, 2, 3, 4}, s), expand_dims(a, 0, s),
                    squeeze(expand_dims(a, 0), s), slice(a, {1}, {2}, {1}, s), as_strided(a, {3}, {2}, 0, s)}) {
      EXPECT_EQ(r.stream(), s);
      EXPECT_EQ(r.device(), dev);
      r.eval();
    }
    expect_values(reshape(transpose(a, s), {24}, s), transpose_ref(v, {2, 3, 4}, {2, 1, 0}), "stream reshape copy");
  }
}
