// sort, argsort, partition, argpartition and topk against std::stable_sort references on fresh
// random data with many repeats, NaNs, infinities and signed zeros, on every device.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tests/test_utils.h"

using namespace kiln;

namespace {

// NumPy's order: NaNs after every number, and equal to each other.
bool nan_less(double a, double b) { return std::isnan(b) ? !std::isnan(a) : a < b; }

bool same_value(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// Flat row-major indices of each row along `axis`, rows in row-major order of the other axes.
std::vector<std::vector<int64_t>> rows_along(const Shape& shape, int axis) {
  Strides st = row_major_strides(shape);
  int64_t n = shape[axis], total = shape_size(shape);
  std::vector<std::vector<int64_t>> rows;
  if (n == 0) return rows;
  for (int64_t i = 0; i < total; ++i) {
    if ((i / st[axis]) % n != 0) continue;  // i starts a row
    std::vector<int64_t> row(n);
    for (int64_t j = 0; j < n; ++j) row[j] = i + j * st[axis];
    rows.push_back(std::move(row));
  }
  return rows;
}

// Random values with many repeats; float dtypes also get NaNs, infinities and -0.
std::pair<array, std::vector<double>> sort_input(const Shape& shape, Dtype dt, bool wide = false) {
  int64_t n = shape_size(shape);
  std::vector<double> v;
  if (dt == bool_) {
    v = test::int_values(n, 0, 1);
  } else if (is_integer(dt)) {
    int64_t span = wide ? (size_of(dt) == 1 ? 127 : size_of(dt) == 2 ? 30000 : int64_t{1} << 40) : 6;
    v = test::int_values(n, is_unsigned(dt) ? 0 : -span, span);
  } else {
    v = wide ? test::uniform_values(n, -1000, 1000) : test::int_values(n, -12, 12);
    if (!wide) {
      for (auto& x : v) x /= 4;
    }
    auto u = test::uniform_values(n, 0, 1);
    for (int64_t i = 0; i < n; ++i) {
      if (u[i] < 0.06) v[i] = NAN;
      else if (u[i] < 0.08) v[i] = INFINITY;
      else if (u[i] < 0.10) v[i] = -INFINITY;
      else if (u[i] < 0.13) v[i] = -0.0;
      else if (u[i] < 0.16) v[i] = 0.0;
    }
  }
  array a = test::from_doubles(v, shape, dt);
  return {a, test::to_doubles(a)};
}

// Stable NaN-last order of row values: the reference for argsort (and, by value, sort).
std::vector<int64_t> stable_order(const std::vector<double>& vals) {
  std::vector<int64_t> idx(vals.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return nan_less(vals[a], vals[b]); });
  return idx;
}

std::vector<double> gather(const std::vector<double>& v, const std::vector<int64_t>& idx) {
  std::vector<double> out;
  for (auto i : idx) out.push_back(v[i]);
  return out;
}

// Checks sort and argsort of x along axis (nullopt: flattened) against the references.
void check_sort(const array& x, std::optional<int> axis, const Device& dev, const std::string& what) {
  array xs = axis ? x : flatten(x);
  int ax = axis ? (*axis < 0 ? *axis + x.ndim() : *axis) : 0;
  std::vector<double> in = test::to_doubles(xs);
  array s = sort(x, axis, dev), as = argsort(x, axis, dev);
  EXPECT_EQ(s.dtype(), x.dtype()) << what;
  EXPECT_EQ(as.dtype(), uint32) << what;
  ASSERT_EQ(s.shape(), xs.shape()) << what;
  ASSERT_EQ(as.shape(), xs.shape()) << what;
  std::vector<double> sv = test::to_doubles(s), av = test::to_doubles(as);
  int bad_values = 0, bad_indices = 0;
  for (auto& row : rows_along(xs.shape(), ax)) {
    std::vector<double> vals = gather(in, row);
    auto order = stable_order(vals);
    for (size_t j = 0; j < row.size(); ++j) {
      bad_values += !same_value(sv[row[j]], vals[order[j]]);
      bad_indices += av[row[j]] != static_cast<double>(order[j]);
    }
  }
  EXPECT_EQ(bad_values, 0) << "sort " << what;
  EXPECT_EQ(bad_indices, 0) << "argsort " << what;
}

// NumPy's partition contract for one row of values: position kth holds the sorted kth value, no
// value before it is greater and none after it is smaller; and the row is a permutation.
bool partitioned(const std::vector<double>& out, std::vector<double> in, int64_t kth) {
  std::vector<double> o = out;
  std::stable_sort(in.begin(), in.end(), nan_less);
  std::stable_sort(o.begin(), o.end(), nan_less);
  for (size_t i = 0; i < in.size(); ++i) {
    if (!same_value(in[i], o[i])) return false;
  }
  if (!same_value(out[kth], in[kth])) return false;
  for (int64_t i = 0; i < static_cast<int64_t>(out.size()); ++i) {
    if (i < kth && nan_less(out[kth], out[i])) return false;
    if (i > kth && nan_less(out[i], out[kth])) return false;
  }
  return true;
}

void check_partition(const array& x, int64_t kth, int axis, const Device& dev, const std::string& what) {
  int ax = axis < 0 ? axis + x.ndim() : axis;
  int64_t k = kth < 0 ? kth + x.shape(ax) : kth;
  std::vector<double> in = test::to_doubles(x);
  array p = partition(x, kth, axis, dev), ap = argpartition(x, kth, axis, dev);
  EXPECT_EQ(p.dtype(), x.dtype()) << what;
  EXPECT_EQ(ap.dtype(), uint32) << what;
  ASSERT_EQ(p.shape(), x.shape()) << what;
  std::vector<double> pv = test::to_doubles(p), av = test::to_doubles(ap);
  int bad = 0, bad_arg = 0;
  for (auto& row : rows_along(x.shape(), ax)) {
    std::vector<double> vals = gather(in, row);
    bad += !partitioned(gather(pv, row), vals, k);
    std::vector<int64_t> idx;
    for (auto i : row) idx.push_back(static_cast<int64_t>(av[i]));
    std::vector<int64_t> sorted_idx = idx;
    std::sort(sorted_idx.begin(), sorted_idx.end());
    bool perm = true;
    for (size_t j = 0; j < sorted_idx.size(); ++j) perm &= sorted_idx[j] == static_cast<int64_t>(j);
    bad_arg += !perm || !partitioned(gather(vals, idx), vals, k);
  }
  EXPECT_EQ(bad, 0) << "partition kth " << kth << " " << what;
  EXPECT_EQ(bad_arg, 0) << "argpartition kth " << kth << " " << what;
}

void check_topk(const array& x, int k, int axis, const Device& dev, const std::string& what) {
  int ax = axis < 0 ? axis + x.ndim() : axis;
  std::vector<double> in = test::to_doubles(x);
  array t = topk(x, k, axis, dev);
  Shape expect = x.shape();
  expect[ax] = k;
  ASSERT_EQ(t.shape(), expect) << what;
  EXPECT_EQ(t.dtype(), x.dtype()) << what;
  std::vector<double> tv = test::to_doubles(t);
  auto in_rows = rows_along(x.shape(), ax), out_rows = rows_along(t.shape(), ax);
  int bad = 0;
  for (size_t r = 0; r < out_rows.size(); ++r) {
    std::vector<double> vals = gather(in, in_rows[r]);
    std::stable_sort(vals.begin(), vals.end(), nan_less);
    for (int j = 0; j < k; ++j) bad += !same_value(tv[out_rows[r][j]], vals[vals.size() - 1 - j]);
  }
  EXPECT_EQ(bad, 0) << "topk k " << k << " " << what;
}

std::string label(const Device& dev, Dtype dt, const Shape& shape, int axis) {
  std::ostringstream os;
  os << test::device_name(dev) << " " << dt << " shape " << shape << " axis " << axis;
  return os.str();
}

std::vector<Dtype> real_dtypes() {
  std::vector<Dtype> d{bool_};
  for (auto t : test::int_dtypes()) d.push_back(t);
  for (auto t : test::float_dtypes()) d.push_back(t);
  return d;
}

}  // namespace

