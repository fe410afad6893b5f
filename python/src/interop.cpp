// Memory shared with other libraries. kn.asarray and kn.from_dlpack wrap another library's memory
// (NumPy arrays, PyTorch tensors, anything with DLPack, the buffer protocol or
// __array_interface__) as an external buffer (kiln/memory.h) that keeps its owner alive and that
// kiln only reads; __dlpack__ hands a kiln array's host or GPU memory to other libraries. GPU
// memory crosses with DLPack's stream protocol: the reader's stream waits, on the GPU, for the
// writer's work.
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "interop.h"
#include "kiln/backend/gpu.h"

namespace kiln_py {

using kiln::array;
using kiln::Device;
using kiln::Dtype;
using kiln::Stream;

namespace {

// DLPack's device types (DLDeviceType) that kiln reads.
constexpr int kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3;

// ---- letting go of Python objects on any thread ----

struct PendingCalls {
  std::mutex mutex;
  std::vector<std::function<void()>> calls;
  bool scheduled = false;
};

PendingCalls& pending() {
  static auto* p = new PendingCalls();  // never destroyed: buffers may die during teardown
  return *p;
}

int run_pending(void*) {
  std::vector<std::function<void()>> calls;
  {
    std::lock_guard<std::mutex> lock(pending().mutex);
    calls.swap(pending().calls);
    pending().scheduled = false;
  }
  for (auto& f : calls) f();
  return 0;
}

bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// A release function for ExternalMemory that holds `owner` (an imported ndarray or a Python
// object) until it runs, or until it is dropped without running.
template <class T>
std::function<void()> releaser(T owner) {
  std::shared_ptr<T> keep(new T(std::move(owner)), [](T* p) { with_gil([p] { delete p; }); });
  return [keep]() mutable { keep.reset(); };
}

// ---- imports ----

// Any array nanobind imports (DLPack capsules, __dlpack__, the buffer protocol), on any device.
using AnyArray = nb::ndarray<nb::ro>;

kiln::Shape shape_of(const AnyArray& nd) {
  kiln::Shape shape(nd.ndim());
  for (size_t d = 0; d < nd.ndim(); ++d) shape[d] = static_cast<int64_t>(nd.shape(d));
  return shape;
}

bool aligned(const AnyArray& nd) {
  return nd.itemsize() != 0 && reinterpret_cast<uintptr_t>(nd.data()) % nd.itemsize() == 0;
}

// Why nd's memory cannot back a kiln array as it is, or nullptr when it can.
const char* unshareable(const AnyArray& nd) {
  if (!dtype_of_dlpack(nd.dtype())) return "kiln has no dtype for its elements";
  if (!row_contiguous(nd)) return "it is not C-contiguous";
  if (!aligned(nd)) return "its data is not aligned to its element size";
  return nullptr;
}

[[noreturn]] void cannot_share(const char* op, const char* why) {
  kiln::fail<kiln::ValueError>("[", op, "] copy=False, but the data cannot be shared without a copy: ", why);
}

array wrap(const AnyArray& nd, Dtype dtype, Device device, std::function<void()> release, kiln::StreamOrDevice s,
           kiln::Strides strides = {}) {
  kiln::ExternalMemory memory;
  memory.data = const_cast<void*>(nd.data());
  memory.device = device;
  if (device.type == Device::gpu) memory.stream = std::get<Stream>(s).index;
  memory.release = std::move(release);
  return kiln::from_external(std::move(memory), shape_of(nd), dtype, std::move(strides), s);
}

// Host memory: shared when it can be (the array computes on the default device, as kn.array's do).
array import_host(const AnyArray& nd, CopyMode mode, const char* op, std::function<void()> release) {
  const char* why = unshareable(nd);
  if (nd.size() == 0 || mode == CopyMode::always || why) {
    if (mode == CopyMode::never && why && nd.size() != 0) cannot_share(op, why);
    return copy_host_array(HostArray(nd));
  }
  return wrap(nd, *dtype_of_dlpack(nd.dtype()), Device(Device::cpu), std::move(release), {});
}

Stream gpu_stream_for(int id, const char* op) {
  if (!kiln::gpu_available()) {
    kiln::fail<kiln::RuntimeError>("[", op, "] the data is in the memory of CUDA device ", id, ", but ",
                                   kiln::built_with_cuda() ? "no GPU is usable here"
                                                           : "this kiln was built without the CUDA backend",
                                   ": move it to the CPU first");
  }
  if (id < 0 || id >= kiln::gpu_count()) {
    kiln::fail<kiln::ValueError>("[", op, "] the data is on CUDA device ", id, " but kiln sees ", kiln::gpu_count(),
                                 " GPUs");
  }
  return kiln::default_stream(Device(Device::gpu, id));
}

// GPU memory on device s.device, ready for work on s: shared when it can be, else copied on the
// GPU (through a view in its own layout, or as bytes when misaligned).
array import_gpu(const AnyArray& nd, CopyMode mode, const char* op, Stream s, std::function<void()> release) {
  auto dtype = dtype_of_dlpack(nd.dtype());
  if (!dtype) {
    kiln::fail<kiln::TypeError>("[", op, "] unsupported element type (DLPack code ", int(nd.dtype().code), ", ",
                                int(nd.dtype().bits), " bits)");
  }
  if (nd.size() == 0) return kiln::zeros(shape_of(nd), *dtype, s);
  const char* why = unshareable(nd);
  if (!why && mode != CopyMode::always) return wrap(nd, *dtype, s.device, std::move(release), s);
  if (mode == CopyMode::never) cannot_share(op, why);
  auto copied = [&]() -> array {
    if (aligned(nd)) {
      kiln::Strides strides(nd.ndim());
      for (size_t d = 0; d < nd.ndim(); ++d) strides[d] = nd.stride(d);
      return kiln::copy(wrap(nd, *dtype, s.device, std::move(release), s, std::move(strides)), s);
    }
    if (!row_contiguous(nd)) {
      kiln::fail<kiln::ValueError>("[", op, "] GPU data that is neither aligned nor C-contiguous cannot be imported: "
                                   "make it contiguous first");
    }
    kiln::ExternalMemory memory{const_cast<void*>(nd.data()), s.device, s.index, std::move(release)};
    array bytes = kiln::from_external(std::move(memory), {static_cast<int64_t>(nd.nbytes())}, kiln::uint8, {}, s);
    return kiln::reshape(kiln::view(kiln::copy(bytes, s), *dtype, s), shape_of(nd), s);
  }();
  {
    // Copied now: the import is a snapshot, and the owner's memory is let go of once it is done.
    nb::gil_scoped_release unlock;
    copied.eval();
  }
  return copied;
}

// The DLPack device (type, index) of an object with __dlpack_device__.
std::optional<std::pair<int, int>> dlpack_device(nb::handle obj) {
  if (PyCapsule_CheckExact(obj.ptr()) || !nb::hasattr(obj, "__dlpack_device__")) return std::nullopt;
  nb::object dev = obj.attr("__dlpack_device__")();
  return std::make_pair(nb::cast<int>(dev[0]), nb::cast<int>(dev[1]));
}

// The capsule of CUDA memory from obj.__dlpack__, after the producer has made work on kiln's
// stream s wait for its own work on the memory (the consumer's half of the stream protocol).
nb::object cuda_capsule(nb::handle obj, Stream s) {
  void* native = kiln::gpu_backend()->native_stream(s.device.index, s.index);
  nb::object stream = nb::steal(PyLong_FromVoidPtr(native));
  nb::object dlpack = obj.attr("__dlpack__");
  try {
    return dlpack("stream"_a = stream, "max_version"_a = nb::make_tuple(1, 0));
  } catch (nb::python_error& e) {
    if (!e.matches(PyExc_TypeError)) throw;  // producers older than DLPack 1.0 take no max_version
  }
  return dlpack("stream"_a = stream);
}

array import_any(const AnyArray& nd, CopyMode mode, const char* op, std::function<void()> release) {
  switch (nd.device_type()) {
    case kDLCPU:
    case kDLCUDAHost:
      return import_host(nd, mode, op, std::move(release));
    case kDLCUDA:
      // A bare capsule: there is no stream to hand its producer, whose work must be finished.
      return import_gpu(nd, mode, op, gpu_stream_for(nd.device_id(), op), std::move(release));
    default:
      kiln::fail<kiln::TypeError>("[", op, "] data on DLPack device type ", nd.device_type(), " is not supported");
  }
}

// The element type of an __array_interface__ type string ('<f4', '|b1', ...) in native byte order.
std::optional<nb::dlpack::dtype> typestr_dtype(const std::string& t) {
  if (t.size() < 3) return std::nullopt;
  constexpr char native = std::endian::native == std::endian::little ? '<' : '>';
  int bytes = std::atoi(t.c_str() + 2);
  if (t[0] != '|' && t[0] != '=' && t[0] != native && bytes != 1) return std::nullopt;
  using C = nb::dlpack::dtype_code;
  C code;
  switch (t[1]) {
    case 'b': code = C::Bool; break;
    case 'i': code = C::Int; break;
    case 'u': code = C::UInt; break;
    case 'f': code = C::Float; break;
    case 'c': code = C::Complex; break;
    default: return std::nullopt;
  }
  if (bytes <= 0 || bytes > 16) return std::nullopt;
  return nb::dlpack::dtype{static_cast<uint8_t>(code), static_cast<uint8_t>(bytes * 8), 1};
}

// NumPy's array interface (version 3) with its data as an address: a view of the memory, held
// through obj. Other forms (a data buffer, a mask) are left to the buffer protocol and __array__.
std::optional<array> import_array_interface(nb::handle obj, CopyMode mode, const char* op) {
  if (!nb::hasattr(obj, "__array_interface__")) return std::nullopt;
  nb::object ai = obj.attr("__array_interface__");
  if (!nb::isinstance<nb::dict>(ai)) return std::nullopt;
  nb::dict d = nb::borrow<nb::dict>(ai);
  if (!d.contains("data") || !d.contains("shape") || !d.contains("typestr")) return std::nullopt;
  if (d.contains("mask") && !d["mask"].is_none()) return std::nullopt;
  nb::object data = d["data"];
  if (!nb::isinstance<nb::tuple>(data) || nb::len(data) != 2) return std::nullopt;
  auto dt = typestr_dtype(nb::cast<std::string>(d["typestr"]));
  if (!dt) return std::nullopt;
  auto address = nb::cast<uintptr_t>(data[0]);
  auto shape = nb::cast<std::vector<size_t>>(d["shape"]);
  const int64_t item = dt->bits / 8;
  std::vector<int64_t> strides;  // in elements; row-major when the interface gives none
  if (d.contains("strides") && !d["strides"].is_none()) {
    for (int64_t bytes : nb::cast<std::vector<int64_t>>(d["strides"])) {
      if (bytes % item != 0) return std::nullopt;
      strides.push_back(bytes / item);
    }
    if (strides.size() != shape.size()) return std::nullopt;
  }
  AnyArray view(reinterpret_cast<const void*>(address), shape.size(), shape.data(), nb::handle(),
                strides.empty() ? nullptr : strides.data(), *dt, kDLCPU);
  return import_host(view, mode, op, releaser(nb::borrow(obj)));
}

bool is_python_value(nb::handle obj) {
  PyObject* p = obj.ptr();
  return PyBool_Check(p) || PyLong_Check(p) || PyFloat_Check(p) || PyComplex_Check(p) || PyList_Check(p) ||
         PyTuple_Check(p);
}

// ---- exports ----

// What a DLPack capsule of a kiln array holds: the array, and for GPU memory a consumer stream
// that stays valid (the legacy default stream) and that kiln's stream waits for before the
// memory can be reused.
struct Exported {
  array a;
  void* consumer = nullptr;
};

bool on_gpu(const array& a) { return a.device().type == Device::gpu; }

// The CUDA stream handle that a DLPack `stream` argument names (None is the legacy default
// stream, as the protocol says), or nullptr for -1: no synchronization.
void* consumer_stream(std::optional<int64_t> stream) {
  if (!stream) return reinterpret_cast<void*>(1);
  int64_t v = *stream;
  if (v == -1) return nullptr;
  if (v <= 0) kiln::fail<kiln::ValueError>("[__dlpack__] stream must be None, -1 or a CUDA stream handle, got ", v);
  return reinterpret_cast<void*>(static_cast<intptr_t>(v));
}

// A capsule of nd: the versioned kind (with its read-only flag) when the consumer takes DLPack 1.
nb::object capsule_of(const nb::ndarray<nb::ro>& nd, bool versioned) {
  if (!versioned) return nb::cast(nd);
  nb::object o = nb::cast(nb::ndarray<nb::ro, nb::array_api>(nd));
  return o.attr("__dlpack__")("max_version"_a = nb::make_tuple(1, 0));
}

[[noreturn]] void buffer_error(const std::string& msg) {
  PyErr_SetString(PyExc_BufferError, msg.c_str());
  throw nb::python_error();
}

using IntPair = std::optional<std::pair<int, int>>;

nb::object dlpack(const array& self, std::optional<int64_t> stream, IntPair max_version, IntPair dl_device,
                  std::optional<bool> copy) {
  array a = self;
  bool gpu = on_gpu(a);
  bool versioned = max_version && max_version->first >= 1;
  if (dl_device) {
    auto [type, id] = *dl_device;
    if (type == kDLCPU) {
      if (gpu && copy == false) {
        buffer_error("__dlpack__: the array is on the GPU, so copy=False cannot give host memory");
      }
      gpu = false;
    } else if (!(type == kDLCUDA && gpu && id == a.device().index)) {
      buffer_error("__dlpack__: unsupported dl_device (" + std::to_string(type) + ", " + std::to_string(id) +
                   ") for an array on " + (gpu ? "GPU " + std::to_string(a.device().index) : std::string("the CPU")));
    }
  }
  if (copy == true) a = gpu ? kiln::copy(a, a.stream()) : kiln::copy(a, Device(Device::cpu));
  if (!gpu) return capsule_of(host_view<>(a), versioned);

  {
    nb::gil_scoped_release unlock;
    a.eval();
  }
  if (!a.buffer()) kiln::fail<kiln::RuntimeError>("[__dlpack__] the evaluated array has no storage");
  int device = a.device().index;
  const char* base = static_cast<const char*>(a.buffer()->read_gpu(device, a.stream().index));
  // The consumer's stream waits for the work that wrote the array (the producer's half).
  void* consumer = consumer_stream(stream);
  if (consumer) kiln::gpu_backend()->native_wait(consumer, device, a.buffer()->gpu_stream());
  std::vector<size_t> shape(a.shape().begin(), a.shape().end());
  std::vector<int64_t> strides(a.strides().begin(), a.strides().end());
  if (strides.size() != shape.size()) strides = kiln::row_major_strides(a.shape());
  auto* keep = new Exported{a, consumer == reinterpret_cast<void*>(1) ? consumer : nullptr};
  nb::capsule owner(keep, [](void* p) noexcept {
    auto* e = static_cast<Exported*>(p);
    try {
      // Work the consumer queued on the memory comes before kiln reuses it.
      if (e->consumer && e->a.buffer() && e->a.buffer()->gpu_stream() >= 0) {
        kiln::gpu_backend()->wait_native(e->a.device().index, e->a.buffer()->gpu_stream(), e->consumer);
      }
    } catch (...) {
    }
    delete e;
  });
  nb::ndarray<nb::ro> nd(base + a.offset() * static_cast<int64_t>(a.itemsize()), shape.size(), shape.data(), owner,
                         strides.data(), dlpack_dtype(a.dtype()), kDLCUDA, device);
  return capsule_of(nd, versioned);
}

}  // namespace

void with_gil(std::function<void()> f) {
  if (!Py_IsInitialized() || finalizing()) return;  // the interpreter is going: the owners go with it
  if (PyGILState_Check()) {
    f();
    return;
  }
  std::lock_guard<std::mutex> lock(pending().mutex);
  pending().calls.push_back(std::move(f));
  // When the interpreter's queue is full, the next call tries again.
  if (!pending().scheduled) pending().scheduled = Py_AddPendingCall(&run_pending, nullptr) == 0;
}

bool on_cuda_device(nb::handle obj) {
  auto dev = dlpack_device(obj);
  return dev && dev->first == kDLCUDA;
}

array import_array(nb::handle obj, CopyMode mode, const char* op) {
  if (nb::isinstance<array>(obj)) {
    array a = nb::cast<array>(obj);
    return mode == CopyMode::always ? kiln::copy(a, a.stream()) : a;
  }
  if (is_python_value(obj)) {
    if (mode == CopyMode::never) {
      kiln::fail<kiln::ValueError>("[", op, "] copy=False, but a Python ", nb::type_name(obj.type()).c_str(),
                                   " has no memory to share");
    }
    return to_array(obj);
  }
  PyObject* p = obj.ptr();
  if (!PyUnicode_Check(p) && !PyBytes_Check(p) && !obj.is_none()) {
    if (auto dev = dlpack_device(obj); dev && dev->first == kDLCUDA) {
      Stream s = gpu_stream_for(dev->second, op);
      nb::object capsule = cuda_capsule(obj, s);
      AnyArray nd;
      if (!nb::try_cast(capsule, nd)) {
        kiln::fail<kiln::TypeError>("[", op, "] __dlpack__ of '", nb::type_name(obj.type()).c_str(),
                                    "' gave no DLPack capsule that kiln can read");
      }
      if (nd.device_type() != kDLCUDA || nd.device_id() != dev->second) {
        kiln::fail<kiln::ValueError>("[", op, "] __dlpack__ gave memory of DLPack device (", nd.device_type(), ", ",
                                     nd.device_id(), "), not the (2, ", dev->second, ") of __dlpack_device__");
      }
      return import_gpu(nd, mode, op, s, releaser(nd));
    }
    AnyArray nd;
    if (nb::try_cast(obj, nd)) return import_any(nd, mode, op, releaser(nd));
    if (auto a = import_array_interface(obj, mode, op)) return *a;
    if (nb::hasattr(obj, "__array__")) {
      nb::object converted = obj.attr("__array__")();
      if (nb::try_cast(converted, nd)) return import_any(nd, mode, op, releaser(nd));
    }
  }
  kiln::fail<kiln::TypeError>("[", op, "] cannot convert an object of type '", nb::type_name(obj.type()).c_str(),
                              "' to an array");
}

nb::dlpack::dtype dlpack_dtype(Dtype d) {
  using C = nb::dlpack::dtype_code;
  C code = C::Float;
  switch (kiln::kind_of(d)) {
    case kiln::DtypeKind::boolean:
      code = C::Bool;
      break;
    case kiln::DtypeKind::unsigned_int:
      code = C::UInt;
      break;
    case kiln::DtypeKind::signed_int:
      code = C::Int;
      break;
    case kiln::DtypeKind::complex:
      code = C::Complex;
      break;
    default:
      code = d == kiln::bfloat16 ? C::Bfloat : C::Float;
  }
  return {static_cast<uint8_t>(code), static_cast<uint8_t>(kiln::size_of(d) * 8), 1};
}

const char* host_data_pointer(array& a) {
  static char empty_data = 0;  // stands in for the data pointer of empty arrays, which may have none
  if (a.size() == 0 || !a.buffer()) return &empty_data;
  return static_cast<const char*>(a.buffer()->read_host()) + a.offset() * static_cast<int64_t>(a.itemsize());
}

void init_interop(nb::module_& m, nb::class_<array>& cls) {
  m.def(
      "asarray",
      [](nb::handle obj, std::optional<Dtype> dtype, std::optional<bool> copy) {
        CopyMode mode = !copy ? CopyMode::if_needed : *copy ? CopyMode::always : CopyMode::never;
        bool was_array = nb::isinstance<array>(obj);
        array a = import_array(obj, mode, "asarray");
        if (!dtype || a.dtype() == *dtype) return a;
        if (mode == CopyMode::never) {
          kiln::fail<kiln::ValueError>("[asarray] copy=False, but converting ", a.dtype(), " to ", *dtype,
                                       " makes a copy");
        }
        a = kiln::astype(a, *dtype, a.stream());
        if (!was_array) {
          // A conversion of another library's memory is a copy made now, as NumPy's is.
          nb::gil_scoped_release unlock;
          a.eval();
        }
        return a;
      },
      "obj"_a, "dtype"_a = nb::none(), nb::kw_only(), "copy"_a = nb::none(),
      "An array over obj's memory where it can be (NumPy's asarray): a NumPy array, a PyTorch tensor (CPU or "
      "CUDA) or anything with DLPack, the buffer protocol or __array_interface__ that is C-contiguous, aligned "
      "to its element size and of a kiln dtype is shared, not copied; other inputs (other layouts, Python lists) "
      "are copied. The array keeps obj's memory alive and never writes to it, and reads it when an operation "
      "runs: changes made through obj before then are seen. A dtype other than obj's makes a converted copy. "
      "copy=True always copies; copy=False raises ValueError when a copy would be needed.");
  m.def(
      "from_dlpack",
      [](nb::handle x, std::optional<bool> copy) {
        if (!PyCapsule_CheckExact(x.ptr()) && !nb::hasattr(x, "__dlpack__")) {
          kiln::fail<kiln::TypeError>("[from_dlpack] needs an object with __dlpack__ (or a DLPack capsule), not '",
                                      nb::type_name(x.type()).c_str(), "'");
        }
        return import_array(x, !copy ? CopyMode::if_needed : *copy ? CopyMode::always : CopyMode::never,
                            "from_dlpack");
      },
      "x"_a, nb::kw_only(), "copy"_a = nb::none(),
      "An array over the memory of x (an object with __dlpack__, such as a PyTorch tensor on the CPU or a CUDA "
      "GPU), shared as kn.asarray shares it; CUDA memory is synchronized through the DLPack stream protocol.");

  cls.def("__dlpack__", &dlpack, nb::kw_only(), "stream"_a = nb::none(), "max_version"_a = nb::none(),
          "dl_device"_a = nb::none(), "copy"_a = nb::none(),
          "A DLPack capsule of the evaluated data, read-only: host memory for a CPU array, the GPU's memory for "
          "a GPU array (kDLCUDA), after making the consumer's `stream` (None: the legacy default stream; -1: "
          "none) wait for the work that computes it. dl_device=(1, 0) asks for host memory; copy=True for a "
          "copy.");
  cls.def(
      "__dlpack_device__",
      [](const array& a) { return on_gpu(a) ? std::make_pair(kDLCUDA, a.device().index) : std::make_pair(kDLCPU, 0); },
      "The DLPack device of the array: (1, 0) for the CPU, (2, index) for a CUDA GPU.");
}

}  // namespace kiln_py
