#include "kiln/version.h"

namespace kiln {

bool built_with_cuda() {
#ifdef KILN_HAS_CUDA
  return true;
#else
  return false;
#endif
}

const char* build_type() { return KILN_BUILD_TYPE; }

}  // namespace kiln
