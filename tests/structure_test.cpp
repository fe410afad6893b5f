// Tests of the structural operations: concatenate, stack, split, pad, tile, repeat, roll, flip,
// tril, triu and diagonal, each against a reference written here with loops over doubles.
#include <algorithm>

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

// The row-major values of an array of `shape` whose element at idx is f(idx).
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
// strided slice, 3 broadcast along the first axis. Layouts that do not fit the shape fall back
// to row-contiguous.
Input make_input(const Shape& shape, Dtype dt, int layout) {
  array a = test::random_array(shape, dt, -3, 3).first;
  if (layout == 1 && shape.size() >= 2) {
    a = transpose(test::random_array(Shape(shape.rbegin(), shape.rend()), dt, -3, 3).first);
  } else if (layout == 2 && !shape.empty()) {
    Shape wide = shape;
    wide.back() = 2 * shape.back() + 1;
    Shape start(shape.size(), 0), step(shape.size(), 1);
    start.back() = 1;
    step.back() = 2;
    a = slice(test::random_array(wide, dt, -3, 3).first, start, wide, step);
  } else if (layout == 3 && !shape.empty()) {
    Shape one = shape;
    one[0] = 1;
    a = broadcast_to(test::random_array(one, dt, -3, 3).first, shape);
  }
  return {a, test::to_doubles(a)};
}

// Exact comparison (these operations only move elements).
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

int64_t wrap(int64_t i, int64_t n) { return ((i % n) + n) % n; }

}  // namespace

TEST(Structure, Concatenate) {
  test::note_gpu_skip();
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int axis : {0, 1, 2, -1, -3}) {
        int ax = axis < 0 ? axis + 3 : axis;
        Idx lens{2, 0, 3, 1};
        std::vector<Shape> shapes;
        std::vector<Input> ins;
        std::vector<array> arrs;
        for (size_t k = 0; k < lens.size(); ++k) {
          Shape s{3, 4, 2};
          s[ax] = lens[k];
          shapes.push_back(s);
          ins.push_back(make_input(s, dt, static_cast<int>(k)));
          arrs.push_back(ins.back().a);
        }
        Shape os{3, 4, 2};
        os[ax] = 6;
        auto ref = build(os, [&](Idx i) {
          size_t k = 0;
          while (i[ax] >= lens[k]) i[ax] -= lens[k++];
          return ins[k].v[ravel(i, shapes[k])];
        });
        array out = concatenate(arrs, axis, dev);
        EXPECT_EQ(out.dtype(), dt);
        expect_values(out, os, ref, label(dev, dt, "axis " + std::to_string(axis)));
      }
    }
    // Dtypes promote; one array comes back as itself (converted).
    auto [a, av] = test::random_array({2, 3}, int32);
    auto [b, bv] = test::random_array({1, 3}, float32);
    array out = concatenate({a, b}, 0, dev);
    EXPECT_EQ(out.dtype(), float32);
    std::vector<double> ref = av;
    ref.insert(ref.end(), bv.begin(), bv.end());
    expect_values(out, {3, 3}, ref, label(dev, float32, "promotion"));
    expect_values(concatenate({a}, 1, dev), {2, 3}, av, label(dev, int32, "single"));
    // Empty inputs only.
    expect_values(concatenate({zeros({0, 2}), zeros({0, 2})}, 0, dev), {0, 2}, {}, label(dev, float32, "empty"));
  }
  KILN_EXPECT_THROW_MSG(concatenate({}), ValueError, "[concatenate]");
  KILN_EXPECT_THROW_MSG(concatenate({zeros({2, 3}), zeros({2, 4})}, 0), ValueError, "[concatenate]");
  KILN_EXPECT_THROW_MSG(concatenate({zeros({2, 3}), zeros({2, 3, 1})}, 0), ValueError, "[concatenate]");
  KILN_EXPECT_THROW_MSG(concatenate({array(1.f), array(2.f)}), ValueError, "[concatenate]");
  KILN_EXPECT_THROW_MSG(concatenate({zeros({2, 3}), zeros({2, 3})}, 2), IndexError, "[concatenate]");
  KILN_EXPECT_THROW_MSG(concatenate({zeros({2, 3}), zeros({2, 3})}, -3), IndexError, "[concatenate]");
}

