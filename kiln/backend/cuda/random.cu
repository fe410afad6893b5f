// CUDA kernels: random bits (threefry2x32-20, shared with the CPU kernel, so the streams match
// bit for bit).
#include "kiln/backend/common/threefry.h"
#include "kiln/backend/cuda/elementwise.cuh"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_random.h"

namespace kiln::cuda {

namespace {

using random_detail::threefry2x32;
using random_detail::WordPairs;

// Stores word w of the stream, or the part of it that fits in `bytes` (little-endian). Whole
// words are 4-byte aligned: the buffer starts aligned and word w sits at byte 4w.
__device__ __forceinline__ void put_word(unsigned char* out, uint64_t bytes, uint64_t w, uint32_t v) {
  uint64_t at = 4 * w;
  if (at + 4 <= bytes) {
    *reinterpret_cast<uint32_t*>(out + at) = v;
  } else {
    for (uint64_t i = at; i < bytes; ++i) out[i] = static_cast<unsigned char>(v >> (8 * (i - at)));
  }
}

// One thread per pair of words (grid-stride); the key is read on the device, no host sync.
__global__ void random_bits_fill(const uint32_t* key, int64_t key_stride, unsigned char* out, uint64_t bytes,
                                 WordPairs wp) {
  const uint32_t k0 = key[0], k1 = key[key_stride];
  const uint64_t pairs = wp.pairs();
  for (uint64_t p = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < pairs;
       p += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    auto x = threefry2x32(k0, k1, static_cast<uint32_t>(p), wp.second_counter(p));
    put_word(out, bytes, p, x.a);
    if (wp.has_second(p)) put_word(out, bytes, wp.second_word(p), x.b);
  }
}

void random_bits_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array& key = inputs[0];
  const uint32_t* k = in_ptr<uint32_t>(key, out);
  auto* dst = alloc_out<unsigned char>(out);
  const uint64_t bytes = out.nbytes();
  if (bytes == 0) return;
  WordPairs wp((bytes + 3) / 4);
  random_bits_fill<<<strided_blocks(out, static_cast<int64_t>(wp.pairs())), kThreads, 0, stream_of(out)>>>(
      k, key.strides()[0], dst, bytes, wp);
  check_launch("random_bits");
}

}  // namespace

void register_gpu_random() { register_kernel(Backend::gpu, "random_bits", random_bits_kernel); }

}  // namespace kiln::cuda
