#include "kiln/ops_shape.h"

#include <algorithm>
#include <numeric>

#include "kiln/ops_elementwise.h"
#include "kiln/primitives_shape.h"

namespace kiln {

int normalize_axis(int axis, int ndim, const char* op) {
  if (axis < -ndim || axis >= ndim) {
    fail<IndexError>("[", op, "] axis ", axis, " is out of range for an array of ", ndim, " dimensions");
  }
  return axis < 0 ? axis + ndim : axis;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1) {
      fail<ValueError>("[", op, "] shapes ", a, " and ", b, " cannot be broadcast together");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

array reshape(const array& a, Shape shape, StreamOrDevice s) {
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) fail<ValueError>("[reshape] only one dimension can be -1, got shape ", shape);
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      fail<ValueError>("[reshape] negative dimension in shape ", shape);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || a.size() % known != 0) {
      fail<ValueError>("[reshape] cannot reshape array of size ", a.size(), " into shape ", shape);
    }
    shape[infer] = a.size() / known;
  }
  if (shape_size(shape) != a.size()) {
    fail<ValueError>("[reshape] cannot reshape array of size ", a.size(), " into shape ", shape);
  }
  if (shape == a.shape()) return a;
  return array(std::move(shape), a.dtype(), std::make_shared<Reshape>(), {a}, to_stream(s));
}

array flatten(const array& a, int start_axis, int end_axis, StreamOrDevice s) {
  if (a.ndim() == 0) return reshape(a, {1}, s);
  int start = normalize_axis(start_axis, a.ndim(), "flatten");
  int end = normalize_axis(end_axis, a.ndim(), "flatten");
  if (start > end) fail<ValueError>("[flatten] start axis ", start_axis, " is after end axis ", end_axis);
  Shape shape(a.shape().begin(), a.shape().begin() + start);
  int64_t n = 1;
  for (int i = start; i <= end; ++i) n *= a.shape()[i];
  shape.push_back(n);
  shape.insert(shape.end(), a.shape().begin() + end + 1, a.shape().end());
  return reshape(a, std::move(shape), s);
}

array transpose(const array& a, std::vector<int> axes, StreamOrDevice s) {
  if (static_cast<int>(axes.size()) != a.ndim()) {
    fail<ValueError>("[transpose] ", axes.size(), " axes given for an array of ", a.ndim(), " dimensions");
  }
  std::vector<bool> used(a.ndim(), false);
  for (auto& ax : axes) {
    ax = normalize_axis(ax, a.ndim(), "transpose");
    if (used[ax]) fail<ValueError>("[transpose] axis ", ax, " appears twice");
    used[ax] = true;
  }
  bool identity = true;
  for (int i = 0; i < a.ndim(); ++i) identity &= axes[i] == i;
  if (identity) return a;
  Shape shape(a.ndim());
  for (int i = 0; i < a.ndim(); ++i) shape[i] = a.shape()[axes[i]];
  return array(std::move(shape), a.dtype(), std::make_shared<Transpose>(std::move(axes)), {a}, to_stream(s));
}

array transpose(const array& a, StreamOrDevice s) {
  std::vector<int> axes(a.ndim());
  std::iota(axes.rbegin(), axes.rend(), 0);
  return transpose(a, std::move(axes), s);
}

array swapaxes(const array& a, int axis1, int axis2, StreamOrDevice s) {
  int x = normalize_axis(axis1, a.ndim(), "swapaxes");
  int y = normalize_axis(axis2, a.ndim(), "swapaxes");
  std::vector<int> axes(a.ndim());
  std::iota(axes.begin(), axes.end(), 0);
  std::swap(axes[x], axes[y]);
  return transpose(a, std::move(axes), s);
}

array moveaxis(const array& a, int source, int destination, StreamOrDevice s) {
  int src = normalize_axis(source, a.ndim(), "moveaxis");
  int dst = normalize_axis(destination, a.ndim(), "moveaxis");
  std::vector<int> axes;
  for (int i = 0; i < a.ndim(); ++i) {
    if (i != src) axes.push_back(i);
  }
  axes.insert(axes.begin() + dst, src);
  return transpose(a, std::move(axes), s);
}

array broadcast_to(const array& a, const Shape& shape, StreamOrDevice s) {
  if (a.shape() == shape) return a;
  if (shape.size() < a.shape().size()) {
    fail<ValueError>("[broadcast_to] cannot broadcast shape ", a.shape(), " to ", shape);
  }
  size_t lead = shape.size() - a.shape().size();
  for (size_t i = 0; i < a.shape().size(); ++i) {
    if (a.shape()[i] != shape[lead + i] && a.shape()[i] != 1) {
      fail<ValueError>("[broadcast_to] cannot broadcast shape ", a.shape(), " to ", shape);
    }
  }
  for (auto d : shape) {
    if (d < 0) fail<ValueError>("[broadcast_to] negative dimension in shape ", shape);
  }
  if (a.is_available()) {
    // Already computed (a Python scalar beside an array, mostly): the view its kernel would make,
    // made now, so the graph has no node for it.
    Strides strides(shape.size(), 0);
    for (size_t i = 0; i < a.shape().size(); ++i) strides[lead + i] = a.shape()[i] == 1 ? 0 : a.strides()[i];
    return array(a.buffer(), shape, a.dtype(), std::move(strides), a.offset(), to_stream(s));
  }
  return array(shape, a.dtype(), std::make_shared<BroadcastTo>(), {a}, to_stream(s));
}

