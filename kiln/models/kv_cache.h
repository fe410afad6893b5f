// The keys and values of past positions, per layer, for incremental decoding. Each layer's
// buffer is (B, H, capacity, D); new positions are written in place (slice_update takes over the
// old buffer when nothing else holds it), so appending a token costs its own size, not the
// cache's. Capacity grows in steps of `step` positions, or once to a reserved size.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "kiln/array.h"

namespace kiln::models {

class KVCache {
 public:
  explicit KVCache(int num_layers, int step = 256);

  // Appends k (B, H, L, D) and v (B, H, L, Dv) to layer `layer` at position offset(), and
  // returns views of all keys and values cached for it, (B, H, offset() + L, ...). The layers
  // advance together: offset() moves on when the last layer has been updated.
  std::pair<array, array> update(int layer, const array& k, const array& v);

  // Positions cached so far (the position of the next token).
  int64_t offset() const { return offset_; }
  int num_layers() const { return static_cast<int>(keys_.size()); }
  // Writes k, v (B, H, L, D) from `position` (an int32 scalar array, read when the kernel runs)
  // into layer `layer`'s buffers without moving offset(), and returns the whole buffers
  // (B, H, capacity(), D). The shapes do not depend on the position, so a decoding step built on
  // it replays as one CUDA graph (LlamaForCausalLM::decode_step). The buffers must exist already.
  std::pair<array, array> write_at(int layer, const array& k, const array& v, const array& position);
  // Sets offset() (at most capacity()) after steps that wrote with write_at.
  void set_offset(int64_t offset);
  // Whether every layer has its buffers.
  bool allocated() const;
  // Makes room for `positions` in all without growing again (takes effect at the next update
  // for layers not yet allocated).
  void reserve(int64_t positions);
  // Forgets every cached position (buffers are kept for reuse).
  void clear() { offset_ = 0; }
  // Forgets positions from `offset` on (offset <= offset()).
  void trim(int64_t offset);

  int64_t capacity() const { return capacity_; }
  // Bytes held by the buffers.
  size_t nbytes() const;

 private:
  void grow(int layer, int64_t needed, const array& k, const array& v);

  std::vector<std::optional<array>> keys_, values_;
  int64_t offset_ = 0;
  int64_t capacity_ = 0;   // allocated positions per layer (same for all layers once allocated)
  int64_t reserved_ = 0;
  int step_;
};

}  // namespace kiln::models
