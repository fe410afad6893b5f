// All user-facing operations, by topic.
#pragma once

#include "kiln/ops_creation.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_shape.h"
