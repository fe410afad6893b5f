// Exceptions thrown by kiln. Messages start with the operation in brackets:
// "[reshape] cannot reshape array of size 20 into shape (4, 4)".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

// Bad values: shapes, axes, sizes, file contents. Maps to Python's ValueError.
struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// Bad dtypes. Maps to Python's TypeError.
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// Out-of-range indices and axes. Maps to Python's IndexError.
struct IndexError : std::out_of_range {
  using std::out_of_range::out_of_range;
};
// Failures of the runtime itself (device errors, out of memory).
struct RuntimeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class T>
void put(std::ostream& os, const T& v) {
  os << v;
}
// Shapes, strides and axis lists print as tuples: (2, 3).
template <class T>
void put(std::ostream& os, const std::vector<T>& v) {
  os << "(";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  if (v.size() == 1) os << ",";
  os << ")";
}
}  // namespace detail

// Builds a message from streamable parts: fail<ValueError>("[op] bad axis ", axis).
template <class E = ValueError, class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (detail::put(os, parts), ...);
  throw E(os.str());
}

}  // namespace kiln
