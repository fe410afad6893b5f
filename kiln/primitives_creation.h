// Primitives that make arrays from nothing.
#pragma once

#include "kiln/primitive.h"

namespace kiln {

// out[i] = start + i * step, computed in float64 (or int64 for integer outputs), then cast.
class Arange : public Primitive {
 public:
  Arange(double start, double step) : start(start), step(step) {}
  const char* name() const override { return "arange"; }
  double start;
  double step;
};

}  // namespace kiln