std::vector<array> broadcast_arrays(const std::vector<array>& arrays, StreamOrDevice s) {
  Shape shape;
  for (auto& a : arrays) shape = broadcast_shapes(shape, a.shape(), "broadcast_arrays");
  std::vector<array> out;
  for (auto& a : arrays) out.push_back(broadcast_to(a, shape, s));
  return out;
}

array expand_dims(const array& a, std::vector<int> axes, StreamOrDevice s) {
  int nd = a.ndim() + static_cast<int>(axes.size());
  for (auto& ax : axes) ax = normalize_axis(ax, nd, "expand_dims");
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) {
    fail<ValueError>("[expand_dims] repeated axis");
  }
  Shape shape;
  size_t j = 0, k = 0;
  for (int i = 0; i < nd; ++i) {
    if (k < axes.size() && axes[k] == i) {
      shape.push_back(1);
      ++k;
    } else {
      shape.push_back(a.shape()[j++]);
    }
  }
  return reshape(a, std::move(shape), s);
}

array expand_dims(const array& a, int axis, StreamOrDevice s) { return expand_dims(a, std::vector<int>{axis}, s); }

array squeeze(const array& a, std::vector<int> axes, StreamOrDevice s) {
  std::vector<bool> drop(a.ndim(), false);
  for (auto ax : axes) {
    int n = normalize_axis(ax, a.ndim(), "squeeze");
    if (a.shape()[n] != 1) fail<ValueError>("[squeeze] axis ", ax, " has size ", a.shape()[n], ", not 1");
    drop[n] = true;
  }
  Shape shape;
  for (int i = 0; i < a.ndim(); ++i) {
    if (!drop[i]) shape.push_back(a.shape()[i]);
  }
  return reshape(a, std::move(shape), s);
}

array squeeze(const array& a, StreamOrDevice s) {
  std::vector<int> axes;
  for (int i = 0; i < a.ndim(); ++i) {
    if (a.shape()[i] == 1) axes.push_back(i);
  }
  return squeeze(a, std::move(axes), s);
}

array slice(const array& a, Shape start, Shape stop, Shape step, StreamOrDevice s) {
  int nd = a.ndim();
  if (step.empty()) step.assign(start.size(), 1);
  if (static_cast<int>(start.size()) > nd || start.size() != stop.size() || start.size() != step.size()) {
    fail<ValueError>("[slice] start ", start, ", stop ", stop, " and step ", step,
                     " must have the same length, at most ", nd);
  }
  start.resize(nd, 0);
  step.resize(nd, 1);
  Shape out_shape(nd);
  size_t given = stop.size();
  for (int i = 0; i < nd; ++i) {
    int64_t n = a.shape()[i];
    int64_t st = step[i];
    if (st == 0) fail<ValueError>("[slice] step cannot be zero (axis ", i, ")");
    int64_t b = start[i], e = static_cast<size_t>(i) < given ? stop[i] : (st > 0 ? n : -n - 1);
    // Python's rules: negative bounds count from the end, then clamp.
    auto clamp = [&](int64_t v, bool is_stop) {
      if (v < 0) v += n;
      if (st > 0) return std::clamp<int64_t>(v, 0, n);
      (void)is_stop;
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    if (static_cast<size_t>(i) >= given && st < 0) {
      b = n - 1;
      e = -1;
      start[i] = b;
    } else {
      b = clamp(b, false);
      e = (static_cast<size_t>(i) >= given) ? e : clamp(e, true);
      start[i] = b;
    }
    int64_t len = st > 0 ? (e - b + st - 1) / st : (b - e + (-st) - 1) / (-st);
    out_shape[i] = std::max<int64_t>(len, 0);
  }
  return array(std::move(out_shape), a.dtype(), std::make_shared<Slice>(std::move(start), std::move(step)), {a},
               to_stream(s));
}

array as_strided(const array& a, Shape shape, Strides strides, int64_t offset, StreamOrDevice s) {
  if (shape.size() != strides.size()) {
    fail<ValueError>("[as_strided] shape ", shape, " and strides ", strides, " differ in length");
  }
  // Every element the view can reach must lie inside the input's data.
  int64_t lo = offset, hi = offset;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) fail<ValueError>("[as_strided] negative dimension in shape ", shape);
    if (shape[i] == 0) lo = 0, hi = -1;
  }
  if (hi >= lo) {
    for (size_t i = 0; i < shape.size(); ++i) (strides[i] < 0 ? lo : hi) += (shape[i] - 1) * strides[i];
    if (lo < 0 || hi >= a.size()) {
      fail<ValueError>("[as_strided] shape ", shape, ", strides ", strides, " and offset ", offset,
                       " reach elements ", lo, " to ", hi, " of an array of ", a.size());
    }
  }
  return array(std::move(shape), a.dtype(), std::make_shared<AsStrided>(std::move(strides), offset),
               {contiguous(a, s)}, to_stream(s));
}

}  // namespace kiln