TEST(Sort, MatchesReferenceEveryDtypeAndAxis) {
  test::note_gpu_skip();
  for (auto dev : test::devices()) {
    for (Dtype dt : real_dtypes()) {
      for (Shape shape : {Shape{53}, Shape{7, 19}, Shape{4, 5, 6}}) {
        for (int axis = -static_cast<int>(shape.size()); axis < static_cast<int>(shape.size()); ++axis) {
          for (bool wide : {false, true}) {
            auto [a, v] = sort_input(shape, dt, wide);
            check_sort(a, axis, dev, label(dev, dt, shape, axis) + (wide ? " wide" : ""));
          }
        }
      }
    }
  }
}

TEST(Sort, LongRowsAndManyRows) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {float32, int64, float16, uint8}) {
      for (Shape shape : {Shape{3, 5000}, Shape{2000, 3}, Shape{2, 70000}}) {
        auto [a, v] = sort_input(shape, dt, true);
        check_sort(a, -1, dev, label(dev, dt, shape, -1));
        check_partition(a, shape.back() / 2, -1, dev, label(dev, dt, shape, -1));
      }
    }
  }
}

TEST(Sort, FlattenedWhenAxisIsEmpty) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {float32, int16, bfloat16}) {
      auto [a, v] = sort_input({6, 7}, dt);
      check_sort(transpose(a), std::nullopt, dev, label(dev, dt, {7, 6}, -1) + " flattened");
      array s = sort(array(3.5f), std::nullopt, dev);
      EXPECT_EQ(s.shape(), Shape{1});
      EXPECT_EQ(s.item<float>(), 3.5f);
    }
  }
}