TEST(Structure, Stack) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {bool_, int8, uint32, float16, float64, complex64}) {
      for (int axis : {0, 1, 2, -1, -3}) {
        int ax = axis < 0 ? axis + 3 : axis;
        std::vector<Input> ins;
        std::vector<array> arrs;
        for (int k = 0; k < 3; ++k) {
          ins.push_back(make_input({2, 3}, dt, k));
          arrs.push_back(ins.back().a);
        }
        Shape os{2, 3};
        os.insert(os.begin() + ax, 3);
        auto ref = build(os, [&](Idx i) {
          int64_t k = i[ax];
          i.erase(i.begin() + ax);
          return ins[k].v[ravel(i, {2, 3})];
        });
        expect_values(stack(arrs, axis, dev), os, ref, label(dev, dt, "axis " + std::to_string(axis)));
      }
    }
    // 0-d arrays stack into a vector.
    expect_values(stack({array(1.f), array(2.f)}, 0, dev), {2}, {1, 2}, label(dev, float32, "0-d"));
  }
  KILN_EXPECT_THROW_MSG(stack({}), ValueError, "[stack]");
  KILN_EXPECT_THROW_MSG(stack({zeros({2, 3}), zeros({3, 2})}), ValueError, "[stack]");
  KILN_EXPECT_THROW_MSG(stack({zeros({2, 3}), zeros({2, 3})}, 3), IndexError, "[stack]");
  KILN_EXPECT_THROW_MSG(stack({zeros({2, 3}), zeros({2, 3})}, -4), IndexError, "[stack]");
}

namespace {
// Python's slice.indices for a step of 1: the bounds clamp into [0, n].
int64_t py_bound(int64_t v, int64_t n) {
  if (v < 0) v += n;
  return std::clamp<int64_t>(v, 0, n);
}
}  // namespace

TEST(Structure, Split) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {uint8, int64, bfloat16, float32}) {
      for (int layout = 0; layout < 4; ++layout) {
        Input in = make_input({6, 4}, dt, layout);
        std::vector<std::pair<std::vector<int64_t>, int>> cases = {
            {{1, 4}, 0}, {{-2}, 0}, {{5, 2, 10}, 0}, {{}, 1}, {{0, 0, 4}, -1}, {{-10, 3}, 1}};
        for (auto& [indices, axis] : cases) {
          int ax = axis < 0 ? axis + 2 : axis;
          auto parts = split(in.a, indices, axis, dev);
          ASSERT_EQ(parts.size(), indices.size() + 1);
          int64_t n = in.a.shape()[ax];
          for (size_t k = 0; k < parts.size(); ++k) {
            int64_t b = k == 0 ? 0 : py_bound(indices[k - 1], n);
            int64_t e = k == indices.size() ? n : py_bound(indices[k], n);
            Shape s{6, 4};
            s[ax] = std::max<int64_t>(e - b, 0);
            auto ref = build(s, [&](Idx i) {
              i[ax] += b;
              return in.v[ravel(i, {6, 4})];
            });
            expect_values(parts[k], s, ref, label(dev, dt, "part " + std::to_string(k)));
          }
        }
        for (auto [num, axis] : std::vector<std::pair<int, int>>{{3, 0}, {2, -1}, {1, 1}, {6, 0}}) {
          int ax = axis < 0 ? axis + 2 : axis;
          auto parts = split(in.a, num, axis, dev);
          ASSERT_EQ(static_cast<int>(parts.size()), num);
          int64_t len = in.a.shape()[ax] / num;
          for (int k = 0; k < num; ++k) {
            Shape s{6, 4};
            s[ax] = len;
            auto ref = build(s, [&](Idx i) {
              i[ax] += k * len;
              return in.v[ravel(i, {6, 4})];
            });
            expect_values(parts[k], s, ref, label(dev, dt, "sections"));
          }
        }
      }
    }
    // The parts are views of an evaluated input.
    array a = test::random_array({4, 3}, float32).first;
    a.eval();
    for (auto& part : split(a, 2, 0, dev)) {
      part.eval();
      EXPECT_EQ(part.buffer(), a.buffer());
    }
  }
  array a = zeros({6, 4});
  KILN_EXPECT_THROW_MSG(split(a, 4, 0), ValueError, "[split]");
  KILN_EXPECT_THROW_MSG(split(a, 0, 0), ValueError, "[split]");
  KILN_EXPECT_THROW_MSG(split(a, 2, 2), IndexError, "[split]");
  KILN_EXPECT_THROW_MSG(split(a, std::vector<int64_t>{1}, -3), IndexError, "[split]");
  KILN_EXPECT_THROW_MSG(split(array(1.f), 1, 0), IndexError, "[split]");
}

