// The array class: construction, metadata, conversions to Python and NumPy (buffer protocol,
// __array__) and the Python operators. Indexing is in indexing.cpp, DLPack in interop.cpp.
#include <sstream>
#include <string>

#include "interop.h"

namespace kiln_py {

using kiln::array;
using kiln::Dtype;

namespace {

// ---- buffer protocol ----

const char* buffer_format(Dtype d) {
  switch (d) {
    case kiln::bool_: return "?";
    case kiln::uint8: return "B";
    case kiln::uint16: return "H";
    case kiln::uint32: return "I";
    case kiln::uint64: return "Q";
    case kiln::int8: return "b";
    case kiln::int16: return "h";
    case kiln::int32: return "i";
    case kiln::int64: return "q";
    case kiln::float16: return "e";
    case kiln::float32: return "f";
    case kiln::float64: return "d";
    case kiln::complex64: return "Zf";
    default: return nullptr;  // bfloat16 has no buffer format
  }
}

// What a Py_buffer points into: the (evaluated) array, and the shape and strides in bytes.
struct BufferState {
  array a;
  std::vector<Py_ssize_t> shape, strides;
};

int array_getbuffer(PyObject* obj, Py_buffer* view, int flags) {
  view->obj = nullptr;
  if (flags & PyBUF_WRITABLE) {
    PyErr_SetString(PyExc_BufferError, "kiln arrays are read-only");
    return -1;
  }
  array a = *nb::inst_ptr<array>(obj);
  const char* format = buffer_format(a.dtype());
  if (!format) {
    PyErr_SetString(PyExc_BufferError, "bfloat16 has no buffer format: convert with astype(kiln.float32)");
    return -1;
  }
  const char* data = nullptr;
  try {
    a.eval();
    // A consumer that cannot take strides, or asks for contiguous data, gets a row-major copy.
    auto has = [&](int f) { return (flags & f) == f; };
    bool strided_ok = has(PyBUF_STRIDES) && !has(PyBUF_ANY_CONTIGUOUS) && !has(PyBUF_C_CONTIGUOUS) &&
                      !has(PyBUF_F_CONTIGUOUS);
    if (!a.row_contiguous() && !strided_ok) {
      a = kiln::copy(a);
      a.eval();
    }
    data = host_data_pointer(a);
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_BufferError, e.what());
    return -1;
  }
  auto* state = new BufferState{a, {}, {}};
  Py_ssize_t item = static_cast<Py_ssize_t>(a.itemsize());
  for (int d = 0; d < a.ndim(); ++d) {
    state->shape.push_back(a.shape()[d]);
    state->strides.push_back(a.strides().empty() ? 0 : a.strides()[d] * item);
  }
  if (a.row_contiguous() || a.strides().size() != static_cast<size_t>(a.ndim())) {
    auto rm = kiln::row_major_strides(a.shape());
    for (int d = 0; d < a.ndim(); ++d) state->strides[d] = rm[d] * item;
  }
  view->buf = const_cast<char*>(data);
  Py_INCREF(obj);
  view->obj = obj;
  view->len = static_cast<Py_ssize_t>(a.nbytes());
  view->readonly = 1;
  view->itemsize = item;
  view->format = (flags & PyBUF_FORMAT) ? const_cast<char*>(format) : nullptr;
  view->ndim = a.ndim();
  view->shape = (flags & PyBUF_ND) == PyBUF_ND ? state->shape.data() : nullptr;
  view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? state->strides.data() : nullptr;
  view->suboffsets = nullptr;
  view->internal = state;
  return 0;
}

void array_releasebuffer(PyObject*, Py_buffer* view) { delete static_cast<BufferState*>(view->internal); }

PyType_Slot array_slots[] = {{Py_bf_getbuffer, reinterpret_cast<void*>(array_getbuffer)},
                             {Py_bf_releasebuffer, reinterpret_cast<void*>(array_releasebuffer)},
                             {0, nullptr}};

// ---- operators ----

using Binary = array (*)(const array&, const array&, StreamOrDevice);

template <Binary F>
array forward(const array& self, const ArrayLike& other) {
  return F(self, to_array_like(other.obj, self), {});
}

template <Binary F>
array reflected(const array& self, const ArrayLike& other) {
  return F(to_array_like(other.obj, self), self, {});
}

array row(const array& a, int64_t i) {
  return kiln::squeeze(kiln::slice(a, {i}, {i + 1}), std::vector<int>{0});
}

}  // namespace

