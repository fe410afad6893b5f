// CPU kernels: random bits (threefry2x32-20, shared with the CUDA kernel).
#include <cstring>

#include "kiln/backend/common/threefry.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_random.h"

namespace kiln::cpu {

namespace {

using random_detail::threefry2x32;
using random_detail::WordPairs;

// Stores word w of the stream, or the part of it that fits in `bytes` (little-endian).
inline void put_word(unsigned char* out, uint64_t bytes, uint64_t w, uint32_t v) {
  uint64_t at = 4 * w;
  if (at + 4 <= bytes) {
    std::memcpy(out + at, &v, 4);
  } else {
    std::memcpy(out + at, &v, bytes - at);
  }
}

void random_bits_kernel(const Primitive&, const std::vector<array>& inputs, array& out) {
  const array& key = inputs[0];
  const uint32_t* k = key.host_data<uint32_t>();
  const uint32_t k0 = k[0], k1 = k[key.strides()[0]];
  out.set_data(std::make_shared<Buffer>(out.nbytes()));
  auto* dst = static_cast<unsigned char*>(out.buffer()->write_host());
  const uint64_t bytes = out.nbytes();
  const WordPairs wp((bytes + 3) / 4);
  parallel_for(static_cast<int64_t>(wp.pairs()), 1 << 12, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      auto x = threefry2x32(k0, k1, static_cast<uint32_t>(p), wp.second_counter(p));
      put_word(dst, bytes, p, x.a);
      if (wp.has_second(p)) put_word(dst, bytes, wp.second_word(p), x.b);
    }
  });
}

}  // namespace

void register_cpu_random() { register_kernel(Backend::cpu, "random_bits", random_bits_kernel); }

}  // namespace kiln::cpu
