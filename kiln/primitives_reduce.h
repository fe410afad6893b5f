// Reduction primitives: reductions over a set of axes, arg-reductions along one axis, scans along
// one axis, and the fused softmax along the last axis.
#pragma once

#include <vector>

#include "kiln/primitive.h"

namespace kiln {

enum class ReduceOp { sum, prod, max, min, all, any };
enum class ArgReduceOp { argmax, argmin };
enum class ScanOp { cumsum, cumprod, cummax, cummin };

const char* op_name(ReduceOp op);
const char* op_name(ArgReduceOp op);
const char* op_name(ScanOp op);

// Reduces `axes` (sorted, distinct, non-empty) of the input. The output keeps the reduced axes
// with length 1 (the front end squeezes them away unless keepdims). Its dtype is the op's
// natural one (see ops_reduce.h), except that sum of float16/bfloat16 may be asked for in
// float32, which mean uses to avoid overflow and double rounding.
class Reduce : public Primitive {
 public:
  Reduce(ReduceOp op, std::vector<int> axes) : op(op), axes(std::move(axes)) {}
  const char* name() const override { return op_name(op); }
  ReduceOp op;
  std::vector<int> axes;
};

// Index (uint32) of the first extreme along `axis`; the output keeps that axis with length 1.
// NaN counts as the extreme, as in NumPy.
class ArgReduce : public Primitive {
 public:
  ArgReduce(ArgReduceOp op, int axis) : op(op), axis(axis) {}
  const char* name() const override { return op_name(op); }
  ArgReduceOp op;
  int axis;
};

// Running sum/product/max/min along `axis`. `reverse` runs from the end; an exclusive scan
// leaves out the element itself (its first value is the op's identity).
class Scan : public Primitive {
 public:
  Scan(ScanOp op, int axis, bool reverse, bool inclusive) : op(op), axis(axis), reverse(reverse), inclusive(inclusive) {}
  const char* name() const override { return op_name(op); }
  ScanOp op;
  int axis;
  bool reverse;
  bool inclusive;
};

// softmax or log_softmax along the last axis in one pass over each row, computed in float32 for
// the 16-bit floats (input and output have the same floating dtype).
class Softmax : public Primitive {
 public:
  explicit Softmax(bool log) : log(log) {}
  const char* name() const override { return log ? "log_softmax" : "softmax"; }
  bool log;
};

}  // namespace kiln
