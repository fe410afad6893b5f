// The base of every graph operation. Each operation has one Primitive (a family of operations
// such as unary math may share a class, told apart by an op code); its kernels live in the backend
// folders and are found by the primitive's name.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "kiln/array.h"

namespace kiln {

class Primitive {
 public:
  virtual ~Primitive() = default;
  // The operation's name, e.g. "add", "sum", "matmul". Kernels are registered under it.
  virtual const char* name() const = 0;
  // Parameters for printing graphs and error messages.
  virtual void print(std::ostream& os) const;
};

}  // namespace kiln