namespace {
// NumPy's reflect padding by mirroring repeatedly at the edges (without repeating them).
int64_t reflect_index(int64_t p, int64_t n) {
  if (n == 1) return 0;
  while (p < 0 || p >= n) {
    if (p < 0) p = -p;
    if (p >= n) p = 2 * (n - 1) - p;
  }
  return p;
}
}  // namespace

TEST(Structure, Pad) {
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int layout = 0; layout < 4; ++layout) {
        Input in = make_input({3, 4}, dt, layout);
        std::vector<std::vector<std::pair<int64_t, int64_t>>> cases = {
            {{1, 2}, {0, 3}}, {{2, 2}}, {{0, 0}, {4, 1}}, {{7, 5}, {3, 9}}};
        for (auto& widths : cases) {
          auto w = widths.size() == 1 ? std::vector<std::pair<int64_t, int64_t>>(2, widths[0]) : widths;
          Shape os{3 + w[0].first + w[0].second, 4 + w[1].first + w[1].second};
          Shape is{3, 4};
          for (PadMode mode : {PadMode::constant, PadMode::edge, PadMode::reflect}) {
            auto ref = build(os, [&](const Idx& i) {
              Idx j(2);
              for (int d = 0; d < 2; ++d) {
                int64_t p = i[d] - w[d].first;
                if (mode == PadMode::constant) {
                  if (p < 0 || p >= is[d]) return 1.0;
                  j[d] = p;
                } else if (mode == PadMode::edge) {
                  j[d] = std::clamp<int64_t>(p, 0, is[d] - 1);
                } else {
                  j[d] = reflect_index(p, is[d]);
                }
              }
              return in.v[ravel(j, is)];
            });
            std::string what = label(dev, dt, "mode " + std::to_string(static_cast<int>(mode)));
            expect_values(pad(in.a, widths, mode, array(1), dev), os, ref, what);
          }
        }
      }
    }
    // A fractional value, 1-d and 3-d inputs, a 0-d input (unchanged).
    auto [v, vv] = test::random_array({5}, float32);
    std::vector<double> ref(2, 2.5);
    ref.insert(ref.end(), vv.begin(), vv.end());
    ref.push_back(2.5);
    expect_values(pad(v, {{2, 1}}, PadMode::constant, 2.5, dev), {8}, ref, label(dev, float32, "1-d"));
    auto [c, cv] = test::random_array({2, 1, 3}, int16);
    auto cref = build({4, 3, 5}, [&](const Idx& i) {
      return cv[ravel({std::clamp<int64_t>(i[0] - 1, 0, 1), 0, std::clamp<int64_t>(i[2] - 1, 0, 2)}, {2, 1, 3})];
    });
    expect_values(pad(c, {{1, 1}}, PadMode::edge, 0, dev), {4, 3, 5}, cref, label(dev, int16, "3-d edge"));
    expect_values(pad(array(3.f), {}, PadMode::constant, 0, dev), {}, {3}, label(dev, float32, "0-d"));
    // Constant padding of an empty axis is fine.
    expect_values(pad(zeros({0, 2}), {{1, 0}, {0, 0}}, PadMode::constant, 7, dev), {1, 2}, {7, 7},
                  label(dev, float32, "empty axis"));
  }
  array a = zeros({3, 4});
  KILN_EXPECT_THROW_MSG(pad(a, {{1, -1}, {0, 0}}), ValueError, "[pad]");
  KILN_EXPECT_THROW_MSG(pad(a, {{1, 1}, {0, 0}, {0, 0}}), ValueError, "[pad]");
  KILN_EXPECT_THROW_MSG(pad(a, {{1, 1}}, PadMode::constant, zeros({2})), ValueError, "[pad]");
  KILN_EXPECT_THROW_MSG(pad(zeros({0, 2}), {{1, 0}, {0, 0}}, PadMode::edge), ValueError, "[pad]");
  KILN_EXPECT_THROW_MSG(pad(zeros({0, 2}), {{1, 0}, {0, 0}}, PadMode::reflect), ValueError, "[pad]");
}

