#include "kiln/ops_linalg.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "kiln/ops_creation.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_shape.h"
#include "kiln/primitives_linalg.h"

namespace kiln {

namespace {

// The operands of a matrix product as the kernels take them (batch + (M, K) and batch + (K, N),
// broadcast to one batch shape by views), the shape they produce, and the shape NumPy returns
// (without the axes that 1-d operands gained).
struct Product {
  array a;
  array b;
  Shape full;
  Shape result;
};

Product prepare_product(const array& a_in, const array& b_in, Dtype dtype, const char* op, Stream st) {
  if (a_in.ndim() == 0 || b_in.ndim() == 0) {
    fail<ValueError>("[", op, "] operands must have at least one dimension, got shapes ", a_in.shape(), " and ",
                     b_in.shape(), " (use multiply for scalars)");
  }
  array a = astype(a_in, dtype, st);
  array b = astype(b_in, dtype, st);
  const bool a_vec = a.ndim() == 1, b_vec = b.ndim() == 1;
  if (a_vec) a = reshape(a, {1, a.shape()[0]}, st);
  if (b_vec) b = reshape(b, {b.shape()[0], 1}, st);
  const int64_t M = a.shape()[a.ndim() - 2], K = a.shape()[a.ndim() - 1];
  const int64_t Kb = b.shape()[b.ndim() - 2], N = b.shape()[b.ndim() - 1];
  if (K != Kb) {
    fail<ValueError>("[", op, "] inner dimensions differ: shapes ", a_in.shape(), " and ", b_in.shape(), " give ", K,
                     " and ", Kb);
  }
  Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                 Shape(b.shape().begin(), b.shape().end() - 2), op);
  Product p{a, b, batch, batch};
  Shape sa = batch, sb = batch;
  sa.insert(sa.end(), {M, K});
  sb.insert(sb.end(), {K, N});
  p.a = broadcast_to(a, sa, st);
  p.b = broadcast_to(b, sb, st);
  p.full.insert(p.full.end(), {M, N});
  if (!a_vec) p.result.push_back(M);
  if (!b_vec) p.result.push_back(N);
  return p;
}

}  // namespace

array matmul(const array& a, const array& b, StreamOrDevice s) {
  Stream st = to_stream(s);
  Dtype dtype = promote_types(a.dtype(), b.dtype());
  Product p = prepare_product(a, b, dtype, "matmul", st);
  array out(p.full, dtype, std::make_shared<Matmul>(), {p.a, p.b}, st);
  return reshape(out, p.result, st);
}

array addmm(const array& c, const array& a, const array& b, double alpha, double beta, StreamOrDevice s) {
  Stream st = to_stream(s);
  Dtype dtype = promote_types(promote_types(a.dtype(), b.dtype()), c.dtype());
  Product p = prepare_product(a, b, dtype, "addmm", st);
  if (broadcast_shapes(c.shape(), p.result, "addmm") != p.result) {
    fail<ValueError>("[addmm] c of shape ", c.shape(), " does not broadcast to the product's shape ", p.result);
  }
  if (!is_inexact(dtype)) {
    // Integer GEMMs have no beta to fuse into; compose with NumPy's integer arithmetic.
    array prod = reshape(array(p.full, dtype, std::make_shared<Matmul>(), {p.a, p.b}, st), p.result, st);
    if (alpha != 1.0) prod = multiply(prod, scalar_like(alpha, prod), st);
    if (beta == 0.0) return prod;
    array cc = astype(c, dtype, st);
    if (beta != 1.0) cc = multiply(cc, scalar_like(beta, cc), st);
    return add(cc, prod, st);
  }
  array cb = reshape(broadcast_to(astype(c, dtype, st), p.result, st), p.full, st);
  array out(p.full, dtype, std::make_shared<AddMM>(alpha, beta), {p.a, p.b, cb}, st);
  return reshape(out, p.result, st);
}

array outer(const array& a, const array& b, StreamOrDevice s) {
  Stream st = to_stream(s);
  return multiply(reshape(a, {a.size(), 1}, st), reshape(b, {1, b.size()}, st), st);
}

