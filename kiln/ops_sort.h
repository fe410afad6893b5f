#pragma once

#include "kiln/array.h"

namespace kiln {}  // namespace kiln
