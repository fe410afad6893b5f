// Evaluation of the lazy graph.
#pragma once

#include <vector>

#include "kiln/array.h"

namespace kiln {

// Computes the given arrays. The graph is walked without recursion; each primitive runs on its
// stream; an intermediate's memory is released as soon as its last consumer has run; evaluated
// arrays drop their inputs. GPU work is queued and this returns once it is queued; reading the
// data on the host waits for it.
void eval(std::vector<array> outputs);

// Starts evaluating on a background thread and returns at once. Reading the arrays, or calling
// eval on them, waits for that work.
void async_eval(std::vector<array> outputs);

template <class... Arrays>
void eval(const array& first, const Arrays&... rest) {
  eval(std::vector<array>{first, rest...});
}

// Waits for all queued work on every device, including work started by async_eval.
void synchronize();

}  // namespace kiln
