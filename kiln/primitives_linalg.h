// Matrix product primitives. Inputs come from the front end already shaped for the kernels:
// a is batch + (M, K), b is batch + (K, N), both broadcast to one batch shape by views (stride 0 on
// broadcast axes, so nothing is materialized); the output is row-contiguous batch + (M, N).
#pragma once

#include <ostream>

#include "kiln/primitive.h"

namespace kiln {

// out = a @ b.
class Matmul : public Primitive {
 public:
  const char* name() const override { return "matmul"; }
};

// out = beta * c + alpha * (a @ b), with c (a third input) broadcast to the output's shape. The
// kernels copy c into the output and let the GEMM scale it (BLAS's beta), so no extra pass runs.
// With beta == 0, c is not read at all (NaNs in it do not propagate), as in BLAS and PyTorch.
class AddMM : public Primitive {
 public:
  AddMM(double alpha, double beta) : alpha(alpha), beta(beta) {}
  const char* name() const override { return "addmm"; }
  void print(std::ostream& os) const override { os << "addmm(alpha=" << alpha << ", beta=" << beta << ")"; }
  double alpha;
  double beta;
};

}  // namespace kiln
