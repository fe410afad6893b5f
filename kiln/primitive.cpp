#include "kiln/primitive.h"

#include <ostream>

namespace kiln {

void Primitive::print(std::ostream& os) const { os << name(); }

}  // namespace kiln