TEST(Structure, Tile) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {bool_, int32, uint64, float16, float32, complex64}) {
      for (int layout = 0; layout < 4; ++layout) {
        Input in = make_input({2, 3}, dt, layout);
        for (Shape reps : std::vector<Shape>{{2, 3}, {2, 1, 3}, {2}, {0, 2}, {1, 1}, {}}) {
          size_t nd = std::max<size_t>(2, reps.size());
          Shape is{2, 3}, r = reps;
          is.insert(is.begin(), nd - 2, 1);
          r.insert(r.begin(), nd - r.size(), 1);
          Shape os(nd);
          for (size_t d = 0; d < nd; ++d) os[d] = is[d] * r[d];
          auto ref = build(os, [&](Idx i) {
            for (size_t d = 0; d < nd; ++d) i[d] %= is[d];
            return in.v[ravel(i, is)];
          });
          expect_values(tile(in.a, reps, dev), os, ref, label(dev, dt, "reps " + std::to_string(reps.size())));
        }
      }
    }
    expect_values(tile(array(4), {3}, dev), {3}, {4, 4, 4}, label(dev, int32, "0-d"));
    expect_values(tile(zeros({0, 2}), {2, 2}, dev), {0, 4}, {}, label(dev, float32, "empty"));
  }
  KILN_EXPECT_THROW_MSG(tile(zeros({2}), {-1}), ValueError, "[tile]");
}

TEST(Structure, Repeat) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {bool_, int8, uint16, bfloat16, float64, complex64}) {
      for (int layout = 0; layout < 4; ++layout) {
        Input in = make_input({2, 3}, dt, layout);
        for (int64_t r : {0, 1, 3}) {
          for (std::optional<int> axis : {std::optional<int>{}, std::optional<int>{0}, std::optional<int>{1},
                                          std::optional<int>{-1}}) {
            std::string what = label(dev, dt, "repeats " + std::to_string(r));
            array out = repeat(in.a, r, axis, dev);
            if (!axis) {
              auto ref = build({6 * r}, [&](const Idx& i) { return in.v[i[0] / r]; });
              expect_values(out, {6 * r}, ref, what);
              continue;
            }
            int ax = *axis < 0 ? *axis + 2 : *axis;
            Shape os{2, 3};
            os[ax] *= r;
            auto ref = build(os, [&](Idx i) {
              i[ax] /= r;
              return in.v[ravel(i, {2, 3})];
            });
            expect_values(out, os, ref, what);
          }
        }
      }
    }
    expect_values(repeat(array(5), 2, {}, dev), {2}, {5, 5}, label(dev, int32, "0-d"));
  }
  KILN_EXPECT_THROW_MSG(repeat(zeros({2}), -1), ValueError, "[repeat]");
  KILN_EXPECT_THROW_MSG(repeat(zeros({2}), 2, 1), IndexError, "[repeat]");
}

