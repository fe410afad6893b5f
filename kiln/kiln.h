// The one header users include.
#pragma once

#include "kiln/array.h"
#include "kiln/capture.h"
#include "kiln/device.h"
#include "kiln/dtype.h"
#include "kiln/eval.h"
#include "kiln/fast.h"
#include "kiln/fast_attention.h"
#include "kiln/memory.h"
#include "kiln/ops.h"
#include "kiln/version.h"
