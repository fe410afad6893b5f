// Conversions between Python values and arrays.
#include <complex>
#include <cstring>
#include <limits>
#include <string>

#include "interop.h"

namespace nanobind::detail {

bool is_array_like(handle h) {
  PyObject* p = h.ptr();
  if (nb::isinstance<kiln::array>(h)) return true;
  if (PyBool_Check(p) || PyLong_Check(p) || PyFloat_Check(p) || PyComplex_Check(p)) return true;
  if (PyList_Check(p) || PyTuple_Check(p)) return true;
  if (PyUnicode_Check(p) || PyBytes_Check(p) || PyByteArray_Check(p) || h.is_none()) return false;
  return PyObject_CheckBuffer(p) || nb::hasattr(h, "__dlpack__") || nb::hasattr(h, "__array__");
}

}  // namespace nanobind::detail

namespace kiln_py {

using kiln::array;
using kiln::Dtype;
using kiln::Shape;

namespace {

[[noreturn]] void raise_overflow(const std::string& msg) {
  PyErr_SetString(PyExc_OverflowError, msg.c_str());
  throw nb::python_error();
}

void check_python_error() {
  if (PyErr_Occurred()) throw nb::python_error();
}

bool is_python_scalar(nb::handle h) {
  PyObject* p = h.ptr();
  return PyBool_Check(p) || PyLong_CheckExact(p) || PyFloat_CheckExact(p) || PyComplex_CheckExact(p);
}

// A Python int as int64, or as uint64 (with `wide` set) when it is above INT64_MAX.
struct PyInt {
  int64_t v = 0;
  uint64_t u = 0;
  bool wide = false;
};

PyInt read_int(PyObject* p) {
  PyInt r;
  int overflow = 0;
  r.v = PyLong_AsLongLongAndOverflow(p, &overflow);
  check_python_error();
  if (overflow > 0) {
    r.u = PyLong_AsUnsignedLongLong(p);
    if (PyErr_Occurred()) {
      PyErr_Clear();
      raise_overflow(std::string("Python integer ") + nb::str(nb::handle(p)).c_str() +
                     " is out of range for int64 and uint64");
    }
    r.wide = true;
  } else if (overflow < 0) {
    raise_overflow(std::string("Python integer ") + nb::str(nb::handle(p)).c_str() + " is out of range for int64");
  }
  return r;
}

// Whether an integer dtype holds the value.
bool int_fits(const PyInt& x, Dtype d) {
  int bits = static_cast<int>(kiln::size_of(d)) * 8;
  if (kiln::is_unsigned(d)) {
    if (x.wide) return bits == 64;
    return x.v >= 0 && (bits == 64 || x.v <= (int64_t{1} << bits) - 1);
  }
  if (x.wide) return false;
  if (bits == 64) return true;
  return x.v >= -(int64_t{1} << (bits - 1)) && x.v <= (int64_t{1} << (bits - 1)) - 1;
}

array int_scalar(const PyInt& x, Dtype d) {
  return x.wide ? array(static_cast<int64_t>(x.u), d) : array(x.v, d);  // uint64 wraps back exactly
}

kiln::complex64_t read_complex(PyObject* p) {
  Py_complex c = PyComplex_AsCComplex(p);
  check_python_error();
  return kiln::complex64_t(static_cast<float>(c.real), static_cast<float>(c.imag));
}

array python_scalar(PyObject* p) {
  if (PyBool_Check(p)) return array(p == Py_True);
  if (PyLong_Check(p)) {
    PyInt x = read_int(p);
    return x.wide ? int_scalar(x, kiln::uint64) : array(x.v);
  }
  if (PyFloat_Check(p)) return array(PyFloat_AsDouble(p));
  return array(read_complex(p));
}

}  // namespace

// ---- NumPy arrays and other buffer / DLPack providers ----

std::optional<Dtype> dtype_of_dlpack(nb::dlpack::dtype t) {
  using C = nb::dlpack::dtype_code;
  auto code = static_cast<C>(t.code);
  if (t.lanes != 1) return std::nullopt;
  switch (code) {
    case C::Bool:
      if (t.bits == 8) return kiln::bool_;
      break;
    case C::Int:
      if (t.bits == 8) return kiln::int8;
      if (t.bits == 16) return kiln::int16;
      if (t.bits == 32) return kiln::int32;
      if (t.bits == 64) return kiln::int64;
      break;
    case C::UInt:
      if (t.bits == 8) return kiln::uint8;
      if (t.bits == 16) return kiln::uint16;
      if (t.bits == 32) return kiln::uint32;
      if (t.bits == 64) return kiln::uint64;
      break;
    case C::Float:
      if (t.bits == 16) return kiln::float16;
      if (t.bits == 32) return kiln::float32;
      if (t.bits == 64) return kiln::float64;
      break;
    case C::Bfloat:
      if (t.bits == 16) return kiln::bfloat16;
      break;
    case C::Complex:
      if (t.bits == 64) return kiln::complex64;
      break;
    default:
      break;
  }
  return std::nullopt;
}

namespace {

// Calls f(element pointer) for each element in row-major order, following the strides.
template <class F>
void for_each_element(const HostArray& nd, F&& f) {
  size_t nd_ = nd.ndim();
  size_t item = nd.itemsize();
  const char* base = static_cast<const char*>(nd.data());
  std::vector<size_t> idx(nd_, 0);
  int64_t pos = 0;  // in elements
  for (size_t i = 0; i < nd.size(); ++i) {
    f(base + pos * static_cast<int64_t>(item));
    for (size_t d = nd_; d-- > 0;) {
      if (++idx[d] < nd.shape(d)) {
        pos += nd.stride(d);
        break;
      }
      pos -= nd.stride(d) * static_cast<int64_t>(nd.shape(d) - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace

array copy_host_array(const HostArray& nd) {
  Shape shape(nd.ndim());
  for (size_t d = 0; d < nd.ndim(); ++d) shape[d] = static_cast<int64_t>(nd.shape(d));
  auto t = nd.dtype();
  if (t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Complex) && t.bits == 128 && t.lanes == 1) {
    // kiln has no complex128: narrow to complex64.
    std::vector<kiln::complex64_t> out;
    out.reserve(nd.size());
    for_each_element(nd, [&](const char* p) {
      double v[2];
      std::memcpy(v, p, sizeof(v));
      out.emplace_back(static_cast<float>(v[0]), static_cast<float>(v[1]));
    });
    return array(out.data(), std::move(shape), kiln::complex64);
  }
  auto dtype = dtype_of_dlpack(t);
  if (!dtype) {
    kiln::fail<kiln::TypeError>("[array] unsupported element type (DLPack code ", int(t.code), ", ", int(t.bits),
                                " bits)");
  }
  if (row_contiguous(nd) || nd.size() == 0) return array(nd.data(), std::move(shape), *dtype);
  std::vector<char> packed(nd.size() * nd.itemsize());
  char* dst = packed.data();
  size_t item = nd.itemsize();
  for_each_element(nd, [&](const char* p) {
    std::memcpy(dst, p, item);
    dst += item;
  });
  return array(packed.data(), std::move(shape), *dtype);
}

namespace {

// ---- nested lists ----

enum Kind { kBool, kInt, kFloat, kComplex };

struct ListScan {
  Shape shape;
  std::vector<PyObject*> leaves;  // borrowed from the (live) containers
  bool scalars_only = true;
};

bool is_sequence(PyObject* p) { return PyList_Check(p) || PyTuple_Check(p); }

void scan(PyObject* obj, size_t depth, ListScan& s) {
  if (depth == s.shape.size()) {
    if (is_sequence(obj)) kiln::fail<kiln::ValueError>("[array] nested sequences of different depths");
    if (!(PyBool_Check(obj) || PyLong_Check(obj) || PyFloat_Check(obj) || PyComplex_Check(obj))) {
      s.scalars_only = false;
    }
    s.leaves.push_back(obj);
    return;
  }
  if (!is_sequence(obj)) {
    if (!(PyBool_Check(obj) || PyLong_Check(obj) || PyFloat_Check(obj) || PyComplex_Check(obj))) {
      s.scalars_only = false;  // an array among lists: stacked instead
      return;
    }
    kiln::fail<kiln::ValueError>("[array] nested sequences of different depths");
  }
  Py_ssize_t n = PySequence_Fast_GET_SIZE(obj);
  if (n != s.shape[depth]) {
    kiln::fail<kiln::ValueError>("[array] inhomogeneous nested sequences: length ", n, " where ", s.shape[depth],
                                 " was expected at depth ", depth);
  }
  PyObject** items = PySequence_Fast_ITEMS(obj);
  for (Py_ssize_t i = 0; i < n && s.scalars_only; ++i) scan(items[i], depth + 1, s);
}

array from_list(nb::handle obj) {
  ListScan s;
  for (PyObject* cur = obj.ptr(); is_sequence(cur);) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(cur);
    s.shape.push_back(n);
    if (n == 0) break;
    cur = PySequence_Fast_ITEMS(cur)[0];
  }
  scan(obj.ptr(), 0, s);
  if (!s.scalars_only) {
    // Elements that are arrays of their own (kiln or NumPy arrays, NumPy scalars): stack them.
    std::vector<array> parts;
    for (nb::handle item : nb::borrow<nb::sequence>(obj)) parts.push_back(to_array(item));
    return kiln::stack(parts);
  }
  int kind = kBool;
  bool negative = false, wide = false;
  for (PyObject* p : s.leaves) {
    if (PyBool_Check(p)) continue;
    if (PyLong_Check(p)) {
      kind = std::max<int>(kind, kInt);
      if (kind == kInt) {
        PyInt x = read_int(p);
        negative |= !x.wide && x.v < 0;
        wide |= x.wide;
      }
    } else {
      kind = std::max<int>(kind, PyFloat_Check(p) ? kFloat : kComplex);
    }
  }
  if (s.leaves.empty()) kind = kFloat;  // NumPy's default for an empty list
  switch (kind) {
    case kBool: {
      std::vector<uint8_t> v;
      for (PyObject* p : s.leaves) v.push_back(p == Py_True);
      return array(v.data(), s.shape, kiln::bool_);
    }
    case kInt: {
      if (wide && negative) raise_overflow("[array] integers beyond int64 mixed with negative ones");
      std::vector<int64_t> v;
      for (PyObject* p : s.leaves) {
        PyInt x = read_int(p);
        v.push_back(x.wide ? static_cast<int64_t>(x.u) : x.v);
      }
      return array(v.data(), s.shape, wide ? kiln::uint64 : kiln::int64);
    }
    case kFloat: {
      std::vector<double> v;
      for (PyObject* p : s.leaves) {
        v.push_back(PyFloat_AsDouble(p));
        check_python_error();
      }
      return array(v.data(), s.shape, kiln::float64);
    }
    default: {
      std::vector<kiln::complex64_t> v;
      for (PyObject* p : s.leaves) v.push_back(read_complex(p));
      return array(v.data(), s.shape, kiln::complex64);
    }
  }
}

array convert(nb::handle obj) {
  PyObject* p = obj.ptr();
  if (nb::isinstance<array>(obj)) return nb::cast<array>(obj);
  if (PyBool_Check(p) || PyLong_Check(p) || PyFloat_Check(p) || PyComplex_Check(p)) return python_scalar(p);
  if (is_sequence(p)) return from_list(obj);
  HostArray nd;
  if (!PyUnicode_Check(p) && !PyBytes_Check(p)) {
    // GPU memory (a PyTorch CUDA tensor): copied on the GPU, after the DLPack stream handshake.
    if (on_cuda_device(obj)) return import_array(obj, CopyMode::always, "array");
    if (nb::try_cast(obj, nd)) return copy_host_array(nd);
    if (nb::hasattr(obj, "__array__")) {
      nb::object converted = obj.attr("__array__")();
      if (nb::try_cast(converted, nd)) return copy_host_array(nd);
    }
  }
  kiln::fail<kiln::TypeError>("[array] cannot convert an object of type '", nb::type_name(obj.type()).c_str(),
                              "' to an array");
}

}  // namespace

array to_array(nb::handle obj, std::optional<Dtype> dtype) {
  array a = convert(obj);
  return dtype && a.dtype() != *dtype ? kiln::astype(a, *dtype) : a;
}

array to_array_like(nb::handle obj, const array& like) {
  if (!is_python_scalar(obj)) return to_array(obj);
  PyObject* p = obj.ptr();
  Dtype d = like.dtype();
  if (PyBool_Check(p)) return array(p == Py_True);  // bool promotes to anything
  if (PyLong_Check(p)) {
    PyInt x = read_int(p);
    if (d == kiln::bool_) d = int_fits(x, kiln::int32) ? kiln::int32 : kiln::int64;
    if (kiln::is_inexact(d)) return array(x.wide ? static_cast<double>(x.u) : static_cast<double>(x.v), d);
    if (!int_fits(x, d)) {
      raise_overflow(std::string("Python integer ") + nb::str(obj).c_str() + " out of bounds for " +
                     kiln::dtype_name(d));
    }
    return int_scalar(x, d);
  }
  if (PyFloat_Check(p)) return array(PyFloat_AsDouble(p), kiln::is_inexact(d) ? d : kiln::float32);
  return array(read_complex(p));
}

std::pair<array, array> to_arrays(nb::handle a, nb::handle b) {
  bool sa = is_python_scalar(a), sb = is_python_scalar(b);
  if (sa && !sb) {
    array y = to_array(b);
    return {to_array_like(a, y), y};
  }
  if (sb && !sa) {
    array x = to_array(a);
    return {x, to_array_like(b, x)};
  }
  return {to_array(a), to_array(b)};
}

std::vector<array> to_array_list(const std::vector<ArrayLike>& xs) {
  std::vector<array> out;
  out.reserve(xs.size());
  for (auto& x : xs) out.push_back(to_array(x));
  return out;
}

Shape to_shape(const ShapeArg& s) {
  if (auto* n = std::get_if<int64_t>(&s)) return Shape{*n};
  return std::get<std::vector<int64_t>>(s);
}

std::vector<int> to_axes(const AxisArg& a) {
  if (auto* n = std::get_if<int>(&a)) return {*n};
  return std::get<std::vector<int>>(a);
}

namespace {

template <class T>
nb::object to_python(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return nb::bool_(v);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return nb::steal(PyLong_FromUnsignedLongLong(v));
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return nb::steal(PyLong_FromLongLong(v));
  } else if constexpr (std::is_same_v<T, double>) {
    return nb::float_(v);
  } else {
    return nb::steal(PyComplex_FromDoubles(v.re, v.im));
  }
}

// Runs f.template operator()<T>() with T the Python-facing C++ type of the dtype's kind.
template <class F>
nb::object by_kind(Dtype d, F&& f) {
  switch (kiln::kind_of(d)) {
    case kiln::DtypeKind::boolean:
      return f.template operator()<bool>();
    case kiln::DtypeKind::unsigned_int:
      return f.template operator()<uint64_t>();
    case kiln::DtypeKind::signed_int:
      return f.template operator()<int64_t>();
    case kiln::DtypeKind::floating:
      return f.template operator()<double>();
    default:
      return f.template operator()<kiln::complex64_t>();
  }
}

template <class T>
nb::object nested(const std::vector<T>& v, const Shape& shape, size_t depth, size_t& pos) {
  nb::list out;
  for (int64_t i = 0; i < shape[depth]; ++i) {
    if (depth + 1 == shape.size()) {
      out.append(to_python<T>(v[pos++]));
    } else {
      out.append(nested(v, shape, depth + 1, pos));
    }
  }
  return out;
}

}  // namespace

nb::object item(array a) {
  return by_kind(a.dtype(), [&]<class T>() { return to_python<T>(a.item<T>()); });
}

nb::object tolist(array a) {
  if (a.ndim() == 0) return item(a);
  return by_kind(a.dtype(), [&]<class T>() {
    std::vector<T> v = a.to_vector<T>();
    size_t pos = 0;
    return nested(v, a.shape(), 0, pos);
  });
}

}  // namespace kiln_py