TEST(Structure, Roll) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {bool_, uint8, int32, float16, float32, complex64}) {
      for (int layout = 0; layout < 4; ++layout) {
        Input in = make_input({3, 4}, dt, layout);
        for (int64_t shift : {-5, 0, 2, 7, 13}) {
          std::string what = label(dev, dt, "shift " + std::to_string(shift));
          auto flat = build({12}, [&](const Idx& i) { return in.v[wrap(i[0] - shift, 12)]; });
          expect_values(roll(in.a, shift, {}, dev), {3, 4}, flat, what + " flat");
          for (int axis : {0, 1, -1}) {
            int ax = axis < 0 ? axis + 2 : axis;
            auto ref = build({3, 4}, [&](Idx i) {
              i[ax] = wrap(i[ax] - shift, ax == 0 ? 3 : 4);
              return in.v[ravel(i, {3, 4})];
            });
            expect_values(roll(in.a, shift, axis, dev), {3, 4}, ref, what);
          }
        }
        // Several axes; a repeated axis adds its shifts; one shift for all axes.
        auto multi = [&](int64_t s0, int64_t s1) {
          return build({3, 4}, [&](const Idx& i) { return in.v[ravel({wrap(i[0] - s0, 3), wrap(i[1] - s1, 4)}, {3, 4})]; });
        };
        expect_values(roll(in.a, Shape{1, -2}, {0, 1}, dev), {3, 4}, multi(1, -2), label(dev, dt, "multi"));
        expect_values(roll(in.a, Shape{1, 2}, {-1, 1}, dev), {3, 4}, multi(0, 3), label(dev, dt, "repeated"));
        expect_values(roll(in.a, Shape{5}, {0, 1}, dev), {3, 4}, multi(5, 5), label(dev, dt, "one shift"));
      }
    }
    expect_values(roll(zeros({0, 3}), 2, 0, dev), {0, 3}, {}, label(dev, float32, "empty"));
    expect_values(roll(array(2.f), 3, {}, dev), {}, {2}, label(dev, float32, "0-d"));
  }
  KILN_EXPECT_THROW_MSG(roll(zeros({2, 3}), 1, 2), IndexError, "[roll]");
  KILN_EXPECT_THROW_MSG(roll(zeros({2, 3}), Shape{1, 2, 3}, {0, 1}), ValueError, "[roll]");
  KILN_EXPECT_THROW_MSG(roll(zeros({2, 3}), Shape{1}, {0, 5}), IndexError, "[roll]");
}

TEST(Structure, Flip) {
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int layout = 0; layout < 4; ++layout) {
        Input in = make_input({3, 4, 2}, dt, layout);
        Shape is{3, 4, 2};
        for (auto axes : std::vector<std::optional<std::vector<int>>>{
                 {}, std::vector<int>{0}, std::vector<int>{-1, 1}, std::vector<int>{}}) {
          std::vector<bool> f(3, !axes);
          if (axes) {
            for (int a : *axes) f[a < 0 ? a + 3 : a] = true;
          }
          auto ref = build(is, [&](Idx i) {
            for (int d = 0; d < 3; ++d) {
              if (f[d]) i[d] = is[d] - 1 - i[d];
            }
            return in.v[ravel(i, is)];
          });
          expect_values(flip(in.a, axes, dev), is, ref, label(dev, dt));
        }
      }
    }
    // A view of an evaluated input; empty axes and 0-d inputs.
    array a = test::random_array({3, 2}, float32).first;
    a.eval();
    array f = flip(a, {}, dev);
    f.eval();
    EXPECT_EQ(f.buffer(), a.buffer());
    expect_values(flip(zeros({0, 2}), {}, dev), {0, 2}, {}, label(dev, float32, "empty"));
    expect_values(flip(array(2.f), {}, dev), {}, {2}, label(dev, float32, "0-d"));
  }
  KILN_EXPECT_THROW_MSG(flip(zeros({2, 3}), std::vector<int>{0, -2}), ValueError, "[flip]");
  KILN_EXPECT_THROW_MSG(flip(zeros({2, 3}), std::vector<int>{2}), IndexError, "[flip]");
}

