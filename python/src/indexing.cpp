// NumPy-style indexing: a[1:3, ..., None, -1], one integer-array index (a[[0, 2]], a[:, idx]),
// and assignment to basic indices (a[1:3] = x) as a slice_update that rebinds the array.
#include <algorithm>
#include <string>

#include "common.h"

namespace kiln_py {

using kiln::array;
using kiln::Shape;

namespace {

// What an index tuple does, as kiln ops: slice every axis, drop the integer-indexed axes, insert
// the new (None) axes, then take along one axis for an integer-array index.
struct Plan {
  Shape start, stop, step;    // per axis of the array
  Shape region;               // the sliced region's shape (integer-indexed axes have length 1)
  std::vector<int> int_axes;  // axes given an integer
  std::vector<int> new_axes;  // positions of None in the result (before an array index widens it)
  std::optional<array> indices;
  int indices_axis = 0;   // the axis the array index takes along, in the basic result
  bool to_front = false;  // its axes go first: NumPy's rule when integers are not adjacent to it
  bool sliced = false;    // some axis is not taken whole
};

enum Token { kAdvanced, kSeparator };

[[noreturn]] void bad_index(nb::handle h) {
  kiln::fail<kiln::IndexError>("[index] only integers, slices, ..., None and integer arrays are valid indices, not '",
                               nb::type_name(h.type()).c_str(), "'");
}

Plan make_plan(const array& a, nb::handle key) {
  std::vector<nb::handle> entries;
  if (PyTuple_Check(key.ptr())) {
    for (nb::handle h : nb::borrow<nb::tuple>(key)) entries.push_back(h);
  } else {
    entries.push_back(key);
  }
  // Integers given as 0-d arrays (NumPy or kiln scalars) act as Python integers.
  std::vector<nb::object> keep;  // owns converted entries
  std::vector<std::optional<array>> as_array(entries.size());
  int consumed = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    nb::handle h = entries[i];
    if (h.is_none() || h.is(nb::ellipsis())) continue;
    ++consumed;
    if (PyBool_Check(h.ptr())) kiln::fail<kiln::IndexError>("[index] boolean indices are not supported");
    if (PyLong_Check(h.ptr()) || PySlice_Check(h.ptr())) continue;
    if (!nb::detail::is_array_like(h)) bad_index(h);
    array idx = to_array(h);
    if (!kiln::is_integer(idx.dtype())) {
      kiln::fail<kiln::IndexError>("[index] index arrays must have an integer dtype, not ", idx.dtype());
    }
    if (idx.ndim() == 0) {
      keep.push_back(item(idx));
      entries[i] = keep.back();
    } else {
      as_array[i] = idx;
    }
  }
  const int nd = a.ndim();
  if (consumed > nd) {
    kiln::fail<kiln::IndexError>("[index] too many indices: the array has ", nd, " dimensions but ", consumed,
                                 " were indexed");
  }

