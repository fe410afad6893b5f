// Matrix products (kiln/ops_linalg.h).
#include "common.h"

namespace kiln_py {

using kiln::array;

void init_ops_linalg(nb::module_& m) {
  m.def(
      "matmul",
      [](const ArrayLike& a, const ArrayLike& b, StreamOrDevice s) {
        auto [x, y] = to_arrays(a, b);
        return kiln::matmul(x, y, s);
      },
      "a"_a, "b"_a, nb::kw_only(), "stream"_a = nb::none(),
      "The matrix product, with NumPy's rules for 1-d operands and broadcast batches.");
  m.def(
      "addmm",
      [](const ArrayLike& c, const ArrayLike& a, const ArrayLike& b, double alpha, double beta, StreamOrDevice s) {
        return kiln::addmm(to_array(c), to_array(a), to_array(b), alpha, beta, s);
      },
      "c"_a, "a"_a, "b"_a, "alpha"_a = 1.0, "beta"_a = 1.0, nb::kw_only(), "stream"_a = nb::none(),
      "beta * c + alpha * (a @ b).");
  m.def(
      "outer",
      [](const ArrayLike& a, const ArrayLike& b, StreamOrDevice s) {
        auto [x, y] = to_arrays(a, b);
        return kiln::outer(x, y, s);
      },
      "a"_a, "b"_a, nb::kw_only(), "stream"_a = nb::none(), "out[i, j] = a[i] * b[j] of the flattened inputs.");
  m.def(
      "inner",
      [](const ArrayLike& a, const ArrayLike& b, StreamOrDevice s) {
        auto [x, y] = to_arrays(a, b);
        return kiln::inner(x, y, s);
      },
      "a"_a, "b"_a, nb::kw_only(), "stream"_a = nb::none(), "The sum product over the last axes of a and b.");
  m.def(
      "tensordot",
      [](const ArrayLike& a, const ArrayLike& b, std::variant<int, std::pair<std::vector<int>, std::vector<int>>> axes,
         StreamOrDevice s) {
        auto [x, y] = to_arrays(a, b);
        if (auto* n = std::get_if<int>(&axes)) return kiln::tensordot(x, y, *n, s);
        return kiln::tensordot(x, y, std::get<1>(axes), s);
      },
      "a"_a, "b"_a, "axes"_a = 2, nb::kw_only(), "stream"_a = nb::none(),
      "Sum products over the last `axes` axes of a and the first of b, or over two lists of axes.");
  m.def(
      "einsum",
      [](const std::string& subscripts, nb::args operands, StreamOrDevice s) {
        std::vector<array> xs;
        for (nb::handle h : operands) xs.push_back(to_array(h));
        return kiln::einsum(subscripts, xs, s);
      },
      "subscripts"_a, "operands"_a, "stream"_a = nb::none(), "Einstein summation, as numpy.einsum: 'ij,jk->ik'.");
}

}  // namespace kiln_py