void init_array(nb::module_& m) {
  auto cls = nb::class_<array>(m, "array", nb::type_slots(array_slots),
                               "An n-dimensional array: a lazy node of kiln's graph, computed on first use.");
  cls.def(
      "__init__",
      [](array* self, nb::handle val, std::optional<Dtype> dtype) { new (self) array(to_array(val, dtype)); },
      "val"_a, "dtype"_a = nb::none(),
      "An array from a Python scalar, a nested list or tuple, a NumPy array or another array. The dtype is "
      "inferred as NumPy does (int64, float64, ...; complex gives complex64) unless given.");

  cls.def_prop_ro("shape", [](const array& a) {
    nb::list out;
    for (auto d : a.shape()) out.append(d);
    return nb::tuple(out);
  }, "The shape as a tuple.");
  cls.def_prop_ro("dtype", &array::dtype, "The element type.");
  cls.def_prop_ro("ndim", &array::ndim, "The number of dimensions.");
  cls.def_prop_ro("size", [](const array& a) { return a.size(); }, "The number of elements.");
  cls.def_prop_ro("itemsize", &array::itemsize, "Bytes per element.");
  cls.def_prop_ro("nbytes", &array::nbytes, "Bytes of all the elements.");
  cls.def_prop_ro("device", &array::device, "The device that computes this array.");
  cls.def_prop_ro("stream", &array::stream, "The stream that computes this array.");
  cls.def_prop_ro("T", [](const array& a) { return kiln::transpose(a); }, "The array with its axes reversed.");

  cls.def("item", [](const array& a) { return item(a); }, "The value of a one-element array as a Python scalar.");
  cls.def("tolist", [](const array& a) { return tolist(a); }, "The values as nested Python lists.");
  cls.def("astype", [](const array& a, Dtype dtype, StreamOrDevice s) { return kiln::astype(a, dtype, s); },
          "dtype"_a, "stream"_a = nb::none(), "The values converted to dtype.");
  cls.def("eval", [](array& a) {
    nb::gil_scoped_release release;
    a.eval();
  }, "Evaluates the array.");

  cls.def("__repr__", [](const array& a) {
    std::ostringstream os;
    {
      nb::gil_scoped_release release;
      os << a;
    }
    return os.str();
  });
  cls.def("__len__", [](const array& a) {
    if (a.ndim() == 0) kiln::fail<kiln::TypeError>("len() of a 0-d array");
    return a.shape()[0];
  });
  cls.def("__iter__", [](const array& a) {
    if (a.ndim() == 0) kiln::fail<kiln::TypeError>("iteration over a 0-d array");
    nb::list rows;
    for (int64_t i = 0; i < a.shape()[0]; ++i) rows.append(row(a, i));
    return nb::iter(rows);
  });
  cls.def("__bool__", [](const array& a) {
    if (a.size() != 1) {
      kiln::fail<kiln::ValueError>("the truth value of an array with ", a.size(), " elements is ambiguous");
    }
    return PyObject_IsTrue(item(a).ptr()) == 1;
  });
  cls.def("__int__", [](const array& a) { return nb::int_(item(a)); });
  cls.def("__float__", [](const array& a) { return nb::float_(item(a)); });
  cls.def("__index__", [](const array& a) {
    if (!kiln::is_integer(a.dtype()) && a.dtype() != kiln::bool_) {
      kiln::fail<kiln::TypeError>("only integer arrays can be used as an index, not ", a.dtype());
    }
    return nb::int_(item(a));
  });
  cls.def("__copy__", [](const array& a) { return a; });
  cls.def("__deepcopy__", [](const array& a, nb::handle) { return a; }, "memo"_a);

  // NumPy: np.array(a) uses the buffer protocol; __array__ serves the dtypes it lacks (bfloat16
  // becomes float32) and conversions to another dtype.
  cls.def(
      "__array__",
      [](const array& a, nb::handle dtype, nb::handle copy) {
        bool converts = a.dtype() == kiln::bfloat16;
        if (converts && copy.ptr() == Py_False) {
          kiln::fail<kiln::ValueError>("[__array__] bfloat16 has no NumPy dtype, so copy=False cannot be honored");
        }
        array src = converts ? kiln::astype(a, kiln::float32) : a;
        nb::object out = host_view<nb::numpy>(src).cast();
        if (!dtype.is_none()) return out.attr("astype")(dtype);
        if (!copy.is_none() && nb::cast<bool>(copy)) return out.attr("copy")();
        return out;
      },
      "dtype"_a = nb::none(), "copy"_a = nb::none(), "A NumPy array of the values (a read-only view where it can be).");

  // Arithmetic, comparisons and bitwise operators; a Python scalar takes the array's dtype.
#define KILN_PY_OPERATOR(name, rname, fn)                                  \
  cls.def(name, &forward<&kiln::fn>, "other"_a, nb::is_operator());        \
  cls.def(rname, &reflected<&kiln::fn>, "other"_a, nb::is_operator());
  KILN_PY_OPERATOR("__add__", "__radd__", add)
  KILN_PY_OPERATOR("__sub__", "__rsub__", subtract)
  KILN_PY_OPERATOR("__mul__", "__rmul__", multiply)
  KILN_PY_OPERATOR("__truediv__", "__rtruediv__", divide)
  KILN_PY_OPERATOR("__floordiv__", "__rfloordiv__", floor_divide)
  KILN_PY_OPERATOR("__mod__", "__rmod__", remainder)
  KILN_PY_OPERATOR("__pow__", "__rpow__", power)
  KILN_PY_OPERATOR("__matmul__", "__rmatmul__", matmul)
  KILN_PY_OPERATOR("__and__", "__rand__", bitwise_and)
  KILN_PY_OPERATOR("__or__", "__ror__", bitwise_or)
  KILN_PY_OPERATOR("__xor__", "__rxor__", bitwise_xor)
  KILN_PY_OPERATOR("__lshift__", "__rlshift__", left_shift)
  KILN_PY_OPERATOR("__rshift__", "__rrshift__", right_shift)
#undef KILN_PY_OPERATOR
  cls.def("__eq__", &forward<&kiln::equal>, "other"_a, nb::is_operator());
  cls.def("__ne__", &forward<&kiln::not_equal>, "other"_a, nb::is_operator());
  cls.def("__lt__", &forward<&kiln::less>, "other"_a, nb::is_operator());
  cls.def("__le__", &forward<&kiln::less_equal>, "other"_a, nb::is_operator());
  cls.def("__gt__", &forward<&kiln::greater>, "other"_a, nb::is_operator());
  cls.def("__ge__", &forward<&kiln::greater_equal>, "other"_a, nb::is_operator());
  cls.def("__neg__", [](const array& a) { return kiln::negative(a); });
  cls.def("__pos__", [](const array& a) { return a; });
  cls.def("__abs__", [](const array& a) { return kiln::abs(a); });
  cls.def("__invert__", [](const array& a) {
    return a.dtype() == kiln::bool_ ? kiln::logical_not(a) : kiln::bitwise_invert(a);
  });
  // Arrays compare elementwise, so they cannot be dict keys (as NumPy's).
  cls.attr("__hash__") = nb::none();

  init_indexing(cls);
  init_interop(m, cls);
}

}  // namespace kiln_py
