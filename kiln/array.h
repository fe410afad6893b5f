// The array: a cheap handle to a node of the lazy graph. A node knows its shape, dtype and the
// device stream that computes it; until it is evaluated it also holds the primitive that makes it
// and that primitive's inputs. Once evaluated it holds a buffer (shared with its views), strides
// and an offset, and forgets its inputs.
#pragma once

#include <atomic>
#include <complex>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <type_traits>
#include <vector>

#include "kiln/device.h"
#include "kiln/dtype.h"
#include "kiln/errors.h"
#include "kiln/memory.h"

namespace kiln {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;  // in elements, not bytes

class Primitive;

class array {
 public:
  // 0-d arrays from C++ scalars; the dtype follows the C++ type (double gives float64).
  array(bool v) : array(&v, Shape{}, bool_) {}
  array(int v) : array(&v, Shape{}, int32) {}
  array(int64_t v) : array(&v, Shape{}, int64) {}
  array(uint32_t v) : array(&v, Shape{}, uint32) {}
  array(float v) : array(&v, Shape{}, float32) {}
  array(double v) : array(&v, Shape{}, float64) {}
  array(float16_t v) : array(&v, Shape{}, float16) {}
  array(bfloat16_t v) : array(&v, Shape{}, bfloat16) {}
  array(complex64_t v) : array(&v, Shape{}, complex64) {}
  array(std::complex<float> v) : array(reinterpret_cast<complex64_t*>(&v), Shape{}, complex64) {}

  // A scalar of a chosen dtype: array(3, float16).
  template <class T, class = std::enable_if_t<std::is_arithmetic_v<T>>>
  array(T v, Dtype dtype);

  // 1-d or shaped arrays from values: array({1.f, 2.f, 3.f, 4.f}, {2, 2}).
  template <class T>
  array(std::initializer_list<T> values, Shape shape = {});
  template <class T>
  array(const std::vector<T>& values, Shape shape);

  // Copies `data` (laid out row-major with `shape`, elements of `dtype`) into a new array.
  array(const void* data, Shape shape, Dtype dtype);

  // An evaluated array over storage that exists already: the elements start `offset` elements
  // into `buffer` and are `strides` (in elements) apart.
  array(std::shared_ptr<Buffer> buffer, Shape shape, Dtype dtype, Strides strides, int64_t offset, Stream stream);

  // A node of the graph: the output of `primitive` applied to `inputs`, computed on `stream`.
  array(Shape shape, Dtype dtype, std::shared_ptr<Primitive> primitive, std::vector<array> inputs,
        Stream stream);

  array(const array&) = default;
  array(array&&) noexcept = default;
  array& operator=(const array&) = default;
  array& operator=(array&&) noexcept = default;

  // Metadata, available without evaluating.
  const Shape& shape() const { return node_->shape; }
  int64_t shape(int axis) const;
  int ndim() const { return static_cast<int>(node_->shape.size()); }
  int64_t size() const { return node_->size; }
  Dtype dtype() const { return node_->dtype; }
  size_t itemsize() const { return size_of(node_->dtype); }
  size_t nbytes() const { return node_->size * itemsize(); }
  Device device() const { return node_->stream.device; }
  Stream stream() const { return node_->stream; }

  // Evaluates this array (no-op if it already is).
  void eval();
  bool is_available() const { return node_->status.load(std::memory_order_acquire) == kAvailable; }

  // Element access; these evaluate first and bring the data to the host.
  template <class T>
  T item();
  template <class T>
  const T* data();
  // The values in row-major order, converted to T.
  template <class T>
  std::vector<T> to_vector();

  // Layout, valid once evaluated.
  const Strides& strides() const { return node_->strides; }
  int64_t offset() const { return node_->offset; }
  bool row_contiguous() const { return node_->row_contiguous; }
  bool col_contiguous() const { return node_->col_contiguous; }
  // Elements are packed without gaps (in some axis order), so a flat loop over
  // `data_size()` elements starting at offset visits each exactly once.
  bool dense() const { return node_->dense; }
  int64_t data_size() const { return node_->data_size; }
  const std::shared_ptr<Buffer>& buffer() const { return node_->buffer; }

