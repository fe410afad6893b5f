// Primitives that change only the layout: their kernels make the output a view of the input's
// buffer (no copy), except Reshape of a non-contiguous input, which copies.
#pragma once

#include "kiln/primitive.h"

namespace kiln {

class Reshape : public Primitive {
 public:
  const char* name() const override { return "reshape"; }
};

class Transpose : public Primitive {
 public:
  explicit Transpose(std::vector<int> axes) : axes(std::move(axes)) {}
  const char* name() const override { return "transpose"; }
  std::vector<int> axes;
};

class BroadcastTo : public Primitive {
 public:
  const char* name() const override { return "broadcast_to"; }
};

// Strided slice: out[i] = in[start + i * step] along each axis (steps may be negative).
class Slice : public Primitive {
 public:
  Slice(Shape start, Shape step) : start(std::move(start)), step(std::move(step)) {}
  const char* name() const override { return "slice"; }
  Shape start;
  Shape step;
};

// A view with explicit strides and offset relative to the input's first element
// (used by diagonal and other strided views).
class AsStrided : public Primitive {
 public:
  AsStrided(Strides strides, int64_t offset) : strides(std::move(strides)), offset(offset) {}
  const char* name() const override { return "as_strided"; }
  Strides strides;
  int64_t offset;
};

// The input in row-major layout: a view when the computed input already is row-contiguous, else a
// copy. contiguous() uses it for inputs not yet computed, whose layout is unknown until then.
class Contiguous : public Primitive {
 public:
  const char* name() const override { return "contiguous"; }
};

// Reinterprets the bytes of a row-contiguous input as another dtype.
class View : public Primitive {
 public:
  const char* name() const override { return "view"; }
};

}  // namespace kiln
