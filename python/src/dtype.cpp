// Element types: kn.float32, kn.int32, ... (kiln/dtype.h).
#include <string>

#include "common.h"

namespace kiln_py {

void init_dtype(nb::module_& m) {
  nb::enum_<kiln::Dtype>(m, "Dtype", "An array element type.")
      .value("bool_", kiln::bool_)
      .value("uint8", kiln::uint8)
      .value("uint16", kiln::uint16)
      .value("uint32", kiln::uint32)
      .value("uint64", kiln::uint64)
      .value("int8", kiln::int8)
      .value("int16", kiln::int16)
      .value("int32", kiln::int32)
      .value("int64", kiln::int64)
      .value("float16", kiln::float16)
      .value("bfloat16", kiln::bfloat16)
      .value("float32", kiln::float32)
      .value("float64", kiln::float64)
      .value("complex64", kiln::complex64)
      .export_values()
      .def_prop_ro("size", [](kiln::Dtype d) { return kiln::size_of(d); }, "Bytes per element.")
      .def("__repr__", [](kiln::Dtype d) { return std::string("kiln.") + kiln::dtype_name(d); })
      .def("__str__", [](kiln::Dtype d) { return std::string(kiln::dtype_name(d)); });

  m.def("promote_types", &kiln::promote_types, "a"_a, "b"_a,
        "The dtype two operands of a binary operation are converted to.");
  m.def("is_floating", &kiln::is_floating, "dtype"_a, "Whether the dtype is a floating-point type.");
  m.def("is_integer", &kiln::is_integer, "dtype"_a, "Whether the dtype is a signed or unsigned integer type.");
  m.def("is_unsigned", &kiln::is_unsigned, "dtype"_a, "Whether the dtype is an unsigned integer type.");
  m.def("is_complex", &kiln::is_complex, "dtype"_a, "Whether the dtype is complex64.");
  m.def("dtype_from_name", &kiln::dtype_from_name, "name"_a, "The dtype of a name such as 'float32'.");
}

}  // namespace kiln_py