namespace {

int64_t product_of(const Shape& shape, const std::vector<int>& axes) {
  int64_t n = 1;
  for (int ax : axes) n *= shape[ax];
  return n;
}

// Contracts axes_a of a with axes_b of b (already checked to pair up) through one matmul.
array contract_axes(const array& a, const array& b, std::vector<int> axes_a, std::vector<int> axes_b, const char* op,
                    Stream st) {
  if (axes_a.size() != axes_b.size()) {
    fail<ValueError>("[", op, "] ", axes_a.size(), " axes of a are paired with ", axes_b.size(), " axes of b");
  }
  auto normalize = [&](std::vector<int>& axes, const array& x, const char* which) {
    std::vector<bool> used(x.ndim(), false);
    for (int& ax : axes) {
      ax = normalize_axis(ax, x.ndim(), op);
      if (used[ax]) fail<ValueError>("[", op, "] axis ", ax, " of ", which, " is listed twice");
      used[ax] = true;
    }
    std::vector<int> free;
    for (int i = 0; i < x.ndim(); ++i) {
      if (!used[i]) free.push_back(i);
    }
    return free;
  };
  std::vector<int> free_a = normalize(axes_a, a, "a");
  std::vector<int> free_b = normalize(axes_b, b, "b");
  for (size_t i = 0; i < axes_a.size(); ++i) {
    if (a.shape()[axes_a[i]] != b.shape()[axes_b[i]]) {
      fail<ValueError>("[", op, "] axis ", axes_a[i], " of a (size ", a.shape()[axes_a[i]], ") and axis ", axes_b[i],
                       " of b (size ", b.shape()[axes_b[i]], ") differ in size; shapes ", a.shape(), " and ",
                       b.shape());
    }
  }
  Shape result;
  for (int ax : free_a) result.push_back(a.shape()[ax]);
  for (int ax : free_b) result.push_back(b.shape()[ax]);
  // a as (free, contracted) and b as (contracted, free): transposes are views, and the reshape
  // copies only when the transposed axes cannot be merged in place.
  std::vector<int> perm_a = free_a, perm_b = axes_b;
  perm_a.insert(perm_a.end(), axes_a.begin(), axes_a.end());
  perm_b.insert(perm_b.end(), free_b.begin(), free_b.end());
  int64_t K = product_of(a.shape(), axes_a);
  array a2 = reshape(transpose(a, perm_a, st), {product_of(a.shape(), free_a), K}, st);
  array b2 = reshape(transpose(b, perm_b, st), {K, product_of(b.shape(), free_b)}, st);
  return reshape(matmul(a2, b2, st), result, st);
}

}  // namespace

array inner(const array& a, const array& b, StreamOrDevice s) {
  Stream st = to_stream(s);
  if (a.ndim() == 0 || b.ndim() == 0) return multiply(a, b, st);
  if (a.shape().back() != b.shape().back()) {
    fail<ValueError>("[inner] last dimensions differ: shapes ", a.shape(), " and ", b.shape());
  }
  return contract_axes(a, b, {a.ndim() - 1}, {b.ndim() - 1}, "inner", st);
}

array tensordot(const array& a, const array& b, int axes, StreamOrDevice s) {
  if (axes < 0) fail<ValueError>("[tensordot] axes must be non-negative, got ", axes);
  if (axes > a.ndim() || axes > b.ndim()) {
    fail<ValueError>("[tensordot] cannot contract ", axes, " axes of arrays of shapes ", a.shape(), " and ", b.shape());
  }
  std::vector<int> axes_a(axes), axes_b(axes);
  std::iota(axes_a.begin(), axes_a.end(), a.ndim() - axes);
  std::iota(axes_b.begin(), axes_b.end(), 0);
  return contract_axes(a, b, std::move(axes_a), std::move(axes_b), "tensordot", to_stream(s));
}

array tensordot(const array& a, const array& b, std::pair<std::vector<int>, std::vector<int>> axes, StreamOrDevice s) {
  return contract_axes(a, b, std::move(axes.first), std::move(axes.second), "tensordot", to_stream(s));
}

// ---- einsum ----