TEST(Sort, NonContiguousInputs) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {float32, float64, int32, bfloat16, bool_}) {
      auto [a, v] = sort_input({6, 10, 4}, dt);
      array t = transpose(a, {2, 0, 1});
      array sl = slice(a, {1, 0, 0}, {6, 10, 4}, {2, 3, 1});
      array rev = slice(a, {5, 9, 3}, {-7, -11, -5}, {-1, -2, -1});
      auto [row, rv] = sort_input({1, 9}, dt);
      array bc = broadcast_to(row, {5, 9});
      for (int axis : {0, 1, -1}) {
        check_sort(t, axis, dev, label(dev, dt, t.shape(), axis) + " transposed");
        check_sort(sl, axis, dev, label(dev, dt, sl.shape(), axis) + " sliced");
        check_sort(rev, axis, dev, label(dev, dt, rev.shape(), axis) + " reversed");
        check_partition(t, 1, axis, dev, label(dev, dt, t.shape(), axis) + " transposed");
        check_topk(sl, 2, axis, dev, label(dev, dt, sl.shape(), axis) + " sliced");
      }
      check_sort(bc, 0, dev, label(dev, dt, bc.shape(), 0) + " broadcast");
      check_sort(bc, 1, dev, label(dev, dt, bc.shape(), 1) + " broadcast");
    }
  }
}

TEST(Sort, ArgsortIsStable) {
  for (auto dev : test::devices()) {
    // Few distinct keys, zeros of both signs and NaNs of both signs: ties everywhere.
    std::vector<double> v;
    for (int i = 0; i < 300; ++i) {
      const double pool[] = {1.0, -0.0, 0.0, NAN, -NAN, 2.0, -1.0};
      v.push_back(pool[static_cast<int>(test::int_values(1, 0, 6)[0])]);
    }
    for (Dtype dt : {float32, float16, float64, bfloat16}) {
      array a = test::from_doubles(v, {300}, dt);
      check_sort(a, 0, dev, label(dev, dt, {300}, 0) + " ties");
      // The argsort of an all-equal row is the identity.
      array idx = argsort(zeros({100}, dt), 0, dev);
      auto got = idx.to_vector<uint32_t>();
      for (uint32_t i = 0; i < 100; ++i) EXPECT_EQ(got[i], i);
    }
    auto [ints, iv] = sort_input({400}, int8);
    check_sort(ints, 0, dev, "int8 ties");
  }
}

