// matmul, addmm, outer, inner, tensordot and einsum against references computed here in
// complex<double> (exact for the integer cases), on fresh random data, on every device.
#include <complex>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "kiln/backend/cpu/parallel.h"
#include "kiln/primitive.h"
#include "test_utils.h"

using namespace kiln;

namespace {

using cd = std::complex<double>;

// An input and its exact values (row-major), as complex numbers whatever its dtype.
struct Input {
  array x;
  std::vector<cd> v;
};

std::vector<cd> values(const array& x) {
  std::vector<cd> out;
  if (x.dtype() == complex64) {
    for (auto c : array(x).to_vector<complex64_t>()) out.emplace_back(c.re, c.im);
  } else {
    for (double d : test::to_doubles(x)) out.emplace_back(d, 0.0);
  }
  return out;
}

// Random input of dtype; integers in [-2, 2] (unsigned [0, 2]) keep every sum here in range.
Input make(const Shape& shape, Dtype dtype) {
  if (dtype == complex64) {
    int64_t n = shape_size(shape);
    auto re = test::uniform_values(n, -2, 2), im = test::uniform_values(n, -2, 2);
    std::vector<complex64_t> c(n);
    for (int64_t i = 0; i < n; ++i) c[i] = complex64_t(static_cast<float>(re[i]), static_cast<float>(im[i]));
    array x(c, shape);
    return {x, values(x)};
  }
  auto [x, v] = test::random_array(shape, dtype, -2, 2);
  return {x, values(x)};
}

// A view of an input (transposed, sliced, broadcast): its values are read back through the view.
Input view_of(const array& x) { return {x, values(x)}; }

std::vector<double> interleave(const std::vector<cd>& v) {
  std::vector<double> out;
  for (auto c : v) {
    out.push_back(c.real());
    out.push_back(c.imag());
  }
  return out;
}

// NumPy's matmul on values: 1-d promotion, broadcast batches.
std::vector<cd> ref_matmul(const std::vector<cd>& a, Shape sa, const std::vector<cd>& b, Shape sb, Shape& out_shape) {
  bool av = sa.size() == 1, bv = sb.size() == 1;
  if (av) sa.insert(sa.begin(), 1);
  if (bv) sb.push_back(1);
  int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch = broadcast_shapes(ba, bb);
  int64_t nb = shape_size(batch);
  std::vector<cd> out(static_cast<size_t>(nb * M * N));
  auto offset = [&](const Shape& s, int64_t i) {
    // Batch offset (in matrices) of batch index i for an operand of batch shape s.
    int64_t off = 0, stride = 1;
    for (size_t d = batch.size(); d-- > 0;) {
      int64_t idx = i % batch[d];
      i /= batch[d];
      size_t lead = batch.size() - s.size();
      if (d >= lead) {
        int64_t dim = s[d - lead];
        off += (dim == 1 ? 0 : idx) * stride;
        stride *= dim;
      }
    }
    return off;
  };
  for (int64_t t = 0; t < nb; ++t) {
    int64_t oa = offset(ba, t) * M * K, ob = offset(bb, t) * K * N;
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < N; ++j) {
        cd s = 0;
        for (int64_t k = 0; k < K; ++k) s += a[oa + i * K + k] * b[ob + k * N + j];
        out[(t * M + i) * N + j] = s;
      }
    }
  }
  out_shape = batch;
  if (!av) out_shape.push_back(M);
  if (!bv) out_shape.push_back(N);
  return out;
}

std::vector<cd> as_bool(std::vector<cd> v) {
  for (auto& c : v) c = c != cd(0) ? 1.0 : 0.0;
  return v;
}

void expect_result(const array& out, const std::vector<cd>& ref, const Shape& shape, Dtype dtype,
                   const std::string& what) {
  ASSERT_EQ(out.shape(), shape) << what;
  EXPECT_EQ(out.dtype(), dtype) << what;
  std::vector<cd> r = dtype == bool_ ? as_bool(ref) : ref;
  KILN_EXPECT_CLOSE(interleave(values(out)), interleave(r), dtype, what);
}

std::string where(const Device& d, Dtype t, const std::string& case_name) {
  std::ostringstream os;
  os << test::device_name(d) << " " << t << " " << case_name;
  return os.str();
}

void check_matmul(const Input& a, const Input& b, Dtype dtype, const std::string& what) {
  Shape shape;
  auto ref = ref_matmul(a.v, a.x.shape(), b.v, b.x.shape(), shape);
  for (auto& dev : test::devices()) {
    expect_result(matmul(a.x, b.x, dev), ref, shape, dtype, where(dev, dtype, what));
  }
}

std::vector<Dtype> matmul_dtypes() {
  std::vector<Dtype> d = test::float_dtypes();
  d.push_back(complex64);
  for (auto t : test::int_dtypes()) d.push_back(t);
  d.push_back(bool_);
  return d;
}