namespace {

// Labels are letters (their character codes) and, for the axes under '...', kEllipsis + j where
// j counts the broadcast axes of the whole expression, right-aligned as in broadcasting.
constexpr int kEllipsis = 256;
constexpr int kEllipsisToken = -1;

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string label_name(int label) { return label >= kEllipsis ? "..." : std::string(1, static_cast<char>(label)); }

// Letters and at most one ellipsis token of one term.
std::vector<int> parse_term(const std::string& term) {
  std::vector<int> tokens;
  bool ellipsis = false;
  for (size_t i = 0; i < term.size(); ++i) {
    char c = term[i];
    if (is_letter(c)) {
      tokens.push_back(c);
    } else if (c == '.') {
      if (term.compare(i, 3, "...") != 0) {
        fail<ValueError>("[einsum] '.' in subscript '", term, "' is not part of an ellipsis '...'");
      }
      if (ellipsis) fail<ValueError>("[einsum] subscript '", term, "' has more than one ellipsis");
      ellipsis = true;
      tokens.push_back(kEllipsisToken);
      i += 2;
    } else {
      fail<ValueError>("[einsum] invalid character '", std::string(1, c), "' in subscript '", term,
                       "' (subscripts are letters and '...')");
    }
  }
  return tokens;
}

// Sums x over the given axes with a matmul against ones (exact for every dtype the kernel takes).
array sum_axes(const array& x, const std::vector<int>& axes, Stream st) {
  if (axes.empty()) return x;
  std::vector<int> perm;
  std::vector<bool> summed(x.ndim(), false);
  for (int ax : axes) summed[ax] = true;
  Shape kept_shape;
  for (int i = 0; i < x.ndim(); ++i) {
    if (!summed[i]) {
      perm.push_back(i);
      kept_shape.push_back(x.shape()[i]);
    }
  }
  perm.insert(perm.end(), axes.begin(), axes.end());
  int64_t n = product_of(x.shape(), axes);
  Shape flat = kept_shape;
  flat.push_back(n);
  array y = reshape(transpose(x, perm, st), flat, st);
  return matmul(y, ones({n}, x.dtype(), st), st);
}

struct Operand {
  array x;
  std::vector<int> labels;
};

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// Takes the diagonal of repeated labels ("ii" -> "i") as a strided view.
Operand take_diagonals(Operand op, Stream st) {
  for (;;) {
    int p = -1, q = -1;
    for (size_t i = 0; i < op.labels.size() && p < 0; ++i) {
      for (size_t j = i + 1; j < op.labels.size(); ++j) {
        if (op.labels[i] == op.labels[j]) {
          p = static_cast<int>(i);
          q = static_cast<int>(j);
          break;
        }
      }
    }
    if (p < 0) return op;
    Shape shape = op.x.shape();
    Strides strides = row_major_strides(shape);  // as_strided reads a row-contiguous x
    strides[p] += strides[q];
    shape.erase(shape.begin() + q);
    strides.erase(strides.begin() + q);
    op.x = as_strided(op.x, shape, strides, 0, st);
    op.labels.erase(op.labels.begin() + q);
  }
}

// Sums away the labels of op that are not in `keep` and not in `other`.
Operand sum_unused(Operand op, const std::vector<int>& other, const std::vector<int>& keep, Stream st) {
  std::vector<int> axes, labels;
  for (size_t i = 0; i < op.labels.size(); ++i) {
    int l = op.labels[i];
    if (contains(keep, l) || contains(other, l)) {
      labels.push_back(l);
    } else {
      axes.push_back(static_cast<int>(i));
    }
  }
  if (axes.empty()) return op;
  return {sum_axes(op.x, axes, st), labels};
}

// Contracts x with y, keeping the labels in `keep`: labels in both and kept become matmul batch
// axes, labels in both and not kept the matmul's inner axis, the rest its rows and columns.
Operand contract(Operand x, Operand y, const std::vector<int>& keep, const std::map<int, int64_t>& sizes, Stream st) {
  x = sum_unused(std::move(x), y.labels, keep, st);
  y = sum_unused(std::move(y), x.labels, keep, st);
  std::vector<int> batch, con, fx, fy;
  for (int l : x.labels) {
    if (contains(y.labels, l)) {
      (contains(keep, l) ? batch : con).push_back(l);
    } else {
      fx.push_back(l);
    }
  }
  for (int l : y.labels) {
    if (!contains(x.labels, l)) fy.push_back(l);
  }
  auto axis_of = [](const Operand& o, int l) {
    return static_cast<int>(std::find(o.labels.begin(), o.labels.end(), l) - o.labels.begin());
  };
  auto arrange = [&](const Operand& o, const std::vector<int>& first, const std::vector<int>& mid,
                     const std::vector<int>& last, bool con_first) {
    std::vector<int> perm;
    Shape bshape, full;
    for (int l : first) perm.push_back(axis_of(o, l));
    for (int l : mid) perm.push_back(axis_of(o, l));
    for (int l : last) perm.push_back(axis_of(o, l));
    array t = transpose(o.x, perm, st);
    // A contracted label of size 1 here and n in the other operand broadcasts.
    Shape tshape = t.shape();
    for (size_t i = first.size(); i < perm.size(); ++i) {
      int l = o.labels[perm[i]];
      if (contains(con, l)) tshape[i] = sizes.at(l);
    }
    t = broadcast_to(t, tshape, st);
    for (size_t i = 0; i < first.size(); ++i) bshape.push_back(tshape[i]);
    int64_t m = 1, k = 1;
    for (size_t i = 0; i < mid.size(); ++i) (con_first ? k : m) *= tshape[first.size() + i];
    for (size_t i = 0; i < last.size(); ++i) (con_first ? m : k) *= tshape[first.size() + mid.size() + i];
    full = bshape;
    if (con_first) {
      full.insert(full.end(), {k, m});
    } else {
      full.insert(full.end(), {m, k});
    }
    return reshape(t, full, st);
  };
  array xm = arrange(x, batch, fx, con, false);
  array ym = arrange(y, batch, con, fy, true);
  array r = matmul(xm, ym, st);
  Shape shape(r.shape().begin(), r.shape().end() - 2);
  for (int l : fx) shape.push_back(x.x.shape()[axis_of(x, l)]);
  for (int l : fy) shape.push_back(y.x.shape()[axis_of(y, l)]);
  std::vector<int> labels = batch;
  labels.insert(labels.end(), fx.begin(), fx.end());
  labels.insert(labels.end(), fy.begin(), fy.end());
  return {reshape(r, shape, st), labels};
}

}  // namespace

