// Sorting along an axis: sort, argsort, partition, argpartition and topk. NaNs order after every
// number (as NumPy), every real dtype is supported (bool, integers, floats); complex64 is not.
#pragma once

#include <optional>

#include "kiln/array.h"

namespace kiln {

// The values sorted ascending along `axis` (default the last); an empty axis sorts the flattened
// array, as NumPy's axis=None: sort(a, std::nullopt).
array sort(const array& a, std::optional<int> axis = -1, StreamOrDevice s = {});

// uint32 indices that sort `a` along `axis` (flattened when empty). Stable: equal keys keep
// their order, and all NaNs compare equal (after every number).
array argsort(const array& a, std::optional<int> axis = -1, StreamOrDevice s = {});

// NumPy's partition contract: along `axis` the element at position kth is the one a full sort
// would put there, no element before it is greater and no element after it is smaller. The
// order within the two sides is unspecified. kth may be negative (counts from the end).
array partition(const array& a, int64_t kth, int axis = -1, StreamOrDevice s = {});
// uint32 indices that partition `a` as partition() would.
array argpartition(const array& a, int64_t kth, int axis = -1, StreamOrDevice s = {});

// The k largest values along `axis`, in descending order (NaNs count as the largest).
array topk(const array& a, int k, int axis = -1, StreamOrDevice s = {});

}  // namespace kiln
