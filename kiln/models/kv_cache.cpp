#include "kiln/models/kv_cache.h"

#include "kiln/errors.h"
#include "kiln/ops_creation.h"
#include "kiln/ops_index.h"
#include "kiln/ops_shape.h"

namespace kiln::models {

KVCache::KVCache(int num_layers, int step) : keys_(num_layers), values_(num_layers), step_(step) {
  if (num_layers < 0) fail<ValueError>("[KVCache] num_layers must be non-negative, got ", num_layers);
  if (step < 1) fail<ValueError>("[KVCache] step must be positive, got ", step);
}

void KVCache::reserve(int64_t positions) {
  if (positions < 0) fail<ValueError>("[KVCache] cannot reserve ", positions, " positions");
  reserved_ = std::max(reserved_, positions);
}

void KVCache::trim(int64_t offset) {
  if (offset < 0 || offset > offset_) {
    fail<ValueError>("[KVCache] cannot trim to ", offset, " positions: the cache holds ", offset_);
  }
  offset_ = offset;
}

size_t KVCache::nbytes() const {
  size_t n = 0;
  for (size_t l = 0; l < keys_.size(); ++l) {
    if (keys_[l]) n += keys_[l]->nbytes() + values_[l]->nbytes();
  }
  return n;
}

// A new buffer for `layer` holding at least `needed` positions, with the cached ones copied over.
void KVCache::grow(int layer, int64_t needed, const array& k, const array& v) {
  int64_t cap = std::max(reserved_, (needed + step_ - 1) / step_ * step_);
  auto fresh = [&](const array& like, const std::optional<array>& old) {
    Shape shape = like.shape();
    shape[2] = cap;
    array buf = zeros(shape, like.dtype(), like.stream());
    if (old && offset_ > 0) {
      Shape stop = old->shape();
      stop[2] = offset_;
      buf = slice_update(buf, slice(*old, {0, 0, 0, 0}, stop), {0, 0, 0, 0}, stop);
    }
    return buf;
  };
  keys_[layer] = fresh(k, keys_[layer]);
  values_[layer] = fresh(v, values_[layer]);
  capacity_ = cap;
}

std::pair<array, array> KVCache::write_at(int layer, const array& k, const array& v, const array& position) {
  if (layer < 0 || layer >= num_layers()) {
    fail<IndexError>("[KVCache] layer ", layer, " out of range for a cache of ", num_layers(), " layers");
  }
  auto& K = keys_[layer];
  auto& V = values_[layer];
  if (!K) fail<ValueError>("[KVCache] write_at needs layer ", layer, "'s buffers (fill the cache with update first)");
  // Reassigning drops our handle to the previous state, so the update is written in place.
  K = dynamic_slice_update(*K, k, position, 2);
  V = dynamic_slice_update(*V, v, position, 2);
  return {*K, *V};
}

void KVCache::set_offset(int64_t offset) {
  if (offset < 0 || offset > capacity_) {
    fail<ValueError>("[KVCache] offset ", offset, " is outside the capacity (", capacity_, ")");
  }
  offset_ = offset;
}

bool KVCache::allocated() const {
  for (const auto& k : keys_)
    if (!k) return false;
  return true;
}

std::pair<array, array> KVCache::update(int layer, const array& k, const array& v) {
  if (layer < 0 || layer >= num_layers()) {
    fail<IndexError>("[KVCache] layer ", layer, " out of range for a cache of ", num_layers(), " layers");
  }
  if (k.ndim() != 4 || v.ndim() != 4 || k.shape(0) != v.shape(0) || k.shape(1) != v.shape(1) ||
      k.shape(2) != v.shape(2)) {
    fail<ValueError>("[KVCache] keys and values must be (B, H, L, D) with the same B, H and L, got ", k.shape(),
                     " and ", v.shape());
  }
  auto& K = keys_[layer];
  auto& V = values_[layer];
  if (K) {
    const Shape& ks = K->shape();
    const Shape& vs = V->shape();
    if (ks[0] != k.shape(0) || ks[1] != k.shape(1) || ks[3] != k.shape(3) || vs[3] != v.shape(3) ||
        K->dtype() != k.dtype() || V->dtype() != v.dtype()) {
      fail<ValueError>("[KVCache] layer ", layer, " holds keys ", ks, " ", K->dtype(), "; cannot append ", k.shape(),
                       " ", k.dtype());
    }
  }
  int64_t L = k.shape(2);
  int64_t end = offset_ + L;
  if (!K || K->shape(2) < end) grow(layer, end, k, v);
  Shape start{0, 0, offset_, 0};
  Shape kstop{k.shape(0), k.shape(1), end, k.shape(3)};
  Shape vstop{v.shape(0), v.shape(1), end, v.shape(3)};
  // Reassigning drops our handle to the previous state, so slice_update can write in place.
  K = slice_update(*K, k, start, kstop);
  V = slice_update(*V, v, start, vstop);
  if (layer == num_layers() - 1) offset_ = end;
  return {slice(*K, {0, 0, 0, 0}, kstop), slice(*V, {0, 0, 0, 0}, vstop)};
}

}  // namespace kiln::models