TEST(Sort, PartitionContract) {
  for (auto dev : test::devices()) {
    for (Dtype dt : real_dtypes()) {
      for (Shape shape : {Shape{41}, Shape{6, 13}}) {
        int nd = static_cast<int>(shape.size());
        for (int axis = -nd; axis < nd; ++axis) {
          int64_t n = shape[axis < 0 ? axis + nd : axis];
          auto [a, v] = sort_input(shape, dt);
          for (int64_t kth : {int64_t{0}, n / 3, n - 1, int64_t{-1}, -n}) {
            check_partition(a, kth, axis, dev, label(dev, dt, shape, axis));
          }
        }
      }
    }
  }
}

TEST(Sort, TopKDescending) {
  for (auto dev : test::devices()) {
    for (Dtype dt : real_dtypes()) {
      for (Shape shape : {Shape{40}, Shape{5, 12}}) {
        int nd = static_cast<int>(shape.size());
        for (int axis = -nd; axis < nd; ++axis) {
          int n = static_cast<int>(shape[axis < 0 ? axis + nd : axis]);
          auto [a, v] = sort_input(shape, dt, true);
          for (int k : {0, 1, 3, n - 1, n}) check_topk(a, k, axis, dev, label(dev, dt, shape, axis));
        }
      }
    }
  }
}

TEST(Sort, EmptyArrays) {
  for (auto dev : test::devices()) {
    for (Dtype dt : {float32, int32, bool_}) {
      for (Shape shape : {Shape{0}, Shape{3, 0}, Shape{0, 4}, Shape{2, 0, 3}}) {
        array a = zeros(shape, dt);
        for (int axis = 0; axis < static_cast<int>(shape.size()); ++axis) {
          array s = sort(a, axis, dev), as = argsort(a, axis, dev);
          eval(s, as);
          EXPECT_EQ(s.shape(), shape);
          EXPECT_EQ(as.shape(), shape);
          EXPECT_EQ(as.dtype(), uint32);
          array t = topk(a, 0, axis, dev);
          Shape ts = shape;
          ts[axis] = 0;
          EXPECT_EQ(t.shape(), ts);
          t.eval();
          if (shape[axis] > 0) {
            array p = partition(a, 0, axis, dev);
            p.eval();
            EXPECT_EQ(p.shape(), shape);
          }
        }
        EXPECT_EQ(sort(a, std::nullopt, dev).shape(), Shape{0});
      }
    }
  }
}

TEST(Sort, Errors) {
  array c = astype(array({1.f, 2.f}), complex64);
  KILN_EXPECT_THROW_MSG(sort(c), TypeError, "[sort]");
  KILN_EXPECT_THROW_MSG(argsort(c), TypeError, "[argsort]");
  KILN_EXPECT_THROW_MSG(partition(c, 0), TypeError, "[partition]");
  KILN_EXPECT_THROW_MSG(argpartition(c, 0), TypeError, "[argpartition]");
  KILN_EXPECT_THROW_MSG(topk(c, 1), TypeError, "[topk]");
  array a = zeros({3, 4});
  KILN_EXPECT_THROW_MSG(sort(a, 2), IndexError, "[sort]");
  KILN_EXPECT_THROW_MSG(argsort(a, -3), IndexError, "[argsort]");
  KILN_EXPECT_THROW_MSG(sort(array(1.f)), IndexError, "[sort]");
  KILN_EXPECT_THROW_MSG(partition(a, 4, 1), ValueError, "[partition]");
  KILN_EXPECT_THROW_MSG(partition(a, -5, 1), ValueError, "[partition]");
  KILN_EXPECT_THROW_MSG(argpartition(a, 3, 0), ValueError, "[argpartition]");
  KILN_EXPECT_THROW_MSG(partition(a, 0, 5), IndexError, "[partition]");
  KILN_EXPECT_THROW_MSG(partition(zeros({0}), 0), ValueError, "[partition]");
  KILN_EXPECT_THROW_MSG(topk(a, 5), ValueError, "[topk]");
  KILN_EXPECT_THROW_MSG(topk(a, -1), ValueError, "[topk]");
  KILN_EXPECT_THROW_MSG(topk(a, 1, 2), IndexError, "[topk]");
}
