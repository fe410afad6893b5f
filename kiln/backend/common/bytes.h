// Kernels that only move elements need their size, not their type: this picks an unsigned
// integer of the element's width, so such kernels are instantiated four times, not fourteen.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln {

// Calls fn(U{}) with U an unsigned integer of `item` bytes (1, 2, 4 or 8).
template <class F>
void dispatch_bytes(size_t item, F&& fn) {
  switch (item) {
    case 1: fn(uint8_t{}); break;
    case 2: fn(uint16_t{}); break;
    case 4: fn(uint32_t{}); break;
    default: fn(uint64_t{}); break;
  }
}

}  // namespace kiln