array einsum(const std::string& subscripts, const std::vector<array>& operands, StreamOrDevice s) {
  Stream st = to_stream(s);
  std::string spec;
  for (char c : subscripts) {
    if (c != ' ') spec.push_back(c);
  }
  if (operands.empty()) fail<ValueError>("[einsum] needs at least one operand");
  size_t arrow = spec.find("->");
  bool explicit_out = arrow != std::string::npos;
  std::string lhs = spec.substr(0, arrow);
  std::string rhs = explicit_out ? spec.substr(arrow + 2) : "";
  if (explicit_out && rhs.find("->") != std::string::npos) {
    fail<ValueError>("[einsum] subscripts '", subscripts, "' have more than one '->'");
  }
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != operands.size()) {
    fail<ValueError>("[einsum] subscripts '", subscripts, "' name ", terms.size(), " operands but ", operands.size(),
                     " were given");
  }

  // Labels of each operand, with '...' expanded to right-aligned broadcast labels.
  std::vector<std::vector<int>> tokens(terms.size());
  std::vector<int> ell_dims(terms.size(), 0);
  int ell = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    tokens[i] = parse_term(terms[i]);
    bool has_ell = contains(tokens[i], kEllipsisToken);
    int letters = static_cast<int>(tokens[i].size()) - (has_ell ? 1 : 0);
    int nd = operands[i].ndim();
    if (has_ell ? letters > nd : letters != nd) {
      fail<ValueError>("[einsum] subscript '", terms[i], "' has ", letters, " labels but operand ", i, " has ", nd,
                       " dimensions (shape ", operands[i].shape(), ")");
    }
    ell_dims[i] = nd - letters;
    ell = std::max(ell, ell_dims[i]);
  }
  std::vector<Operand> ops;
  std::map<int, int64_t> sizes;
  std::map<int, int> counts;
  Dtype dtype = operands[0].dtype();
  for (auto& o : operands) dtype = promote_types(dtype, o.dtype());
  for (size_t i = 0; i < terms.size(); ++i) {
    Operand op{astype(operands[i], dtype, st), {}};
    for (int t : tokens[i]) {
      if (t == kEllipsisToken) {
        for (int j = ell - ell_dims[i]; j < ell; ++j) op.labels.push_back(kEllipsis + j);
      } else {
        op.labels.push_back(t);
      }
    }
    // A repeated label within one operand must be a true diagonal.
    for (size_t d = 0; d < op.labels.size(); ++d) {
      for (size_t e = d + 1; e < op.labels.size(); ++e) {
        if (op.labels[d] == op.labels[e] && op.x.shape()[d] != op.x.shape()[e]) {
          fail<ValueError>("[einsum] label '", label_name(op.labels[d]), "' repeats in subscript '", terms[i],
                           "' over axes of sizes ", op.x.shape()[d], " and ", op.x.shape()[e]);
        }
      }
    }
    for (size_t d = 0; d < op.labels.size(); ++d) {
      int l = op.labels[d];
      int64_t n = op.x.shape()[d];
      ++counts[l];
      auto it = sizes.find(l);
      if (it == sizes.end() || it->second == 1) {
        sizes[l] = n;
      } else if (n != 1 && n != it->second) {
        fail<ValueError>("[einsum] label '", label_name(l), "' has size ", it->second, " and ", n, " in subscripts '",
                         subscripts, "' (operand ", i, ", shape ", op.x.shape(), ")");
      }
    }
    ops.push_back(std::move(op));
  }

  // The output labels.
  std::vector<int> out;
  if (explicit_out) {
    std::vector<int> t = parse_term(rhs);
    for (int l : t) {
      if (l == kEllipsisToken) {
        for (int j = 0; j < ell; ++j) out.push_back(kEllipsis + j);
        continue;
      }
      if (contains(out, l)) {
        fail<ValueError>("[einsum] output subscript '", rhs, "' repeats '", label_name(l), "'");
      }
      if (!counts.count(l)) {
        fail<ValueError>("[einsum] output subscript '", rhs, "' has '", label_name(l), "', which no input has");
      }
      out.push_back(l);
    }
    if (ell > 0 && !contains(t, kEllipsisToken)) {
      fail<ValueError>("[einsum] output subscript '", rhs, "' has no '...' for the ", ell,
                       " broadcast dimensions of the inputs");
    }
  } else {
    for (int j = 0; j < ell; ++j) out.push_back(kEllipsis + j);
    for (auto& [l, n] : counts) {
      if (l < kEllipsis && n == 1) out.push_back(l);  // std::map iterates in character order
    }
  }

  // Contract left to right; labels needed later (by the output or a later operand) are kept.
  for (auto& op : ops) op = take_diagonals(std::move(op), st);
  auto keep_after = [&](size_t i) {
    std::vector<int> keep = out;
    for (size_t j = i + 1; j < ops.size(); ++j) keep.insert(keep.end(), ops[j].labels.begin(), ops[j].labels.end());
    return keep;
  };
  Operand acc = sum_unused(ops[0], {}, keep_after(0), st);
  for (size_t i = 1; i < ops.size(); ++i) acc = contract(std::move(acc), ops[i], keep_after(i), sizes, st);

  std::vector<int> perm;
  for (int l : out)
    perm.push_back(static_cast<int>(std::find(acc.labels.begin(), acc.labels.end(), l) - acc.labels.begin()));
  array r = transpose(acc.x, perm, st);
  // A label that only ever met size-1 axes on the accumulated side still broadcasts to its size.
  Shape shape;
  for (int l : out) shape.push_back(sizes.at(l));
  return broadcast_to(r, shape, st);
}

}  // namespace kiln
