// Creation of arrays.
#pragma once

#include <optional>

#include "kiln/array.h"

namespace kiln {

array full(Shape shape, const array& value, StreamOrDevice s = {});
array full(Shape shape, const array& value, Dtype dtype, StreamOrDevice s = {});
array full(Shape shape, double value, Dtype dtype = float32, StreamOrDevice s = {});
array zeros(Shape shape, Dtype dtype = float32, StreamOrDevice s = {});
array ones(Shape shape, Dtype dtype = float32, StreamOrDevice s = {});
array zeros_like(const array& a, StreamOrDevice s = {});
array ones_like(const array& a, StreamOrDevice s = {});
array full_like(const array& a, double value, StreamOrDevice s = {});

// [start, stop) in steps of step; the dtype defaults to int32 when all of start, stop and step
// are integers, else float32.
array arange(double start, double stop, double step, std::optional<Dtype> dtype = {}, StreamOrDevice s = {});
array arange(double stop, std::optional<Dtype> dtype = {}, StreamOrDevice s = {});
array linspace(double start, double stop, int64_t num = 50, Dtype dtype = float32, StreamOrDevice s = {});
// n x m with ones on diagonal k.
array eye(int64_t n, std::optional<int64_t> m = {}, int k = 0, Dtype dtype = float32, StreamOrDevice s = {});
array identity(int64_t n, Dtype dtype = float32, StreamOrDevice s = {});
// Ones at and below diagonal k.
array tri(int64_t n, std::optional<int64_t> m = {}, int k = 0, Dtype dtype = float32, StreamOrDevice s = {});

}  // namespace kiln
