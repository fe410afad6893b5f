#include "kiln/array.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "kiln/eval.h"
#include "kiln/primitive.h"

namespace kiln {

namespace {

// Releasing a long unevaluated chain must not recurse once per node. Nodes that die while
// another node's inputs are being released are queued here and released by the outermost call.
void release_inputs(std::vector<array>& inputs) {
  thread_local std::vector<array> pending;
  thread_local bool releasing = false;
  for (auto& in : inputs) {
    if (in.use_count() == 1) pending.push_back(std::move(in));
  }
  inputs.clear();
  if (releasing) return;
  releasing = true;
  while (!pending.empty()) {
    array last = std::move(pending.back());
    pending.pop_back();
    // `last` dies here; its node's destructor queues its own inputs rather than recursing.
  }
  releasing = false;
}

}  // namespace

array::Node::~Node() {
  if (!inputs.empty()) release_inputs(inputs);
}

int64_t shape_size(const Shape& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Strides row_major_strides(const Shape& shape) {
  Strides s(shape.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return s;
}

namespace detail {

const void* checked_fill(const void* data, size_t count, const Shape& shape) {
  if (shape_size(shape) != static_cast<int64_t>(count)) {
    fail<ValueError>("[array] ", count, " values cannot fill shape ", shape);
  }
  return data;
}

array scalar_as(double v, Dtype dtype) {
  unsigned char bytes[16];
  KILN_DISPATCH_ALL("array", dtype, { *reinterpret_cast<T*>(bytes) = convert<T>(v); });
  return array(bytes, Shape{}, dtype);
}

array scalar_as(int64_t v, Dtype dtype) {
  unsigned char bytes[16];
  KILN_DISPATCH_ALL("array", dtype, { *reinterpret_cast<T*>(bytes) = convert<T>(v); });
  return array(bytes, Shape{}, dtype);
}

}  // namespace detail

array::array(const void* data, Shape shape, Dtype dtype) : node_(std::make_shared<Node>()) {
  for (auto d : shape) {
    if (d < 0) fail<ValueError>("[array] negative dimension in shape ", shape);
  }
  node_->shape = std::move(shape);
  node_->size = shape_size(node_->shape);
  node_->dtype = dtype;
  node_->stream = default_stream(default_device());
  auto buffer = std::make_shared<Buffer>(nbytes());
  if (nbytes()) std::memcpy(buffer->write_host(), data, nbytes());
  set_data(std::move(buffer));
  node_->status.store(kAvailable, std::memory_order_release);
}

array::array(std::shared_ptr<Buffer> buffer, Shape shape, Dtype dtype, Strides strides, int64_t offset,
             Stream stream)
    : node_(std::make_shared<Node>()) {
  node_->shape = std::move(shape);
  node_->size = shape_size(node_->shape);
  node_->dtype = dtype;
  node_->stream = stream;
  set_data(std::move(buffer), std::move(strides), offset);
  node_->status.store(kAvailable, std::memory_order_release);
}

array from_external(ExternalMemory memory, Shape shape, Dtype dtype, Strides strides, StreamOrDevice s) {
  Stream stream = to_stream(s);
  for (auto d : shape) {
    if (d < 0) fail<ValueError>("[from_external] negative dimension in shape ", shape);
  }
  if (strides.empty()) strides = row_major_strides(shape);
  if (strides.size() != shape.size()) {
    fail<ValueError>("[from_external] ", strides.size(), " strides for ", shape.size(), " dimensions");
  }
  const size_t item = size_of(dtype);
  int64_t span = shape_size(shape) > 0 ? 1 : 0;  // elements from the first to one past the last
  for (size_t i = 0; i < shape.size() && span; ++i) {
    if (strides[i] < 0) fail<ValueError>("[from_external] negative strides are not supported: ", strides[i]);
    span += (shape[i] - 1) * strides[i];
  }
  auto address = reinterpret_cast<uintptr_t>(memory.data);
  if (span && !memory.data) fail<ValueError>("[from_external] no data for ", shape_size(shape), " elements");
  if (address % item != 0) {
    fail<ValueError>("[from_external] the data at byte address ", address, " is not aligned to ", dtype, " (",
                     item, " bytes)");
  }
  if (memory.device.type == Device::gpu) {
    if (memory.device.index < 0 || memory.device.index >= gpu_count()) {
      fail<ValueError>("[from_external] the memory is on GPU ", memory.device.index, " but ", gpu_count(),
                       " GPUs are present");
    }
    if (memory.stream < 0) memory.stream = default_stream(memory.device).index;
  }
  uintptr_t head = address % 16;  // a multiple of the element size, which divides 16
  memory.data = reinterpret_cast<char*>(memory.data) - head;
  auto buffer = std::make_shared<Buffer>(head + static_cast<size_t>(span) * item, std::move(memory));
  return array(std::move(buffer), std::move(shape), dtype, std::move(strides), static_cast<int64_t>(head / item),
               stream);
}

array::array(Shape shape, Dtype dtype, std::shared_ptr<Primitive> primitive, std::vector<array> inputs,
             Stream stream)
    : node_(std::make_shared<Node>()) {
  node_->shape = std::move(shape);
  node_->size = shape_size(node_->shape);
  node_->dtype = dtype;
  node_->stream = stream;
  node_->primitive = std::move(primitive);
  node_->inputs = std::move(inputs);
}

int64_t array::shape(int axis) const {
  int n = ndim();
  if (axis < -n || axis >= n) fail<IndexError>("[shape] axis ", axis, " is out of range for ", n, " dimensions");
  return node_->shape[axis < 0 ? axis + n : axis];
}

void array::fill_layout(Strides strides, int64_t offset) {
  auto& n = *node_;
  n.strides = std::move(strides);
  n.offset = offset;
  // Contiguity ignores axes of length 1, whose stride never matters.
  bool row = true, col = true;
  int64_t expect = 1;
  for (int i = ndim() - 1; i >= 0; --i) {
    if (n.shape[i] == 1) continue;
    if (n.strides[i] != expect) row = false;
    expect *= n.shape[i];
  }
  expect = 1;
  for (int i = 0; i < ndim(); ++i) {
    if (n.shape[i] == 1) continue;
    if (n.strides[i] != expect) col = false;
    expect *= n.shape[i];
  }
  n.row_contiguous = row;
  n.col_contiguous = col;
  // Dense: the strides of the non-unit axes, sorted, form a packed layout.
  bool dense = row || col;
  if (!dense) {
    std::vector<std::pair<int64_t, int64_t>> sd;
    for (int i = 0; i < ndim(); ++i) {
      if (n.shape[i] != 1) sd.emplace_back(n.strides[i], n.shape[i]);
    }
    std::sort(sd.begin(), sd.end());
    dense = true;
    int64_t e = 1;
    for (auto& [st, sh] : sd) {
      if (st != e) {
        dense = false;
        break;
      }
      e *= sh;
    }
  }
  n.dense = dense;
  n.data_size = dense ? n.size : 0;
}

void array::set_data(std::shared_ptr<Buffer> buffer) {
  node_->buffer = std::move(buffer);
  fill_layout(row_major_strides(node_->shape), 0);
}

void array::set_data(std::shared_ptr<Buffer> buffer, Strides strides, int64_t offset) {
  node_->buffer = std::move(buffer);
  fill_layout(std::move(strides), offset);
}

void array::set_view(const array& src, Strides strides, int64_t offset) {
  node_->buffer = src.node_->buffer;
  fill_layout(std::move(strides), offset);
}

void array::detach() {
  node_->primitive.reset();
  if (!node_->inputs.empty()) release_inputs(node_->inputs);
  node_->status.store(kAvailable, std::memory_order_release);
}

void array::eval() {
  if (!is_available()) kiln::eval({*this});
}

template <class R>
R array::item() {
  if (size() != 1) fail<ValueError>("[item] only arrays of one element have an item; this one has ", size());
  eval();
  R out{};
  KILN_DISPATCH_ALL("item", dtype(), { out = convert<R>(*host_data<T>()); });
  return out;
}

template <class T>
const T* array::data() {
  if (dtype_of<T>::value != dtype()) {
    fail<TypeError>("[data] array has dtype ", dtype(), ", not ", dtype_of<T>::value);
  }
  eval();
  return host_data<T>();
}

template <class R>
std::vector<R> array::to_vector() {
  eval();
  std::vector<R> out(static_cast<size_t>(size()));
  if (size() == 0) return out;
  const int nd = ndim();
  KILN_DISPATCH_ALL("to_vector", dtype(), {
    const T* base = host_data<T>();
    std::vector<int64_t> idx(nd, 0);
    int64_t pos = 0;
    for (int64_t i = 0; i < size(); ++i) {
      out[i] = convert<R>(base[pos]);
      for (int d = nd - 1; d >= 0; --d) {
        if (++idx[d] < shape()[d]) {
          pos += strides()[d];
          break;
        }
        pos -= strides()[d] * (shape()[d] - 1);
        idx[d] = 0;
      }
    }
  });
  return out;
}

#define KILN_INSTANTIATE_ACCESS(T)                 \
  template T array::item<T>();                     \
  template const T* array::data<T>();              \
  template std::vector<T> array::to_vector<T>();
KILN_INSTANTIATE_ACCESS(bool)
KILN_INSTANTIATE_ACCESS(uint8_t)
KILN_INSTANTIATE_ACCESS(uint16_t)
KILN_INSTANTIATE_ACCESS(uint32_t)
KILN_INSTANTIATE_ACCESS(uint64_t)
KILN_INSTANTIATE_ACCESS(int8_t)
KILN_INSTANTIATE_ACCESS(int16_t)
KILN_INSTANTIATE_ACCESS(int32_t)
KILN_INSTANTIATE_ACCESS(int64_t)
KILN_INSTANTIATE_ACCESS(float16_t)
KILN_INSTANTIATE_ACCESS(bfloat16_t)
KILN_INSTANTIATE_ACCESS(float)
KILN_INSTANTIATE_ACCESS(double)
KILN_INSTANTIATE_ACCESS(complex64_t)
#undef KILN_INSTANTIATE_ACCESS

std::ostream& operator<<(std::ostream& os, const Shape& shape) {
  os << "(";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) os << ",";
  return os << ")";
}

namespace {

template <class T>
void print_value(std::ostream& os, T v) {
  if constexpr (std::is_same_v<T, bool>) {
    os << (v ? "true" : "false");
  } else if constexpr (std::is_same_v<T, complex64_t>) {
    os << v.re << (v.im < 0 ? "-" : "+") << std::abs(v.im) << "j";
  } else if constexpr (std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>) {
    os << static_cast<float>(v);
  } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
    os << static_cast<int>(v);
  } else {
    os << v;
  }
}

}  // namespace

std::ostream& operator<<(std::ostream& os, array a) {
  a.eval();
  std::ostringstream body;
  body << std::setprecision(6);
  KILN_DISPATCH_ALL("print", a.dtype(), {
    auto values = a.to_vector<T>();
    const auto& shape = a.shape();
    int nd = a.ndim();
    if (nd == 0) {
      print_value(body, static_cast<T>(values[0]));  // (vector<bool> hands out proxies)
    } else {
      // Print nested brackets, eliding the middle of long axes as NumPy does.
      std::vector<int64_t> idx(nd, 0);
      std::vector<int64_t> strides = row_major_strides(shape);
      std::function<void(int, int64_t)> rec = [&](int d, int64_t base) {
        body << "[";
        int64_t n = shape[d];
        for (int64_t i = 0; i < n; ++i) {
          if (n > 6 && i == 3) {
            body << "..., ";
            i = n - 3;
          }
          if (d == nd - 1) {
            print_value(body, static_cast<T>(values[base + i]));
          } else {
            rec(d + 1, base + i * strides[d]);
          }
          if (i + 1 < n) body << (d == nd - 1 ? ", " : ",\n" + std::string(d + 7, ' '));
        }
        body << "]";
      };
      rec(0, 0);
    }
  });
  return os << "array(" << body.str() << ", dtype=" << a.dtype() << ")";
}

}  // namespace kiln
