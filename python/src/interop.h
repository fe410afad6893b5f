// Memory exchanged with other libraries, shared by the array class (array.cpp: __array__, the
// buffer protocol), the conversions (convert.cpp) and interop.cpp (kn.asarray, kn.from_dlpack,
// __dlpack__): DLPack dtypes, views of an array's host data, imports of other libraries' arrays.
#pragma once

#include <nanobind/ndarray.h>

#include <functional>
#include <optional>
#include <vector>

#include "common.h"

namespace kiln_py {

// An array of another library in host memory, as nanobind imports it (DLPack or the buffer protocol).
using HostArray = nb::ndarray<nb::ro, nb::device::cpu>;

// Whether an ndarray's strides (in elements) are C order; axes of length 1 are ignored and
// empty arrays count as contiguous.
template <class ND>
bool row_contiguous(const ND& nd) {
  int64_t expected = 1;
  for (size_t d = nd.ndim(); d-- > 0;) {
    if (nd.shape(d) == 0) return true;
    if (nd.shape(d) != 1 && nd.stride(d) != expected) return false;
    expected *= static_cast<int64_t>(nd.shape(d));
  }
  return true;
}

// The kiln dtype of a DLPack dtype; none for those kiln lacks (complex128 among them).
std::optional<kiln::Dtype> dtype_of_dlpack(nb::dlpack::dtype t);
nb::dlpack::dtype dlpack_dtype(kiln::Dtype d);

// A copy of host data in kiln's memory, in any layout; complex128 narrows to complex64.
kiln::array copy_host_array(const HostArray& nd);

// Whether to copy another library's memory: never (fail when it cannot be shared), when it
// cannot be shared, or always.
enum class CopyMode { never, if_needed, always };

// An array of another library's data (DLPack, the buffer protocol, __array_interface__ or
// __array__): a view of its memory where the layout allows and `mode` is not `always`, else a
// copy. GPU data (CUDA DLPack) is synchronized through the DLPack stream protocol. Throws for
// objects that are none of these.
kiln::array import_array(nb::handle obj, CopyMode mode, const char* op);
// Whether obj's data is on a CUDA device by its __dlpack_device__ (conversions send such objects
// to import_array, as the host paths cannot read them).
bool on_cuda_device(nb::handle obj);

// Runs f, which touches Python objects, now when this thread holds the GIL, else on the main
// thread at its next chance. Never waits for the GIL: a buffer may die on kiln's evaluation
// thread while the GIL's holder waits for that thread.
void with_gil(std::function<void()> f);

// ---- views of an array's host data ----

// The first element of an evaluated array on the host (a stand-in byte for empty arrays).
const char* host_data_pointer(kiln::array& a);

// A read-only view of the evaluated host data that keeps a handle to the array alive (so the data
// outlives a later __setitem__ that rebinds the Python object to a new array).
template <class... Framework>
nb::ndarray<nb::ro, Framework...> host_view(kiln::array a) {
  {
    nb::gil_scoped_release release;
    a.eval();
  }
  const char* data = host_data_pointer(a);
  std::vector<size_t> shape(a.shape().begin(), a.shape().end());
  std::vector<int64_t> strides(a.strides().begin(), a.strides().end());
  if (strides.size() != shape.size()) strides = kiln::row_major_strides(a.shape());
  auto* keep = new kiln::array(a);
  nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<kiln::array*>(p); });
  return nb::ndarray<nb::ro, Framework...>(data, shape.size(), shape.data(), owner, strides.data(),
                                           dlpack_dtype(a.dtype()), nb::device::cpu::value);
}

}  // namespace kiln_py