  Plan p;
  p.start.assign(nd, 0);
  p.step.assign(nd, 1);
  p.stop = a.shape();
  p.region = a.shape();
  std::vector<Token> tokens;
  int ax = 0, out = 0;
  bool ellipsis = false;
  for (size_t i = 0; i < entries.size(); ++i) {
    nb::handle h = entries[i];
    PyObject* o = h.ptr();
    if (h.is_none()) {
      p.new_axes.push_back(out++);
      tokens.push_back(kSeparator);
    } else if (h.is(nb::ellipsis())) {
      if (ellipsis) kiln::fail<kiln::IndexError>("[index] an index can have only one ellipsis ('...')");
      ellipsis = true;
      int skip = nd - consumed;
      ax += skip;
      out += skip;
      if (skip > 0) tokens.push_back(kSeparator);
    } else if (PySlice_Check(o)) {
      Py_ssize_t start, stop, step;
      if (PySlice_Unpack(o, &start, &stop, &step) < 0) throw nb::python_error();
      int64_t n = a.shape()[ax];
      p.region[ax] = PySlice_AdjustIndices(static_cast<Py_ssize_t>(n), &start, &stop, step);
      // kiln reads negative bounds from the end: "before the first element" (-1 here) is -n - 1.
      if (start < 0) start = -n - 1;
      if (stop < 0) stop = -n - 1;
      p.start[ax] = start;
      p.stop[ax] = stop;
      p.step[ax] = step;
      p.sliced |= start != 0 || stop != n || step != 1;
      ++ax;
      ++out;
      tokens.push_back(kSeparator);
    } else if (as_array[i]) {
      if (p.indices) kiln::fail<kiln::IndexError>("[index] only one integer-array index is supported");
      p.indices = as_array[i];
      p.indices_axis = out;
      ++ax;
      ++out;
      tokens.push_back(kAdvanced);
    } else {
      int64_t n = a.shape()[ax];
      int64_t v = nb::cast<int64_t>(h);
      if (v < -n || v >= n) {
        kiln::fail<kiln::IndexError>("[index] index ", v, " is out of bounds for axis ", ax, " with size ", n);
      }
      if (v < 0) v += n;
      p.start[ax] = v;
      p.stop[ax] = v + 1;
      p.region[ax] = 1;
      p.sliced |= n != 1;
      p.int_axes.push_back(ax);
      ++ax;
      tokens.push_back(kAdvanced);
    }
  }
  if (p.indices) {
    // The advanced entries (integers and the array) must form one run, else NumPy puts the
    // array's axes first.
    int runs = 0;
    for (size_t i = 0; i < tokens.size(); ++i) runs += tokens[i] == kAdvanced && (i == 0 || tokens[i - 1] != kAdvanced);
    p.to_front = runs > 1;
  }
  return p;
}

array basic(const array& a, const Plan& p) {
  array r = p.sliced ? kiln::slice(a, p.start, p.stop, p.step) : a;
  if (!p.int_axes.empty()) r = kiln::squeeze(r, p.int_axes);
  if (!p.new_axes.empty()) r = kiln::expand_dims(r, p.new_axes);
  return r;
}

array getitem(const array& a, nb::handle key) {
  Plan p = make_plan(a, key);
  array r = basic(a, p);
  if (!p.indices) return r;
  r = kiln::take(r, *p.indices, p.indices_axis);
  if (p.to_front && p.indices_axis != 0) {
    int k = p.indices->ndim();
    std::vector<int> perm;
    for (int i = 0; i < k; ++i) perm.push_back(p.indices_axis + i);
    for (int i = 0; i < r.ndim(); ++i) {
      if (i < p.indices_axis || i >= p.indices_axis + k) perm.push_back(i);
    }
    r = kiln::transpose(r, perm);
  }
  return r;
}

void setitem(array& a, nb::handle key, nb::handle value) {
  Plan p = make_plan(a, key);
  if (p.indices) {
    kiln::fail<kiln::IndexError>("[index] assignment through an integer-array index is not supported yet");
  }
  // The value broadcasts to what a[key] would be, then fills the region that shape came from.
  Shape indexed;
  for (size_t ax = 0; ax < p.region.size(); ++ax) {
    if (std::find(p.int_axes.begin(), p.int_axes.end(), static_cast<int>(ax)) == p.int_axes.end()) {
      indexed.push_back(p.region[ax]);
    }
  }
  for (int pos : p.new_axes) indexed.insert(indexed.begin() + pos, 1);
  array update = kiln::broadcast_to(to_array_like(value, a), indexed);
  a = kiln::slice_update(a, kiln::reshape(update, p.region), p.start, p.stop, p.step);
}

}  // namespace

void init_indexing(nb::class_<array>& cls) {
  cls.def("__getitem__", &getitem, "key"_a.none(),
          "Indexing with integers, slices, ..., None and one integer array (views where possible).");
  cls.def("__setitem__", &setitem, "key"_a.none(), "value"_a,
          "Assigns to a[key] (integers, slices, ..., None): the array becomes an updated copy.");
}

}  // namespace kiln_py
