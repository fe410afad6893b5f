// The kernel registry: for each backend, the kernel of each primitive, found by the primitive's
// name. A primitive missing from a backend's table cannot run there; evaluation says so instead
// of falling back to another device.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kiln/array.h"
#include "kiln/primitive.h"

namespace kiln {

enum class Backend { cpu, gpu };

// A kernel computes `out` from `inputs` for primitive `p`. It gives `out` its storage (a new
// buffer, or a view of an input's) and runs on out's stream.
using Kernel = void (*)(const Primitive& p, const std::vector<array>& inputs, array& out);

void register_kernel(Backend backend, std::string_view op, Kernel kernel);
Kernel find_kernel(Backend backend, std::string_view op);  // nullptr when missing
std::vector<std::string> registered_ops(Backend backend);   // sorted
// How many kernels each backend has run (tests use it to prove the GPU path avoids the CPU).
size_t kernel_launches(Backend backend);

// Lets `out` take over `in`'s buffer, so an update writes only what changes instead of copying
// the whole array (the KV cache's append). Only when nothing else can observe it: no other
// handle to `in`'s node and no view of its buffer, `in` row-contiguous from offset 0 with out's
// size and element size, and the buffer kiln's own (not external memory that another library
// lent). The caller must make the buffer current on its side (read_host / read_gpu) before
// writing. Returns false, changing nothing, otherwise.
bool donate_buffer(const array& in, array& out);

// Each backend's tables are filled once, on first use.
void register_cpu_kernels();
void register_gpu_kernels();  // does nothing in a build without a GPU backend

}  // namespace kiln