const std::vector<std::pair<Shape, Shape>>& product_shapes() {
  static std::vector<std::pair<Shape, Shape>> s{
      {{3, 4}, {4, 5}},
      {{4}, {4, 5}},
      {{3, 4}, {4}},
      {{4}, {4}},
      {{1, 1}, {1, 1}},
      {{2, 3, 4}, {4, 5}},
      {{3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {3, 4, 5}},
      {{1, 3, 4}, {2, 4, 5}},
      {{2, 3, 4}, {2, 4, 5}},
      {{4}, {2, 4, 5}},
      {{2, 3, 4}, {4}},
      {{2, 2, 1, 4}, {2, 4, 1}},
      {{5, 1}, {1, 6}},
      {{2, 3, 1, 4}, {1, 3, 4, 3}},
  };
  return s;
}

}  // namespace

TEST(Linalg, MatmulShapesAllDtypes) {
  test::note_gpu_skip();
  for (Dtype dt : matmul_dtypes()) {
    for (auto& [sa, sb] : product_shapes()) {
      std::ostringstream os;
      os << sa << " @ " << sb;
      check_matmul(make(sa, dt), make(sb, dt), dt, os.str());
    }
  }
}

TEST(Linalg, MatmulPromotesDtypes) {
  auto a = make({3, 4}, int32), b = make({4, 2}, float32);
  check_matmul(a, b, float32, "int32 @ float32");
  auto c = make({3, 4}, bfloat16), d = make({4, 2}, float16);
  check_matmul(c, d, float32, "bfloat16 @ float16");
}

// Operands whose last two axes are transposed views: BLAS reads them in place.
TEST(Linalg, MatmulTransposedOperands) {
  for (Dtype dt : {float32, float64, complex64, bfloat16, float16, int32}) {
    auto at = make({7, 5}, dt), bt = make({6, 7}, dt);
    Input a = view_of(transpose(at.x)), b = view_of(transpose(bt.x));  // (5, 7) and (7, 6)
    auto a2 = make({5, 7}, dt), b2 = make({7, 6}, dt);
    check_matmul(a, b2, dt, "a^T @ b");
    check_matmul(a2, b, dt, "a @ b^T");
    check_matmul(a, b, dt, "a^T @ b^T");
    auto bat = make({3, 7, 5}, dt), bbt = make({3, 6, 7}, dt);
    Input ba = view_of(swapaxes(bat.x, -1, -2)), bb = view_of(swapaxes(bbt.x, -1, -2));
    check_matmul(ba, bb, dt, "batched a^T @ b^T");
    check_matmul(ba, b2, dt, "batched a^T @ shared b");
    // The batch axis innermost in memory: (B, M, K) with strides (1, 21, 3) has no BLAS layout.
    auto perm = make({5, 7, 3}, dt);
    Input pa = view_of(transpose(perm.x, {2, 0, 1}));
    check_matmul(pa, b2, dt, "batch-innermost a");
  }
}

// Like check_matmul, with the error measured against the product of |a| and |b|: a product with
// one output (N = 1) can cancel to almost nothing while its rounding error does not.
void check_matmul_abs(const Input& a, const Input& b, Dtype dtype, const std::string& what) {
  Shape shape, abs_shape;
  auto ref = ref_matmul(a.v, a.x.shape(), b.v, b.x.shape(), shape);
  auto av = a.v, bv = b.v;
  for (auto& v : av) v = std::abs(v);
  for (auto& v : bv) v = std::abs(v);
  auto ref_abs = ref_matmul(av, a.x.shape(), bv, b.x.shape(), abs_shape);
  for (auto& dev : test::devices()) {
    array out = matmul(a.x, b.x, dev);
    std::string w = where(dev, dtype, what);
    ASSERT_EQ(out.shape(), shape) << w;
    EXPECT_EQ(out.dtype(), dtype) << w;
    auto got = values(out);
    ASSERT_EQ(got.size(), ref.size()) << w;
    double diff = 0, mag = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      diff += std::norm(got[i] - ref[i]);
      mag += std::norm(ref_abs[i]);
    }
    EXPECT_LE(std::sqrt(diff), test::tolerance(dtype) * std::sqrt(mag)) << w;
  }
}

// Decoding's products: a few rows times a weight stored (N, K) and read transposed, as Linear
// does; on CUDA these take kiln's matrix-vector kernels (M <= 8, K a multiple of the vector
// width, 16-byte alignment) and cuBLAS otherwise, so both sides of each condition are covered.
TEST(Linalg, MatmulDecodeShapes) {
  for (Dtype dt : {float32, bfloat16, float16}) {
    for (int64_t M : {1, 2, 3, 5, 8, 9}) {
      for (int64_t K : {64, 200, 1032}) {
        for (int64_t N : {1, 7, 300}) {
          auto w = make({N, K}, dt);
          Input wt = view_of(transpose(w.x));
          auto a = make({1, M, K}, dt);
          std::string what = "decode M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N);
          check_matmul_abs(a, wt, dt, what);
        }
      }
    }
    // Rows of a fused weight (a row-slice view) and a column slice of activations (a strided a).
    auto fused = make({96, 128}, dt);
    Input part = view_of(transpose(slice(fused.x, {32, 0}, {80, 128})));  // W rows 32..79
    auto wide = make({2, 256}, dt);
    Input cols = view_of(slice(wide.x, {0, 64}, {2, 192}));  // a with row stride 256
    check_matmul_abs(cols, part, dt, "decode slices");
    // A misaligned start (offset of one element) falls back.
    auto odd = make({1, 129}, dt);
    Input shifted = view_of(slice(odd.x, {0, 1}, {1, 129}));
    check_matmul_abs(shifted, part, dt, "decode misaligned a");
  }
}