TEST(Structure, TrilTriu) {
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int layout = 0; layout < 4; ++layout) {
        for (Shape s : std::vector<Shape>{{4, 5}, {2, 3, 3}, {0, 3}, {4}}) {
          Input in = make_input(s, dt, layout);
          Shape os = s.size() == 1 ? Shape{s[0], s[0]} : s;
          for (int k : {-2, -1, 0, 1, 3}) {
            for (bool lower : {true, false}) {
              auto ref = build(os, [&](const Idx& i) {
                int64_t r = i[i.size() - 2], c = i[i.size() - 1];
                bool keep = lower ? c - r <= k : c - r >= k;
                if (!keep) return 0.0;
                return s.size() == 1 ? in.v[c] : in.v[ravel(i, s)];
              });
              array out = lower ? tril(in.a, k, dev) : triu(in.a, k, dev);
              EXPECT_EQ(out.dtype(), dt);
              expect_values(out, os, ref, label(dev, dt, (lower ? "tril k " : "triu k ") + std::to_string(k)));
            }
          }
        }
      }
    }
  }
  KILN_EXPECT_THROW_MSG(tril(array(1.f)), ValueError, "[tril]");
  KILN_EXPECT_THROW_MSG(triu(array(1.f)), ValueError, "[triu]");
}

TEST(Structure, Diagonal) {
  for (auto dev : test::devices()) {
    for (Dtype dt : test::all_dtypes()) {
      for (int layout = 0; layout < 4; ++layout) {
        struct Case {
          Shape shape;
          int axis1, axis2;
        };
        for (auto c : std::vector<Case>{{{4, 5}, 0, 1}, {{4, 5}, 1, 0}, {{3, 4, 5}, 0, 2}, {{3, 4, 5}, -1, 1},
                                        {{3, 4, 5}, 2, -3}, {{0, 3}, 0, 1}}) {
          Input in = make_input(c.shape, dt, layout);
          int nd = static_cast<int>(c.shape.size());
          int a1 = c.axis1 < 0 ? c.axis1 + nd : c.axis1, a2 = c.axis2 < 0 ? c.axis2 + nd : c.axis2;
          for (int off : {-6, -2, -1, 0, 1, 3, 7}) {
            int64_t n1 = c.shape[a1], n2 = c.shape[a2];
            int64_t len = std::max<int64_t>(0, std::min(n1 - std::max(0, -off), n2 - std::max(0, off)));
            Shape os;
            for (int d = 0; d < nd; ++d) {
              if (d != a1 && d != a2) os.push_back(c.shape[d]);
            }
            os.push_back(len);
            auto ref = build(os, [&](const Idx& i) {
              Idx j(nd);
              size_t k = 0;
              for (int d = 0; d < nd; ++d) {
                if (d != a1 && d != a2) j[d] = i[k++];
              }
              j[a1] = i.back() + std::max(0, -off);
              j[a2] = i.back() + std::max(0, off);
              return in.v[ravel(j, c.shape)];
            });
            expect_values(diagonal(in.a, off, c.axis1, c.axis2, dev), os, ref,
                          label(dev, dt, "offset " + std::to_string(off)));
          }
        }
      }
    }
    // A view of evaluated inputs, contiguous or not: no copy.
    for (int layout = 0; layout < 3; ++layout) {
      Input in = make_input({4, 5}, float32, layout);
      in.a.eval();
      array d = diagonal(in.a, 1, 0, 1, dev);
      d.eval();
      EXPECT_EQ(d.buffer(), in.a.buffer()) << "layout " << layout;
    }
  }
  KILN_EXPECT_THROW_MSG(diagonal(zeros({3})), ValueError, "[diagonal]");
  KILN_EXPECT_THROW_MSG(diagonal(zeros({3, 3}), 0, 1, -1), ValueError, "[diagonal]");
  KILN_EXPECT_THROW_MSG(diagonal(zeros({3, 3}), 0, 0, 2), IndexError, "[diagonal]");
}
