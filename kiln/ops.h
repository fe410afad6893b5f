// All user-facing operations, by topic.
#pragma once

#include "kiln/ops_conv.h"
#include "kiln/ops_creation.h"
#include "kiln/ops_elementwise.h"
#include "kiln/ops_index.h"
#include "kiln/ops_linalg.h"
#include "kiln/ops_reduce.h"
#include "kiln/ops_shape.h"
#include "kiln/ops_sort.h"
#include "kiln/random.h"