// The front end adds no copies for transposes and broadcasts; the kernels read them in place.
TEST(Linalg, MatmulGraphHasNoCopies) {
  auto a = make({4, 8, 3}, float32), b = make({5, 8}, float32);
  array out = matmul(swapaxes(a.x, -1, -2), transpose(b.x));
  std::vector<array> stack{out};
  while (!stack.empty()) {
    array x = stack.back();
    stack.pop_back();
    if (!x.has_primitive()) continue;
    EXPECT_STRNE(x.primitive().name(), "copy");
    for (auto& in : x.inputs()) stack.push_back(in);
  }
}

// Layouts BLAS cannot take (steps in the last axes, negative steps, broadcast rows, batch axes
// that do not merge) are copied by the kernel and still give the right answer.
TEST(Linalg, MatmulStridedLayouts) {
  for (Dtype dt : {float32, float64, complex64, bfloat16, int16}) {
    auto big = make({6, 10}, dt), b = make({5, 3}, dt);
    Input a = view_of(slice(big.x, {0, 0}, {6, 10}, {1, 2}));  // (6, 5), column step 2
    check_matmul(a, b, dt, "column-stepped a");
    Input an = view_of(slice(big.x, {5, 9}, {-7, -11}, {-1, -2}));  // negative steps
    check_matmul(an, b, dt, "negative-step a");
    Input off = view_of(slice(big.x, {1, 1}, {6, 6}));  // (5, 5) read in place from an odd offset
    check_matmul(off, b, dt, "offset rows");
    check_matmul(make({2, 5}, dt), off, dt, "offset b");
    auto row = make({1, 5}, dt);
    Input ab = view_of(broadcast_to(row.x, {4, 5}));  // every row the same (stride 0)
    check_matmul(ab, b, dt, "broadcast rows");
    auto col = make({5, 1}, dt);
    Input bb = view_of(broadcast_to(col.x, {5, 3}));
    check_matmul(make({2, 5}, dt), bb, dt, "broadcast columns");
    auto b4 = make({3, 2, 4, 5}, dt);
    Input mixed = view_of(transpose(b4.x, {1, 0, 2, 3}));  // (2, 3, 4, 5), batch axes swapped
    check_matmul(mixed, b, dt, "swapped batch axes");
    check_matmul(make({2, 3, 6, 4}, dt), mixed, dt, "swapped batch axes on the right");
    auto m = make({2, 5}, dt);
    Input bc = view_of(broadcast_to(reshape(b.x, {1, 5, 3}), {4, 5, 3}));
    check_matmul(m, bc, dt, "stride-0 batch on the right");
    auto s3 = make({4, 5, 6}, dt);
    Input sl = view_of(slice(s3.x, {0, 0, 0}, {4, 5, 6}, {2, 1, 1}));  // every other batch entry
    check_matmul(make({2, 3, 5}, dt), sl, dt, "stepped batch");
    check_matmul(sl, make({6, 2}, dt), dt, "stepped batch, shared b");
  }
}

TEST(Linalg, MatmulEmpty) {
  for (Dtype dt : {float32, float64, bfloat16, float16, complex64, int32, bool_}) {
    check_matmul(make({3, 0}, dt), make({0, 4}, dt), dt, "K = 0");
    check_matmul(make({2, 3, 0}, dt), make({0, 4}, dt), dt, "batched K = 0");
    check_matmul(make({0}, dt), make({0}, dt), dt, "empty vectors");
    check_matmul(make({0, 4}, dt), make({4, 5}, dt), dt, "M = 0");
    check_matmul(make({3, 4}, dt), make({4, 0}, dt), dt, "N = 0");
    check_matmul(make({0, 3, 4}, dt), make({4, 5}, dt), dt, "no batch entries");
  }
}

TEST(Linalg, MatmulLarge) {
  for (Dtype dt : {float32, float64, bfloat16, float16, complex64, int32}) {
    auto a = make({130, 257}, dt), b = make({257, 65}, dt);
    check_matmul(a, b, dt, "130x257 @ 257x65");
    Input at = view_of(transpose(make({257, 130}, dt).x));
    check_matmul(at, b, dt, "130x257 (transposed) @ 257x65");
    check_matmul(make({3, 40, 257}, dt), b, dt, "(3, 40, 257) @ 257x65");
  }
  // Many small products spread over threads.
  check_matmul(make({64, 5, 6}, float32), make({64, 6, 7}, float32), float32, "64 small products");
  check_matmul(make({64, 5, 6}, bfloat16), make({6, 7}, bfloat16), bfloat16, "64 small bf16 products");
}

