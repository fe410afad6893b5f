#include "kiln/ops_index.h"

#include <algorithm>
#include <limits>
#include <ostream>

#include "kiln/ops_creation.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_shape.h"
#include "kiln/primitives_index.h"
#include "kiln/primitives_shape.h"

namespace kiln {

// ---- primitives ----

void Concatenate::print(std::ostream& os) const { os << "concatenate(axis=" << axis << ")"; }

void SliceUpdate::print(std::ostream& os) const { os << "slice_update(start=" << start << ", step=" << step << ")"; }

void Gather::print(std::ostream& os) const {
  os << "gather(axes=";
  detail::put(os, axes);
  os << ", slice_sizes=" << slice_sizes << ")";
}

void Scatter::print(std::ostream& os) const {
  static const char* modes[] = {"set", "add", "max", "min", "prod"};
  os << "scatter(axes=";
  detail::put(os, axes);
  os << ", mode=" << modes[static_cast<int>(mode)] << ")";
}

void Diagonal::print(std::ostream& os) const {
  os << "diagonal(offset=" << offset << ", axis1=" << axis1 << ", axis2=" << axis2 << ")";
}

void Diagonal::make_view(const array& in, array& out) const {
  Strides strides;
  for (int d = 0; d < in.ndim(); ++d) {
    if (d != axis1 && d != axis2) strides.push_back(in.strides()[d]);
  }
  strides.push_back(in.strides()[axis1] + in.strides()[axis2]);
  int64_t off = in.offset();
  if (out.size() > 0) {
    off += offset >= 0 ? int64_t{offset} * in.strides()[axis2] : -int64_t{offset} * in.strides()[axis1];
  }
  out.set_view(in, std::move(strides), off);
}

namespace {

// ---- index helpers ----

void check_index_dtype(const array& idx, const char* op) {
  if (!is_integer(idx.dtype())) fail<TypeError>("[", op, "] indices must be integers, got ", idx.dtype());
}

// Indices that are already evaluated with their data on the host are checked here (see the
// header); others cannot be without waiting for the device, and the kernels clamp or drop them.
// Valid values wrap (when negative) into [0, n - slice].
void check_host_indices(const array& idx, int64_t n, int64_t slice, int axis, const char* op) {
  if (!idx.is_available() || !idx.buffer() || !idx.buffer()->on_host() || idx.size() == 0) return;
  KILN_DISPATCH_INTEGRAL(op, idx.dtype(), {
    const T* base = idx.host_data<T>();
    const int nd = idx.ndim();
    std::vector<int64_t> pos(nd, 0);
    int64_t off = 0;
    for (int64_t i = 0; i < idx.size(); ++i) {
      T v = base[off];
      // uint64 values past the int64 range are out of bounds too.
      bool huge = !std::is_signed_v<T> && static_cast<uint64_t>(v) > uint64_t{std::numeric_limits<int64_t>::max()};
      int64_t w = static_cast<int64_t>(v);
      if (w < 0) w += n;
      if (huge || w < 0 || w > n - slice) {
        if (slice == 1) {
          fail<IndexError>("[", op, "] index ", +v, " is out of bounds for axis ", axis, " with size ", n);
        }
        fail<IndexError>("[", op, "] index ", +v, " is out of bounds for axis ", axis, " with size ", n,
                         " and slice size ", slice);
      }
      for (int d = nd - 1; d >= 0; --d) {
        if (++pos[d] < idx.shape()[d]) {
          off += idx.strides()[d];
          break;
        }
        off -= idx.strides()[d] * (idx.shape()[d] - 1);
        pos[d] = 0;
      }
    }
  });
}

// Kernels read int32 or int64 indices; one node uses one of them for all its index arrays.
Dtype index_dtype(const std::vector<array>& indices) {
  for (auto& i : indices) {
    if (i.dtype() == int64 || i.dtype() == uint32 || i.dtype() == uint64) return int64;
  }
  return int32;
}

// Validates index arrays and axes for gather/scatter; returns the normalized axes and the
// broadcast index shape.
std::vector<int> check_indices(const array& a, const std::vector<array>& indices, const std::vector<int>& axes,
                               const char* op, Shape& idx_shape) {
  if (indices.size() != axes.size()) {
    fail<ValueError>("[", op, "] ", indices.size(), " index arrays given for ", axes.size(), " axes");
  }
  std::vector<int> norm(axes.size());
  std::vector<bool> used(a.ndim(), false);
  for (size_t k = 0; k < axes.size(); ++k) {
    norm[k] = normalize_axis(axes[k], a.ndim(), op);
    if (used[norm[k]]) fail<ValueError>("[", op, "] axis ", axes[k], " appears twice");
    used[norm[k]] = true;
  }
  idx_shape.clear();
  for (auto& idx : indices) {
    check_index_dtype(idx, op);
    idx_shape = broadcast_shapes(idx_shape, idx.shape(), op);
  }
  return norm;
}

std::vector<array> convert_indices(const std::vector<array>& indices, const Shape& idx_shape, Stream st) {
  Dtype dt = index_dtype(indices);
  std::vector<array> out;
  for (auto& idx : indices) out.push_back(broadcast_to(astype(idx, dt, st), idx_shape, st));
  return out;
}

array gather_impl(const array& a, const std::vector<array>& indices, const std::vector<int>& axes_in,
                  const Shape& slice_sizes, const char* op, Stream st) {
  Shape idx_shape;
  std::vector<int> axes = check_indices(a, indices, axes_in, op, idx_shape);
  if (static_cast<int>(slice_sizes.size()) != a.ndim()) {
    fail<ValueError>("[", op, "] slice_sizes ", slice_sizes, " must have one entry per axis of an array of shape ",
                     a.shape());
  }
  for (int d = 0; d < a.ndim(); ++d) {
    if (slice_sizes[d] < 0 || slice_sizes[d] > a.shape()[d]) {
      fail<ValueError>("[", op, "] slice_sizes ", slice_sizes, " do not fit in an array of shape ", a.shape());
    }
  }
  for (size_t k = 0; k < indices.size(); ++k) {
    check_host_indices(indices[k], a.shape()[axes[k]], slice_sizes[axes[k]], axes_in[k], op);
  }
  std::vector<array> inputs{a};
  for (auto& idx : convert_indices(indices, idx_shape, st)) inputs.push_back(idx);
  Shape out_shape = idx_shape;
  out_shape.insert(out_shape.end(), slice_sizes.begin(), slice_sizes.end());
  return array(std::move(out_shape), a.dtype(), std::make_shared<Gather>(std::move(axes), slice_sizes),
               std::move(inputs), st);
}

array scatter_impl(const array& a, const std::vector<array>& indices, const array& updates,
                   const std::vector<int>& axes_in, ScatterMode mode, const char* op, Stream st) {
  Shape idx_shape;
  std::vector<int> axes = check_indices(a, indices, axes_in, op, idx_shape);
  const int ni = static_cast<int>(idx_shape.size());
  if (updates.ndim() != ni + a.ndim()) {
    fail<ValueError>("[", op, "] updates of shape ", updates.shape(), " must have ", ni + a.ndim(),
                     " dimensions: the index shape ", idx_shape, " followed by one block entry per axis of ",
                     a.shape());
  }
  Shape lead(updates.shape().begin(), updates.shape().begin() + ni);
  Shape block(updates.shape().begin() + ni, updates.shape().end());
  for (int d = 0; d < ni; ++d) {
    if (lead[d] != idx_shape[d] && lead[d] != 1) {
      fail<ValueError>("[", op, "] updates of shape ", updates.shape(), " do not match the index shape ", idx_shape);
    }
  }
  for (int d = 0; d < a.ndim(); ++d) {
    if (block[d] > a.shape()[d]) {
      fail<ValueError>("[", op, "] update blocks of shape ", block, " do not fit in an array of shape ", a.shape());
    }
  }
  for (size_t k = 0; k < indices.size(); ++k) {
    check_host_indices(indices[k], a.shape()[axes[k]], block[axes[k]], axes_in[k], op);
  }
  Shape full_shape = idx_shape;
  full_shape.insert(full_shape.end(), block.begin(), block.end());
  if (shape_size(full_shape) == 0) return a;
  std::vector<array> inputs{a};
  for (auto& idx : convert_indices(indices, idx_shape, st)) inputs.push_back(idx);
  inputs.push_back(broadcast_to(astype(updates, a.dtype(), st), full_shape, st));
  return array(a.shape(), a.dtype(), std::make_shared<Scatter>(std::move(axes), mode), std::move(inputs), st);
}

// The index arrays that address every element of a along all axes, with `indices` on `axis`
// (as NumPy's take_along_axis builds them). Returns them and their broadcast shape.
std::vector<array> along_axis_indices(const array& a, const array& indices, int axis, const char* op, Shape& shape,
                                      Stream st) {
  if (indices.ndim() != a.ndim()) {
    fail<ValueError>("[", op, "] indices of shape ", indices.shape(), " must have as many dimensions as the array, ",
                     a.shape());
  }
  shape = indices.shape();
  for (int d = 0; d < a.ndim(); ++d) {
    if (d == axis) continue;
    int64_t n = a.shape()[d], m = indices.shape()[d];
    if (n != m && n != 1 && m != 1) {
      fail<ValueError>("[", op, "] indices of shape ", indices.shape(), " do not broadcast with the array of shape ",
                       a.shape(), " outside axis ", axis);
    }
    shape[d] = n == 1 ? m : n;
  }
  bool wide = std::any_of(a.shape().begin(), a.shape().end(),
                          [](int64_t n) { return n > std::numeric_limits<int32_t>::max(); });
  Dtype ar = wide ? int64 : index_dtype({indices});
  std::vector<array> out;
  for (int d = 0; d < a.ndim(); ++d) {
    if (d == axis) {
      out.push_back(indices);
      continue;
    }
    Shape s(a.ndim(), 1);
    s[d] = a.shape()[d];
    out.push_back(reshape(arange(0, static_cast<double>(a.shape()[d]), 1, ar, st), s, st));
  }
  return out;
}

array roll_axis(const array& a, int64_t shift, int axis, Stream st) {
  int64_t n = a.shape()[axis];
  if (n == 0) return a;
  int64_t k = ((shift % n) + n) % n;
  if (k == 0) return a;
  Shape start(a.ndim(), 0), stop = a.shape();
  Shape start2 = start, stop2 = stop;
  start[axis] = n - k;
  stop2[axis] = n - k;
  return concatenate({slice(a, start, stop, {}, st), slice(a, start2, stop2, {}, st)}, axis, st);
}

}  // namespace

// ---- joining and splitting ----

array concatenate(const std::vector<array>& arrays, int axis, StreamOrDevice s) {
  if (arrays.empty()) fail<ValueError>("[concatenate] needs at least one array");
  const int nd = arrays[0].ndim();
  if (nd == 0) fail<ValueError>("[concatenate] 0-d arrays cannot be concatenated");
  int ax = normalize_axis(axis, nd, "concatenate");
  Stream st = to_stream(s);
  Dtype dt = arrays[0].dtype();
  Shape shape = arrays[0].shape();
  shape[ax] = 0;
  for (size_t k = 0; k < arrays.size(); ++k) {
    const array& x = arrays[k];
    bool ok = x.ndim() == nd;
    for (int d = 0; ok && d < nd; ++d) ok = d == ax || x.shape()[d] == arrays[0].shape()[d];
    if (!ok) {
      fail<ValueError>("[concatenate] array ", k, " has shape ", x.shape(), ", which does not match ",
                       arrays[0].shape(), " outside axis ", axis);
    }
    shape[ax] += x.shape()[ax];
    dt = promote_types(dt, x.dtype());
  }
  if (arrays.size() == 1) return astype(arrays[0], dt, st);
  std::vector<array> inputs;
  for (auto& x : arrays) inputs.push_back(astype(x, dt, st));
  return array(std::move(shape), dt, std::make_shared<Concatenate>(ax), std::move(inputs), st);
}

array stack(const std::vector<array>& arrays, int axis, StreamOrDevice s) {
  if (arrays.empty()) fail<ValueError>("[stack] needs at least one array");
  for (size_t k = 1; k < arrays.size(); ++k) {
    if (arrays[k].shape() != arrays[0].shape()) {
      fail<ValueError>("[stack] all arrays must have one shape; array 0 has ", arrays[0].shape(), " and array ", k,
                       " has ", arrays[k].shape());
    }
  }
  int ax = normalize_axis(axis, arrays[0].ndim() + 1, "stack");
  Stream st = to_stream(s);
  std::vector<array> expanded;
  for (auto& x : arrays) expanded.push_back(expand_dims(x, ax, st));
  return concatenate(expanded, ax, st);
}

std::vector<array> split(const array& a, const std::vector<int64_t>& indices, int axis, StreamOrDevice s) {
  int ax = normalize_axis(axis, a.ndim(), "split");
  Stream st = to_stream(s);
  std::vector<array> out;
  Shape start(a.ndim(), 0), stop = a.shape();
  for (size_t k = 0; k <= indices.size(); ++k) {
    start[ax] = k == 0 ? 0 : indices[k - 1];
    stop[ax] = k == indices.size() ? a.shape()[ax] : indices[k];
    out.push_back(slice(a, start, stop, {}, st));
  }
  return out;
}

std::vector<array> split(const array& a, int num_sections, int axis, StreamOrDevice s) {
  int ax = normalize_axis(axis, a.ndim(), "split");
  if (num_sections <= 0) fail<ValueError>("[split] number of sections must be positive, got ", num_sections);
  int64_t n = a.shape()[ax];
  if (n % num_sections != 0) {
    fail<ValueError>("[split] axis ", axis, " of size ", n, " does not divide into ", num_sections,
                     " equal sections");
  }
  std::vector<int64_t> indices;
  for (int k = 1; k < num_sections; ++k) indices.push_back(k * (n / num_sections));
  return split(a, indices, ax, s);
}

// ---- padding, tiling, repeating, rolling, flipping ----

array pad(const array& a, std::vector<std::pair<int64_t, int64_t>> widths, PadMode mode, const array& value,
          StreamOrDevice s) {
  const int nd = a.ndim();
  if (widths.size() == 1 && nd != 1) widths.assign(nd, widths[0]);
  if (static_cast<int>(widths.size()) != nd) {
    fail<ValueError>("[pad] ", widths.size(), " (before, after) pairs given for an array of ", nd, " dimensions");
  }
  for (auto& [b, e] : widths) {
    if (b < 0 || e < 0) fail<ValueError>("[pad] widths must be non-negative, got (", b, ", ", e, ")");
  }
  Stream st = to_stream(s);
  if (mode == PadMode::constant) {
    if (value.size() != 1) fail<ValueError>("[pad] the constant value must be a scalar, got shape ", value.shape());
    Shape shape = a.shape(), start(nd), stop(nd);
    for (int d = 0; d < nd; ++d) {
      shape[d] += widths[d].first + widths[d].second;
      start[d] = widths[d].first;
      stop[d] = widths[d].first + a.shape()[d];
    }
    if (shape == a.shape()) return a;
    array filled = full(shape, reshape(value, {}, st), a.dtype(), st);
    return slice_update(filled, a, start, stop, {}, st);
  }
  array out = a;
  for (int d = 0; d < nd; ++d) {
    auto [b, e] = widths[d];
    if (b == 0 && e == 0) continue;
    int64_t n = a.shape()[d];
    if (n == 0) {
      fail<ValueError>("[pad] cannot pad axis ", d, " of size 0 in ", mode == PadMode::edge ? "edge" : "reflect",
                       " mode");
    }
    // Source index of each output position p - b along this axis.
    std::vector<int64_t> idx(static_cast<size_t>(n + b + e));
    for (int64_t p = -b; p < n + e; ++p) {
      int64_t i;
      if (mode == PadMode::edge || n == 1) {
        i = std::clamp<int64_t>(p, 0, n - 1);
      } else {  // reflect: a triangle wave of period 2(n - 1)
        int64_t period = 2 * (n - 1);
        int64_t m = ((p % period) + period) % period;
        i = m < n ? m : period - m;
      }
      idx[p + b] = i;
    }
    out = take(out, array(idx, Shape{static_cast<int64_t>(idx.size())}), d, st);
  }
  return out;
}

array tile(const array& a, Shape reps, StreamOrDevice s) {
  for (auto r : reps) {
    if (r < 0) fail<ValueError>("[tile] repetitions must be non-negative, got ", reps);
  }
  Stream st = to_stream(s);
  const size_t nd = std::max<size_t>(a.ndim(), reps.size());
  Shape shape = a.shape();
  shape.insert(shape.begin(), nd - shape.size(), 1);
  reps.insert(reps.begin(), nd - reps.size(), 1);
  // (r0, n0, r1, n1, ...) by broadcasting (1, n0, 1, n1, ...), then merge each pair.
  Shape pairs, ones, out;
  for (size_t d = 0; d < nd; ++d) {
    ones.insert(ones.end(), {1, shape[d]});
    pairs.insert(pairs.end(), {reps[d], shape[d]});
    out.push_back(reps[d] * shape[d]);
  }
  return reshape(broadcast_to(reshape(a, ones, st), pairs, st), out, st);
}

array repeat(const array& a, int64_t repeats, std::optional<int> axis, StreamOrDevice s) {
  if (repeats < 0) fail<ValueError>("[repeat] repeats must be non-negative, got ", repeats);
  Stream st = to_stream(s);
  if (!axis) return repeat(reshape(a, {-1}, st), repeats, 0, st);
  int ax = normalize_axis(*axis, a.ndim(), "repeat");
  Shape wide = a.shape(), out = a.shape();
  wide.insert(wide.begin() + ax + 1, repeats);
  out[ax] *= repeats;
  return reshape(broadcast_to(expand_dims(a, ax + 1, st), wide, st), out, st);
}

array roll(const array& a, int64_t shift, std::optional<int> axis, StreamOrDevice s) {
  Stream st = to_stream(s);
  if (!axis) return reshape(roll_axis(reshape(a, {-1}, st), shift, 0, st), a.shape(), st);
  return roll_axis(a, shift, normalize_axis(*axis, a.ndim(), "roll"), st);
}

array roll(const array& a, Shape shifts, std::vector<int> axes, StreamOrDevice s) {
  if (shifts.size() == 1) shifts.assign(axes.size(), shifts[0]);
  if (shifts.size() != axes.size()) {
    fail<ValueError>("[roll] ", shifts.size(), " shifts given for ", axes.size(), " axes");
  }
  Stream st = to_stream(s);
  Shape total(a.ndim(), 0);
  for (size_t k = 0; k < axes.size(); ++k) total[normalize_axis(axes[k], a.ndim(), "roll")] += shifts[k];
  array out = a;
  for (int d = 0; d < a.ndim(); ++d) out = roll_axis(out, total[d], d, st);
  return out;
}

array flip(const array& a, std::optional<std::vector<int>> axes, StreamOrDevice s) {
  const int nd = a.ndim();
  std::vector<bool> flipped(nd, !axes);
  if (axes) {
    for (int ax : *axes) {
      int d = normalize_axis(ax, nd, "flip");
      if (flipped[d]) fail<ValueError>("[flip] axis ", ax, " appears twice");
      flipped[d] = true;
    }
  }
  Shape start(nd, 0), stop = a.shape(), step(nd, 1);
  for (int d = 0; d < nd; ++d) {
    if (!flipped[d]) continue;
    start[d] = -1;                   // the last element
    stop[d] = -a.shape()[d] - 1;     // before the first
    step[d] = -1;
  }
  return slice(a, start, stop, step, s);
}

// ---- triangles and diagonals ----

namespace {
array triangle(const array& a, int k, bool lower, const char* op, StreamOrDevice s) {
  if (a.ndim() == 0) fail<ValueError>("[", op, "] needs an array of at least 1 dimension, got a 0-d array");
  Stream st = to_stream(s);
  int64_t cols = a.shape()[a.ndim() - 1];
  int64_t rows = a.ndim() >= 2 ? a.shape()[a.ndim() - 2] : cols;
  array zero(0, a.dtype());
  if (lower) return where(tri(rows, cols, k, bool_, st), a, zero, st);
  return where(tri(rows, cols, k - 1, bool_, st), zero, a, st);
}
}  // namespace

array tril(const array& a, int k, StreamOrDevice s) { return triangle(a, k, true, "tril", s); }
array triu(const array& a, int k, StreamOrDevice s) { return triangle(a, k, false, "triu", s); }

array diagonal(const array& a, int offset, int axis1, int axis2, StreamOrDevice s) {
  if (a.ndim() < 2) fail<ValueError>("[diagonal] needs an array of at least 2 dimensions, got shape ", a.shape());
  int ax1 = normalize_axis(axis1, a.ndim(), "diagonal");
  int ax2 = normalize_axis(axis2, a.ndim(), "diagonal");
  if (ax1 == ax2) fail<ValueError>("[diagonal] axis1 and axis2 must differ, both are ", ax1);
  int64_t n1 = a.shape()[ax1], n2 = a.shape()[ax2], off = offset;
  int64_t len = off >= 0 ? std::min(n1, n2 - off) : std::min(n1 + off, n2);
  Shape shape;
  for (int d = 0; d < a.ndim(); ++d) {
    if (d != ax1 && d != ax2) shape.push_back(a.shape()[d]);
  }
  shape.push_back(std::max<int64_t>(len, 0));
  return array(std::move(shape), a.dtype(), std::make_shared<Diagonal>(offset, ax1, ax2), {a}, to_stream(s));
}

// ---- strided update ----

array slice_update(const array& src, const array& update, Shape start, Shape stop, Shape step, StreamOrDevice s) {
  const int nd = src.ndim();
  if (step.empty()) step.assign(start.size(), 1);
  if (static_cast<int>(start.size()) > nd || start.size() != stop.size() || start.size() != step.size()) {
    fail<ValueError>("[slice_update] start ", start, ", stop ", stop, " and step ", step,
                     " must have one length, at most ", nd);
  }
  for (size_t d = 0; d < step.size(); ++d) {
    if (step[d] == 0) fail<ValueError>("[slice_update] step cannot be zero (axis ", d, ")");
  }
  Stream st = to_stream(s);
  // slice() normalizes the bounds by Python's rules; its node is only read, never evaluated.
  array region = slice(src, start, stop, step, st);
  const auto& sp = static_cast<const Slice&>(region.primitive());
  const Shape& rs = region.shape();
  bool ok = update.ndim() <= nd;
  for (int d = 0; ok && d < update.ndim(); ++d) {
    int64_t u = update.shape()[d], r = rs[nd - update.ndim() + d];
    ok = u == r || u == 1;
  }
  if (!ok) {
    fail<ValueError>("[slice_update] update of shape ", update.shape(), " cannot be broadcast to the region of shape ",
                     rs);
  }
  if (region.size() == 0) return src;
  array upd = broadcast_to(astype(update, src.dtype(), st), rs, st);
  return array(src.shape(), src.dtype(), std::make_shared<SliceUpdate>(sp.start, sp.step), {src, upd}, st);
}

array dynamic_slice_update(const array& src, const array& update, const array& start, int axis, StreamOrDevice s) {
  const int nd = src.ndim();
  if (axis < -nd || axis >= nd) fail<ValueError>("[dynamic_slice_update] axis ", axis, " is out of range for ", nd, " dimensions");
  if (axis < 0) axis += nd;
  if (start.size() != 1 || !is_integer(start.dtype())) {
    fail<ValueError>("[dynamic_slice_update] start must be an integer scalar array, got shape ", start.shape(), " ",
                     start.dtype());
  }
  bool ok = update.ndim() == nd && update.shape(axis) <= src.shape(axis);
  for (int d = 0; ok && d < nd; ++d) ok = d == axis || update.shape(d) == src.shape(d);
  if (!ok) {
    fail<ValueError>("[dynamic_slice_update] update of shape ", update.shape(), " does not fit src of shape ", src.shape(),
                     " along axis ", axis);
  }
  Stream st = to_stream(s);
  if (update.size() == 0) return src;
  array upd = contiguous(astype(update, src.dtype(), st), st);
  array at = contiguous(reshape(astype(start, int32, st), {}, st), st);
  return array(src.shape(), src.dtype(), std::make_shared<DynamicSliceUpdate>(axis), {src, upd, at}, st);
}

// ---- integer indexing ----

array take(const array& a, const array& indices, std::optional<int> axis, StreamOrDevice s) {
  check_index_dtype(indices, "take");
  Stream st = to_stream(s);
  array x = axis ? a : reshape(a, {-1}, st);
  int ax = axis ? normalize_axis(*axis, a.ndim(), "take") : 0;
  const int ni = indices.ndim();
  // Result: x.shape[:ax] + indices.shape + x.shape[ax+1:].
  Shape out_shape(x.shape().begin(), x.shape().begin() + ax);
  out_shape.insert(out_shape.end(), indices.shape().begin(), indices.shape().end());
  out_shape.insert(out_shape.end(), x.shape().begin() + ax + 1, x.shape().end());
  if (x.shape()[ax] == 0 && indices.size() > 0) {
    fail<IndexError>("[take] cannot take from axis ", axis.value_or(0), " of size 0");
  }
  if (shape_size(out_shape) == 0) return zeros(out_shape, a.dtype(), st);
  Shape sizes = x.shape();
  sizes[ax] = 1;
  array g = gather_impl(x, {indices}, {ax}, sizes, "take", st);  // indices.shape + sizes
  Shape flat = indices.shape();
  for (int d = 0; d < x.ndim(); ++d) {
    if (d != ax) flat.push_back(x.shape()[d]);
  }
  g = reshape(g, flat, st);
  std::vector<int> perm;
  for (int d = 0; d < ax; ++d) perm.push_back(ni + d);
  for (int d = 0; d < ni; ++d) perm.push_back(d);
  for (int d = ni + ax; d < static_cast<int>(flat.size()); ++d) perm.push_back(d);
  return transpose(g, perm, st);
}

array take_along_axis(const array& a, const array& indices, int axis, StreamOrDevice s) {
  check_index_dtype(indices, "take_along_axis");
  int ax = normalize_axis(axis, a.ndim(), "take_along_axis");
  Stream st = to_stream(s);
  Shape shape;
  auto idx = along_axis_indices(a, indices, ax, "take_along_axis", shape, st);
  if (a.shape()[ax] == 0 && indices.size() > 0) {
    fail<IndexError>("[take_along_axis] cannot take from axis ", axis, " of size 0");
  }
  if (shape_size(shape) == 0) return zeros(shape, a.dtype(), st);
  std::vector<int> axes(a.ndim());
  for (int d = 0; d < a.ndim(); ++d) axes[d] = d;
  return reshape(gather_impl(a, idx, axes, Shape(a.ndim(), 1), "take_along_axis", st), shape, st);
}

array put_along_axis(const array& a, const array& indices, const array& values, int axis, StreamOrDevice s) {
  check_index_dtype(indices, "put_along_axis");
  int ax = normalize_axis(axis, a.ndim(), "put_along_axis");
  Stream st = to_stream(s);
  Shape shape;
  auto idx = along_axis_indices(a, indices, ax, "put_along_axis", shape, st);
  if (broadcast_shapes(values.shape(), shape, "put_along_axis") != shape) {
    fail<ValueError>("[put_along_axis] values of shape ", values.shape(), " cannot be broadcast to the index shape ",
                     shape);
  }
  if (a.shape()[ax] == 0 && indices.size() > 0) {
    fail<IndexError>("[put_along_axis] cannot put into axis ", axis, " of size 0");
  }
  Shape upd_shape = shape;
  upd_shape.insert(upd_shape.end(), a.ndim(), 1);
  array upd = reshape(broadcast_to(values, shape, st), upd_shape, st);
  std::vector<int> axes(a.ndim());
  for (int d = 0; d < a.ndim(); ++d) axes[d] = d;
  return scatter_impl(a, idx, upd, axes, ScatterMode::set, "put_along_axis", st);
}

array gather(const array& a, const std::vector<array>& indices, const std::vector<int>& axes, Shape slice_sizes,
             StreamOrDevice s) {
  return gather_impl(a, indices, axes, slice_sizes, "gather", to_stream(s));
}

array scatter(const array& a, const std::vector<array>& indices, const array& updates, const std::vector<int>& axes,
              ScatterMode mode, StreamOrDevice s) {
  return scatter_impl(a, indices, updates, axes, mode, "scatter", to_stream(s));
}

}  // namespace kiln
