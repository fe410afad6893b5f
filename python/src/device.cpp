// Devices, streams, evaluation and memory (kiln/device.h, eval.h, memory.h, version.h).
#include <string>

#include "common.h"

namespace kiln_py {

namespace {

// The arrays in a tree of lists, tuples and dicts; other leaves are ignored.
void collect(nb::handle tree, std::vector<kiln::array>& out) {
  if (nb::isinstance<kiln::array>(tree)) {
    out.push_back(nb::cast<kiln::array>(tree));
  } else if (nb::isinstance<nb::list>(tree) || nb::isinstance<nb::tuple>(tree)) {
    for (nb::handle h : tree) collect(h, out);
  } else if (nb::isinstance<nb::dict>(tree)) {
    for (auto [k, v] : nb::borrow<nb::dict>(tree)) collect(v, out);
  }
}

std::string device_repr(const kiln::Device& d) {
  return std::string("Device(") + (d.type == kiln::Device::cpu ? "cpu" : "gpu") + ", " + std::to_string(d.index) + ")";
}

}  // namespace

void init_device(nb::module_& m) {
  nb::enum_<kiln::Device::Type>(m, "DeviceType", "The kind of a device.")
      .value("cpu", kiln::Device::cpu)
      .value("gpu", kiln::Device::gpu);

  nb::class_<kiln::Device>(m, "Device", "A device: its type and index.")
      .def(nb::init<kiln::Device::Type, int>(), "type"_a, "index"_a = 0)
      .def_ro("type", &kiln::Device::type)
      .def_ro("index", &kiln::Device::index)
      .def("__eq__", [](const kiln::Device& a, const kiln::Device& b) { return a == b; }, nb::is_operator())
      .def("__ne__", [](const kiln::Device& a, const kiln::Device& b) { return a != b; }, nb::is_operator())
      .def("__hash__", [](const kiln::Device& d) { return static_cast<int>(d.type) * 1024 + d.index; })
      .def("__repr__", &device_repr);
  m.attr("cpu") = kiln::Device(kiln::Device::cpu);
  m.attr("gpu") = kiln::Device(kiln::Device::gpu);

  nb::class_<kiln::Stream>(m, "Stream", "An ordered queue of work on one device.")
      .def_ro("index", &kiln::Stream::index)
      .def_ro("device", &kiln::Stream::device)
      .def("__eq__", [](const kiln::Stream& a, const kiln::Stream& b) { return a == b; }, nb::is_operator())
      .def("__ne__", [](const kiln::Stream& a, const kiln::Stream& b) { return a != b; }, nb::is_operator())
      .def("__hash__", [](const kiln::Stream& s) { return s.index; })
      .def("__repr__", [](const kiln::Stream& s) {
        return "Stream(" + device_repr(s.device) + ", index=" + std::to_string(s.index) + ")";
      });

  m.def("default_device", &kiln::default_device,
        "The device ops run on when given none: the GPU when present (KILN_DEVICE=cpu|gpu overrides).");
  m.def("set_default_device", &kiln::set_default_device, "device"_a, "Sets the device ops run on by default.");
  m.def("default_stream", &kiln::default_stream, "device"_a, "The default stream of a device.");
  m.def("new_stream", &kiln::new_stream, "device"_a, "A new stream on a device.");
  m.def("gpu_available", &kiln::gpu_available, "Whether a usable GPU is present.");
  m.def("gpu_count", &kiln::gpu_count, "The number of usable GPUs.");
  m.def("built_with_cuda", &kiln::built_with_cuda, "Whether this build has the CUDA backend.");
  m.def("build_type", &kiln::build_type, "The CMake build type of the library.");

  m.def(
      "eval",
      [](nb::args args) {
        std::vector<kiln::array> arrays;
        collect(args, arrays);
        nb::gil_scoped_release release;
        kiln::eval(std::move(arrays));
      },
      "Evaluates the arrays given (in any nesting of lists, tuples and dicts).");
  m.def(
      "async_eval",
      [](nb::args args) {
        std::vector<kiln::array> arrays;
        collect(args, arrays);
        kiln::async_eval(std::move(arrays));
      },
      "Starts evaluating the arrays given in the background and returns at once.");
  m.def("synchronize", &kiln::synchronize, nb::call_guard<nb::gil_scoped_release>(),
        "Waits for all queued work on every device.");

  m.def("get_active_memory", &kiln::get_active_memory, "Bytes in use by arrays (host and GPU together).");
  m.def("get_peak_memory", &kiln::get_peak_memory, "The most bytes in use since the last reset.");
  m.def("reset_peak_memory", &kiln::reset_peak_memory, "Resets the peak to the memory in use now.");
  m.def("get_cache_memory", &kiln::get_cache_memory, "Bytes kept by kiln's caches for reuse.");
  m.def("set_memory_limit", &kiln::set_memory_limit, "bytes"_a,
        "Limits the memory in use (0: no limit); returns the previous limit.");
  m.def("get_memory_limit", &kiln::get_memory_limit, "The memory limit in bytes (0: none).");
  m.def("set_cache_limit", &kiln::set_cache_limit, "bytes"_a, "Bounds the host cache; returns the previous bound.");
  m.def("clear_cache", &kiln::clear_cache, "Frees the memory kept by the caches.");
}

}  // namespace kiln_py