// float16 / bfloat16 on the CPU go through sgemm a panel of b's columns at a time (87 columns
// for K = 3000): full and partial panels, b stored either way, a residual, a shared b.
TEST(Linalg, MatmulHalfPanels) {
  for (Dtype dt : {bfloat16, float16}) {
    auto a = make({12, 3000}, dt), b = make({3000, 200}, dt);
    check_matmul(a, b, dt, "12x3000 @ 3000x200");
    check_matmul(a, view_of(transpose(make({200, 3000}, dt).x)), dt, "12x3000 @ (200x3000)^T");
    // The batch's rows are not evenly strided across entries, so it is not folded into M.
    Input batched = view_of(transpose(make({12, 2, 3000}, dt).x, {1, 0, 2}));
    check_matmul(batched, b, dt, "(2, 12, 3000) (rows of the entries interleaved) @ 3000x200");
    auto c = make({12, 200}, dt);
    Shape shape;
    auto prod = ref_matmul(a.v, a.x.shape(), b.v, b.x.shape(), shape);
    std::vector<cd> ref(prod.size());
    for (size_t i = 0; i < ref.size(); ++i) ref[i] = 0.5 * prod[i] - 2.0 * c.v[i];
    for (auto& dev : test::devices()) {
      expect_result(addmm(c.x, a.x, b.x, 0.5, -2.0, dev), ref, shape, dt, where(dev, dt, "addmm panels"));
    }
  }
}

// The CPU splits big products into a block of rows or columns per thread: with more threads
// than 8-long blocks, with blocks that do not divide the side, operands either way round.
TEST(Linalg, MatmulSplitOverManyThreads) {
  struct Threads {
    int before = cpu::num_threads();
    ~Threads() { cpu::set_num_threads(before); }
  } restore;
  for (int threads : {3, 64}) {
    cpu::set_num_threads(threads);
    for (Dtype dt : {float32, float64}) {
      const std::string t = std::to_string(threads) + " threads ";
      check_matmul(make({48, 256}, dt), make({256, 48}, dt), dt, t + "48x256 @ 256x48");
      check_matmul(make({301, 700}, dt), make({700, 20}, dt), dt, t + "301x700 @ 700x20 (rows)");
      check_matmul(view_of(transpose(make({700, 301}, dt).x)), make({700, 20}, dt), dt, t + "rows, a transposed");
      check_matmul(make({20, 700}, dt), make({700, 299}, dt), dt, t + "20x700 @ 700x299 (columns)");
      check_matmul(make({20, 700}, dt), view_of(transpose(make({299, 700}, dt).x)), dt, t + "columns, b transposed");
    }
  }
}

TEST(Linalg, MatmulErrors) {
  array s(1.0f), m = zeros({2, 3}), v = zeros({4});
  KILN_EXPECT_THROW_MSG(matmul(s, m), ValueError, "[matmul]");
  KILN_EXPECT_THROW_MSG(matmul(m, s), ValueError, "[matmul]");
  KILN_EXPECT_THROW_MSG(matmul(m, zeros({2, 3})), ValueError, "[matmul] inner dimensions");
  KILN_EXPECT_THROW_MSG(matmul(v, m), ValueError, "[matmul] inner dimensions");
  KILN_EXPECT_THROW_MSG(matmul(m, v), ValueError, "[matmul] inner dimensions");
  KILN_EXPECT_THROW_MSG(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})), ValueError, "[matmul]");
}

TEST(Linalg, AddMM) {
  for (Dtype dt : {float32, float64, bfloat16, float16, complex64, int32}) {
    for (auto& [alpha, beta] : std::vector<std::pair<double, double>>{{1, 1}, {0.5, -2}, {2, 0}, {-1, 1}}) {
      if (!is_inexact(dt) && (alpha != std::floor(alpha) || beta != std::floor(beta))) continue;
      for (auto& [sc, sa, sb] : std::vector<std::tuple<Shape, Shape, Shape>>{
               {{3, 5}, {3, 4}, {4, 5}},
               {{5}, {3, 4}, {4, 5}},
               {{}, {3, 4}, {4, 5}},
               {{3, 1}, {3, 4}, {4, 5}},
               {{2, 3, 5}, {2, 3, 4}, {4, 5}},
               {{5}, {4}, {4, 5}},
               {{3, 5}, {3, 0}, {0, 5}},
               {{1, 5}, {2, 3, 4}, {2, 4, 5}},
           }) {
        auto c = make(sc, dt), a = make(sa, dt), b = make(sb, dt);
        Shape shape;
        auto prod = ref_matmul(a.v, sa, b.v, sb, shape);
        Shape cshape = broadcast_shapes(sc, shape);
        ASSERT_EQ(cshape, shape);
        std::vector<cd> ref(prod.size());
        Strides cs = row_major_strides(sc);
        Strides os = row_major_strides(shape);
        for (size_t i = 0; i < ref.size(); ++i) {
          // The c element under output element i (c broadcast from the right).
          int64_t off = 0, rem = static_cast<int64_t>(i);
          for (size_t d = 0; d < shape.size(); ++d) {
            int64_t idx = rem / os[d];
            rem %= os[d];
            size_t lead = shape.size() - sc.size();
            if (d >= lead && sc[d - lead] != 1) off += idx * cs[d - lead];
          }
          ref[i] = alpha * prod[i] + (beta == 0 ? cd(0) : beta * c.v[off]);
        }
        std::ostringstream os2;
        os2 << "addmm c " << sc << " a " << sa << " b " << sb << " alpha " << alpha << " beta " << beta;
        for (auto& dev : test::devices()) {
          expect_result(addmm(c.x, a.x, b.x, alpha, beta, dev), ref, shape, dt, where(dev, dt, os2.str()));
        }
      }
    }
  }
}