  // Graph, valid while unevaluated.
  bool has_primitive() const { return node_->primitive != nullptr; }
  Primitive& primitive() const { return *node_->primitive; }
  const std::shared_ptr<Primitive>& primitive_ptr() const { return node_->primitive; }
  const std::vector<array>& inputs() const { return node_->inputs; }

  // Used by kernels to give an output its storage.
  void set_data(std::shared_ptr<Buffer> buffer);  // row-contiguous, offset 0
  void set_data(std::shared_ptr<Buffer> buffer, Strides strides, int64_t offset);
  // Makes this output a view of `src`'s buffer with the given layout.
  void set_view(const array& src, Strides strides, int64_t offset);
  // Marks evaluated and drops the graph behind this array.
  void detach();

  // Host pointer to the first element (offset applied) for kernels; the buffer must exist.
  template <class T>
  const T* host_data() const {
    return static_cast<const T*>(node_->buffer->read_host()) + node_->offset;
  }
  template <class T>
  T* host_data_mut() {
    return static_cast<T*>(node_->buffer->write_host()) + node_->offset;
  }

  // Identity of the node (two handles to one node compare equal).
  const void* id() const { return node_.get(); }
  bool is_same(const array& o) const { return node_ == o.node_; }
  long use_count() const { return node_.use_count(); }

  static constexpr int kUnevaluated = 0;
  static constexpr int kScheduled = 1;
  static constexpr int kAvailable = 2;

  struct Node {
    Shape shape;
    Strides strides;
    int64_t offset = 0;
    int64_t size = 1;
    int64_t data_size = 0;
    Dtype dtype = float32;
    bool row_contiguous = true;
    bool col_contiguous = true;
    bool dense = true;
    Stream stream;
    std::shared_ptr<Buffer> buffer;
    std::shared_ptr<Primitive> primitive;
    std::vector<array> inputs;
    std::atomic<int> status{kUnevaluated};
    std::shared_ptr<struct EvalEvent> event;  // set while an async evaluation is pending

    ~Node();
  };

  Node& node() const { return *node_; }

 private:
  void fill_layout(Strides strides, int64_t offset);
  std::shared_ptr<Node> node_;
};

// An array over memory that another library owns, without a copy (see ExternalMemory): `shape`
// elements of `dtype` at memory.data, `strides` elements apart (row-major when empty; none
// negative). memory.data must be aligned to the element size. The array is evaluated, on the
// stream of `s`; kiln reads the memory and never writes it (ops make new arrays, and the in-place
// update of donate_buffer refuses it). The buffer starts at the 16-byte boundary at or below
// memory.data, as kiln's own buffers do (a dtype view relies on it), so it may cover up to 15
// bytes before the data: bytes of the same 16-byte block, which are never used.
array from_external(ExternalMemory memory, Shape shape, Dtype dtype, Strides strides = {}, StreamOrDevice s = {});

// Row-major strides of a shape.
Strides row_major_strides(const Shape& shape);
int64_t shape_size(const Shape& shape);
std::ostream& operator<<(std::ostream& os, const Shape& shape);
std::ostream& operator<<(std::ostream& os, array a);

// ---- template definitions ----

namespace detail {
array scalar_as(double v, Dtype dtype);
array scalar_as(int64_t v, Dtype dtype);
const void* checked_fill(const void* data, size_t count, const Shape& shape);
}  // namespace detail

template <class T, class>
array::array(T v, Dtype dtype)
    : array(std::is_floating_point_v<T> ? detail::scalar_as(static_cast<double>(v), dtype)
                                        : detail::scalar_as(static_cast<int64_t>(v), dtype)) {}

template <class T>
array::array(std::initializer_list<T> values, Shape shape)
    : array(detail::checked_fill(values.begin(), values.size(),
                                 shape.empty() ? Shape{static_cast<int64_t>(values.size())} : shape),
            shape.empty() ? Shape{static_cast<int64_t>(values.size())} : shape, dtype_of<T>::value) {}

template <class T>
array::array(const std::vector<T>& values, Shape shape)
    : array(detail::checked_fill(values.data(), values.size(), shape), shape, dtype_of<T>::value) {}

}  // namespace kiln