TEST(Linalg, AddMMTransposedAndIgnoredC) {
  auto a = make({6, 4}, float32), b = make({5, 6}, float32), c = make({5, 4}, float32);
  Input at = view_of(transpose(a.x)), bt = view_of(transpose(b.x)), ct = view_of(transpose(c.x));
  Shape shape;
  auto prod = ref_matmul(at.v, at.x.shape(), bt.v, bt.x.shape(), shape);
  std::vector<cd> ref(prod.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = 2.0 * prod[i] + 3.0 * ct.v[i];
  // beta == 0 never reads c: a NaN there does not reach the result.
  array nan_c = full({4, 5}, NAN, float32);
  std::vector<cd> ref0(prod.size());
  for (size_t i = 0; i < ref0.size(); ++i) ref0[i] = 2.0 * prod[i];
  for (auto& dev : test::devices()) {
    expect_result(addmm(ct.x, at.x, bt.x, 2.0, 3.0, dev), ref, shape, float32, where(dev, float32, "transposed"));
    expect_result(addmm(nan_c, at.x, bt.x, 2.0, 0.0, dev), ref0, shape, float32, where(dev, float32, "beta 0"));
  }
}

// Decoding's shapes: a few rows times a weight stored (N, K) and read transposed (the CPU's
// row kernel), with a residual added (beta) and a scale (alpha); beta 0 never reads c.
TEST(Linalg, AddMMFewRowsTimesATransposedWeight) {
  for (Dtype dt : {float32, bfloat16, float16}) {
    for (int64_t m : {1, 2, 3, 5, 8}) {
      for (auto [alpha, beta] : {std::pair{1.0, 1.0}, std::pair{0.5, -2.0}, std::pair{1.5, 0.0}}) {
        const int64_t k = 37, n = 29;
        auto a = make({m, k}, dt), w = make({n, k}, dt), c = make({m, n}, dt);
        Input wt = view_of(transpose(w.x));
        Shape shape;
        auto prod = ref_matmul(a.v, a.x.shape(), wt.v, wt.x.shape(), shape);
        std::vector<cd> ref(prod.size());
        for (size_t i = 0; i < ref.size(); ++i) ref[i] = alpha * prod[i] + (beta == 0 ? cd(0) : beta * c.v[i]);
        array cin = beta == 0 ? full({m, n}, NAN, dt) : c.x;
        std::ostringstream what;
        what << "m " << m << " alpha " << alpha << " beta " << beta;
        for (auto& dev : test::devices()) {
          expect_result(addmm(cin, a.x, wt.x, alpha, beta, dev), ref, shape, dt, where(dev, dt, what.str()));
        }
      }
    }
  }
}

TEST(Linalg, AddMMErrors) {
  KILN_EXPECT_THROW_MSG(addmm(zeros({4, 5}), zeros({3, 4}), zeros({4, 5})), ValueError, "[addmm]");
  KILN_EXPECT_THROW_MSG(addmm(zeros({2, 3, 5}), zeros({3, 4}), zeros({4, 5})), ValueError, "[addmm]");
  KILN_EXPECT_THROW_MSG(addmm(zeros({3, 5}), zeros({3, 4}), zeros({3, 5})), ValueError, "[addmm] inner dimensions");
  KILN_EXPECT_THROW_MSG(addmm(zeros({3, 5}), array(1.0f), zeros({3, 5})), ValueError, "[addmm]");
}

TEST(Linalg, Outer) {
  for (Dtype dt : {float32, float64, bfloat16, complex64, int32}) {
    auto a = make({4}, dt), b = make({2, 3}, dt);
    std::vector<cd> ref;
    for (auto x : a.v) {
      for (auto y : b.v) ref.push_back(x * y);
    }
    for (auto& dev : test::devices()) {
      expect_result(outer(a.x, b.x, dev), ref, {4, 6}, dt, where(dev, dt, "outer"));
    }
  }
  auto s = make({}, float32), v = make({3}, float32);
  std::vector<cd> ref;
  for (auto y : v.v) ref.push_back(s.v[0] * y);
  expect_result(outer(s.x, v.x), ref, {1, 3}, float32, "outer of a scalar");
}

// Sum of products over paired axes, computed on the values (the reference for inner and
// tensordot).
std::vector<cd> ref_tensordot(const Input& a, const Input& b, std::vector<int> axa, std::vector<int> axb,
                              Shape& shape) {
  const Shape &sa = a.x.shape(), &sb = b.x.shape();
  for (auto& x : axa) x = x < 0 ? x + static_cast<int>(sa.size()) : x;
  for (auto& x : axb) x = x < 0 ? x + static_cast<int>(sb.size()) : x;
  std::vector<int> fa, fb;
  for (int i = 0; i < static_cast<int>(sa.size()); ++i) {
    if (std::find(axa.begin(), axa.end(), i) == axa.end()) fa.push_back(i);
  }
  for (int i = 0; i < static_cast<int>(sb.size()); ++i) {
    if (std::find(axb.begin(), axb.end(), i) == axb.end()) fb.push_back(i);
  }
  shape.clear();
  Shape ks;
  for (int i : fa) shape.push_back(sa[i]);
  for (int i : fb) shape.push_back(sb[i]);
  for (int i : axa) ks.push_back(sa[i]);
  Strides ra = row_major_strides(sa), rb = row_major_strides(sb);
  int64_t n = shape_size(shape), nk = shape_size(ks);
  std::vector<cd> out(n);
  for (int64_t o = 0; o < n; ++o) {
    // Split o into the free indices of a and b.
    int64_t rem = o, offa = 0, offb = 0;
    for (size_t d = shape.size(); d-- > 0;) {
      int64_t idx = rem % shape[d];
      rem /= shape[d];
      if (d < fa.size()) {
        offa += idx * ra[fa[d]];
      } else {
        offb += idx * rb[fb[d - fa.size()]];
      }
    }
    cd s = 0;
    for (int64_t k = 0; k < nk; ++k) {
      int64_t r = k, oa = offa, ob = offb;
      for (size_t d = ks.size(); d-- > 0;) {
        int64_t idx = r % ks[d];
        r /= ks[d];
        oa += idx * ra[axa[d]];
        ob += idx * rb[axb[d]];
      }
      s += a.v[oa] * b.v[ob];
    }
    out[o] = s;
  }
  return out;
}

TEST(Linalg, Inner) {
  for (Dtype dt : {float32, float64, complex64, int32}) {
    auto a = make({2, 3, 4}, dt), b = make({5, 4}, dt);
    Shape shape;
    auto ref = ref_tensordot(a, b, {-1}, {-1}, shape);
    auto v = make({4}, dt);
    Shape vshape;
    auto vref = ref_tensordot(v, v, {0}, {0}, vshape);
    for (auto& dev : test::devices()) {
      expect_result(inner(a.x, b.x, dev), ref, shape, dt, where(dev, dt, "inner"));
      expect_result(inner(v.x, v.x, dev), vref, {}, dt, where(dev, dt, "inner of vectors"));
    }
  }
  auto s = make({}, float32), m = make({2, 3}, float32);
  std::vector<cd> ref;
  for (auto y : m.v) ref.push_back(s.v[0] * y);
  expect_result(inner(s.x, m.x), ref, {2, 3}, float32, "inner with a scalar");
  KILN_EXPECT_THROW_MSG(inner(zeros({2, 3}), zeros({2})), ValueError, "[inner]");
}

TEST(Linalg, Tensordot) {
  for (Dtype dt : {float32, float64, bfloat16, complex64, int32}) {
    auto a = make({2, 3, 4}, dt), b = make({3, 4, 5}, dt), c = make({4, 2, 3}, dt);
    struct Case {
      const Input* x;
      const Input* y;
      std::vector<int> ax, ay;
      int n;  // >= 0: the integer form
    };
    std::vector<Case> cases{
        {&a, &b, {1, 2}, {0, 1}, 2},        {&a, &b, {2}, {}, 0},          {&a, &c, {2}, {0}, 1},
        {&a, &c, {0, 1}, {1, 2}, -1},       {&a, &c, {-1, 0}, {0, 1}, -1}, {&b, &a, {0}, {1}, -1},
        {&a, &a, {0, 1, 2}, {0, 1, 2}, -1},
    };
    for (auto& cs : cases) {
      std::vector<int> ax = cs.ax, ay = cs.ay;
      if (cs.n == 0) {
        ax.clear();
        ay.clear();
      }
      Shape shape;
      auto ref = ref_tensordot(*cs.x, *cs.y, ax, ay, shape);
      for (auto& dev : test::devices()) {
        std::ostringstream os;
        os << "tensordot " << cs.x->x.shape() << " " << cs.y->x.shape() << " axes " << Shape(ax.begin(), ax.end())
           << " " << Shape(ay.begin(), ay.end());
        array out = cs.n >= 0 ? tensordot(cs.x->x, cs.y->x, cs.n, dev) : tensordot(cs.x->x, cs.y->x, {ax, ay}, dev);
        expect_result(out, ref, shape, dt, where(dev, dt, os.str()));
      }
    }
  }
  // A 0-d operand with no contracted axes scales the other.
  auto s = make({}, float32), m = make({2, 3}, float32);
  std::vector<cd> sref;
  for (auto y : m.v) sref.push_back(s.v[0] * y);
  expect_result(tensordot(s.x, m.x, 0), sref, {2, 3}, float32, "tensordot with a scalar");
  array a = zeros({2, 3, 4}), b = zeros({3, 4, 5});
  KILN_EXPECT_THROW_MSG(tensordot(a, b, -1), ValueError, "[tensordot]");
  KILN_EXPECT_THROW_MSG(tensordot(a, b, 4), ValueError, "[tensordot]");
  KILN_EXPECT_THROW_MSG(tensordot(a, b, 1), ValueError, "[tensordot] axis");
  KILN_EXPECT_THROW_MSG(tensordot(a, b, {{0, 1}, {0}}), ValueError, "[tensordot]");
  KILN_EXPECT_THROW_MSG(tensordot(a, b, {{1, 1}, {0, 1}}), ValueError, "[tensordot]");
  KILN_EXPECT_THROW_MSG(tensordot(a, b, {{3}, {0}}), IndexError, "[tensordot]");
}

// ---- einsum ----

namespace {

// Brute-force einsum over explicit letter subscripts ("ij,jk->ik"): every assignment of the
// labels is visited once.
std::vector<cd> ref_einsum(const std::string& spec, const std::vector<Input>& ins, Shape& shape) {
  size_t arrow = spec.find("->");
  std::string lhs = spec.substr(0, arrow), rhs = spec.substr(arrow + 2);
  std::vector<std::string> terms;
  for (size_t s = 0;;) {
    size_t c = lhs.find(',', s);
    terms.push_back(lhs.substr(s, c - s));
    if (c == std::string::npos) break;
    s = c + 1;
  }
  std::map<char, int64_t> size;
  for (size_t i = 0; i < terms.size(); ++i) {
    for (size_t d = 0; d < terms[i].size(); ++d) {
      int64_t n = ins[i].x.shape()[d];
      auto it = size.find(terms[i][d]);
      if (it == size.end() || it->second == 1) size[terms[i][d]] = n;
    }
  }
  std::string labels;
  for (auto& [l, n] : size) labels.push_back(l);
  shape.clear();
  for (char l : rhs) shape.push_back(size[l]);
  std::vector<cd> out(shape_size(shape));
  std::map<char, int64_t> idx;
  for (char l : labels) idx[l] = 0;
  std::function<void(size_t)> visit = [&](size_t k) {
    if (k < labels.size()) {
      for (int64_t i = 0; i < size[labels[k]]; ++i) {
        idx[labels[k]] = i;
        visit(k + 1);
      }
      return;
    }
    cd p = 1;
    for (size_t i = 0; i < terms.size(); ++i) {
      int64_t off = 0;
      const Shape& s = ins[i].x.shape();
      for (size_t d = 0; d < terms[i].size(); ++d) off = off * s[d] + (s[d] == 1 ? 0 : idx[terms[i][d]]);
      p *= ins[i].v[off];
    }
    int64_t o = 0;
    for (size_t d = 0; d < rhs.size(); ++d) o = o * shape[d] + idx[rhs[d]];
    out[o] += p;
  };
  visit(0);
  return out;
}

struct EinsumCase {
  std::string spec;       // what einsum is given
  std::string explicit_;  // the same contraction with letters only, for the reference
  std::vector<Shape> shapes;
};

}  // namespace

TEST(Linalg, Einsum) {
  std::vector<EinsumCase> cases{
      {"ij,jk->ik", "ij,jk->ik", {{3, 4}, {4, 5}}},
      {"bij,bjk->bik", "bij,bjk->bik", {{2, 3, 4}, {2, 4, 5}}},
      {"ii->", "ii->", {{4, 4}}},
      {"ii->i", "ii->i", {{4, 4}}},
      {"ij->ji", "ij->ji", {{3, 5}}},
      {"ij->", "ij->", {{3, 5}}},
      {"ij", "ij->ij", {{3, 5}}},
      {"ji", "ji->ij", {{3, 5}}},
      {"ij,jk", "ij,jk->ik", {{3, 4}, {4, 5}}},
      {"i,i->", "i,i->", {{6}, {6}}},
      {"i,i", "i,i->", {{6}, {6}}},
      {"i,j->ij", "i,j->ij", {{3}, {4}}},
      {"i,i->i", "i,i->i", {{5}, {5}}},
      {"ijk,jl->il", "ijk,jl->il", {{2, 3, 4}, {3, 5}}},
      {"ij,jk,kl->il", "ij,jk,kl->il", {{2, 3}, {3, 4}, {4, 5}}},
      {"ij,jk,kl", "ij,jk,kl->il", {{2, 3}, {3, 4}, {4, 5}}},
      {"...ij->...ji", "aij->aji", {{2, 3, 4}}},
      {"...ij,...jk->...ik", "aij,ajk->aik", {{2, 3, 4}, {2, 4, 5}}},
      {"...ij,jk->...ik", "abij,jk->abik", {{2, 2, 3, 4}, {4, 5}}},
      {"...ij,...jk", "aij,jk->aik", {{2, 3, 4}, {4, 5}}},
      {"ij...,jk...->ik...", "ija,jka->ika", {{3, 4, 2}, {4, 5, 2}}},
      {"...i,...i->...", "abi,bi->ab", {{2, 3, 4}, {3, 4}}},
      {"bii->bi", "bii->bi", {{2, 3, 3}}},
      {"iij,jk->ik", "iij,jk->ik", {{3, 3, 4}, {4, 2}}},
      {"ij,ij->ij", "ij,ij->ij", {{3, 4}, {3, 4}}},
      {"ij,ij->", "ij,ij->", {{3, 4}, {3, 4}}},
      {"ij,kj->ikj", "ij,kj->ikj", {{2, 3}, {4, 3}}},
      {"i j , j k -> k i", "ij,jk->ki", {{2, 3}, {3, 4}}},
      {"Ab,bC->AC", "Ab,bC->AC", {{2, 3}, {3, 4}}},
      {"ij,ij->ij", "ij,ij->ij", {{1, 4}, {3, 4}}},
      {"ij,jk->ik", "ij,jk->ik", {{3, 0}, {0, 4}}},
      {",ij->ij", ",ij->ij", {{}, {2, 3}}},
  };
  for (Dtype dt : {float32, float64, complex64, int32}) {
    for (auto& c : cases) {
      std::vector<Input> ins;
      std::vector<array> xs;
      for (auto& s : c.shapes) {
        ins.push_back(make(s, dt));
        xs.push_back(ins.back().x);
      }
      Shape shape;
      auto ref = ref_einsum(c.explicit_, ins, shape);
      // A contraction can cancel to almost nothing, while its rounding error grows with the
      // magnitudes it sums: floating results are measured against the same contraction of |x|.
      std::vector<Input> abs_ins = ins;
      for (auto& in : abs_ins)
        for (auto& v : in.v) v = std::abs(v);
      Shape abs_shape;
      auto ref_abs = ref_einsum(c.explicit_, abs_ins, abs_shape);
      for (auto& dev : test::devices()) {
        array out = einsum(c.spec, xs, dev);
        std::string what = where(dev, dt, "einsum " + c.spec);
        if (dt == int32) {
          expect_result(out, ref, shape, dt, what);
          continue;
        }
        ASSERT_EQ(out.shape(), shape) << what;
        EXPECT_EQ(out.dtype(), dt) << what;
        auto got = values(out);
        double diff = 0, mag = 0;
        for (size_t i = 0; i < got.size() && i < ref.size(); ++i) {
          diff += std::norm(got[i] - ref[i]);
          mag += std::norm(ref_abs[i]);
        }
        EXPECT_EQ(got.size(), ref.size()) << what;
        EXPECT_LE(std::sqrt(diff), test::tolerance(dt) * std::max(std::sqrt(mag), 1e-30)) << what;
      }
    }
  }
  // Transposed operands and mixed dtypes.
  auto a = make({4, 3}, float32), b = make({4, 5}, int32);
  Input at = view_of(transpose(a.x));
  Shape shape;
  auto ref = ref_einsum("ij,jk->ik", {at, b}, shape);
  expect_result(einsum("ij,jk->ik", {at.x, b.x}), ref, shape, float32, "einsum transposed, mixed dtypes");
}

TEST(Linalg, EinsumErrors) {
  array m = zeros({2, 3}), sq = zeros({3, 3}), v = zeros({3});
  KILN_EXPECT_THROW_MSG(einsum("ij,jk->ik", {m}), ValueError, "[einsum]");
  KILN_EXPECT_THROW_MSG(einsum("ij->ik", {m}), ValueError, "'ik'");
  KILN_EXPECT_THROW_MSG(einsum("ij->ii", {m}), ValueError, "'ii'");
  KILN_EXPECT_THROW_MSG(einsum("i1->i", {m}), ValueError, "'i1'");
  KILN_EXPECT_THROW_MSG(einsum("ijk->i", {m}), ValueError, "'ijk'");
  KILN_EXPECT_THROW_MSG(einsum("i->i", {m}), ValueError, "'i'");
  KILN_EXPECT_THROW_MSG(einsum("i.j->i", {m}), ValueError, "'i.j'");
  KILN_EXPECT_THROW_MSG(einsum("......->", {m}), ValueError, "'......'");
  KILN_EXPECT_THROW_MSG(einsum("ij,ij->ij", {m, sq}), ValueError, "[einsum] label 'i'");
  KILN_EXPECT_THROW_MSG(einsum("ii->i", {m}), ValueError, "'ii'");
  KILN_EXPECT_THROW_MSG(einsum("...i->i", {m}), ValueError, "[einsum] output subscript 'i'");
  KILN_EXPECT_THROW_MSG(einsum("i->i->i", {v}), ValueError, "[einsum]");
  KILN_EXPECT_THROW_MSG(einsum("i", {}), ValueError, "[einsum]");
}
