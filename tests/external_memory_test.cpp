// Arrays over external memory (from_external, ExternalMemory): reads see the owner's memory,
// nothing of kiln ever writes to it, the owner is released exactly once after the last view, and
// the memory is not counted as kiln's.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "kiln/backend/gpu.h"
#include "kiln/backend/kernels.h"
#include "tests/test_utils.h"

using namespace kiln;

namespace {

// Host memory lent to kiln, with a count of releases.
struct Lent {
  std::vector<double> storage;  // doubles: 16-byte aligned by the allocator, room for offsets
  int releases = 0;

  explicit Lent(size_t bytes) : storage((bytes + 7) / 8 + 4) {}
  char* bytes() { return reinterpret_cast<char*>(storage.data()); }
  ExternalMemory memory(size_t offset = 0) {
    return ExternalMemory{bytes() + offset, Device(Device::cpu), -1, [this] { ++releases; }};
  }
};

template <class T>
std::vector<double> fill(T* p, int64_t n) {
  auto v = test::uniform_values(n, -4, 4);
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(v[i]);
  std::vector<double> exact(n);
  for (int64_t i = 0; i < n; ++i) exact[i] = static_cast<double>(p[i]);
  return exact;
}

}  // namespace

TEST(ExternalMemory, ReadsTheOwnersMemoryOnEveryDevice) {
  test::note_gpu_skip();
  for (Device dev : test::devices()) {
    const int64_t rows = 5, cols = 7;
    Lent lent(rows * cols * sizeof(float));
    auto* data = reinterpret_cast<float*>(lent.bytes());
    auto x = fill(data, rows * cols);
    {
      array a = from_external(lent.memory(), {rows, cols}, float32, {}, dev);
      EXPECT_TRUE(a.is_available());
      EXPECT_TRUE(a.buffer()->external());
      // An op built now reads the memory when it runs: a change made before then is seen.
      array y = multiply(a, array(3.0f), dev);
      data[4] = 100.f;
      x[4] = 100.f;
      std::vector<double> ref(x.size());
      for (size_t i = 0; i < x.size(); ++i) ref[i] = 3 * x[i];
      KILN_EXPECT_CLOSE(test::to_doubles(y), ref, float32, "3 * external on " << test::device_name(dev));
      // The reduction of a transposed view.
      array s = sum(transpose(a, dev), 0, false, dev);
      std::vector<double> sref(rows, 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) sref[r] += x[r * cols + c];
      }
      KILN_EXPECT_CLOSE(test::to_doubles(s), sref, float32, "row sums on " << test::device_name(dev));
      EXPECT_EQ(lent.releases, 0);
    }
    EXPECT_EQ(lent.releases, 1) << "the owner was not released once on " << test::device_name(dev);
  }
}

TEST(ExternalMemory, ReleasedOnceAfterTheLastView) {
  Lent lent(64 * sizeof(int32_t));
  auto* data = reinterpret_cast<int32_t*>(lent.bytes());
  auto x = fill(data, 64);
  array part = [&] {
    array a = from_external(lent.memory(), {8, 8}, int32, {}, Device(Device::cpu));
    array v = slice(a, {2, 0}, {6, 8});
    v.eval();  // a view of the same buffer
    return v;
  }();
  EXPECT_EQ(lent.releases, 0) << "released while a view still reads the memory";
  EXPECT_EQ(part.to_vector<int32_t>()[0], static_cast<int32_t>(x[16]));
  part = array(0);
  EXPECT_EQ(lent.releases, 1);
}

TEST(ExternalMemory, NotCountedAsKilnsMemory) {
  synchronize();
  constexpr size_t kBytes = size_t(4) << 20;
  Lent lent(kBytes);
  size_t before = get_active_memory();
  array a = from_external(lent.memory(), {static_cast<int64_t>(kBytes / 4)}, float32, {}, Device(Device::cpu));
  EXPECT_LT(get_active_memory(), before + 4096);
  array c = copy(a, Device(Device::cpu));
  c.eval();
  EXPECT_GE(get_active_memory(), before + kBytes) << "a copy is kiln's and counts";
}

TEST(ExternalMemory, KilnNeverWritesToIt) {
  test::note_gpu_skip();
  for (Device dev : test::devices()) {
    const int64_t n = 32;
    Lent lent(n * sizeof(float));
    auto* data = reinterpret_cast<float*>(lent.bytes());
    auto x = fill(data, n);
    std::vector<float> original(data, data + n);
    // slice_update donates a buffer held by nothing else to its output (an in-place write):
    // never external memory.
    array y = [&] {
      array a = from_external(lent.memory(), {n}, float32, {}, dev);
      return slice_update(a, array(7.0f), {3}, {9}, {}, dev);
    }();
    y.eval();
    EXPECT_EQ(std::memcmp(data, original.data(), n * sizeof(float)), 0) << "on " << test::device_name(dev);
    auto got = y.to_vector<float>();
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(got[i], i >= 3 && i < 9 ? 7.f : original[i]) << i;
    // The in-place path refuses it outright, and still takes a buffer of kiln's own.
    auto donates = [](array in) {
      array out = negative(in, Device(Device::cpu));  // an unevaluated node of in's size
      in = array(0);                                  // out's input list holds the only handle
      return donate_buffer(out.inputs()[0], out);
    };
    EXPECT_FALSE(donates(from_external(lent.memory(), {n}, float32, {}, Device(Device::cpu))));
    array own = copy(from_external(lent.memory(), {n}, float32, {}, Device(Device::cpu)), Device(Device::cpu));
    own.eval();
    EXPECT_TRUE(donates(std::move(own))) << "the check refuses more than external memory";
    // The buffer itself: a write moves the external side to kiln's memory, keeping its contents.
    array b = from_external(lent.memory(), {n}, float32, {}, Device(Device::cpu));
    Buffer& buf = *b.buffer();
    auto* w = static_cast<float*>(buf.write_host());
    EXPECT_NE(static_cast<void*>(w), static_cast<void*>(data));
    EXPECT_EQ(std::memcmp(w, original.data(), n * sizeof(float)), 0);
    w[0] = -1.f;
    EXPECT_EQ(data[0], original[0]);
    EXPECT_FALSE(buf.external());
  }
}

TEST(ExternalMemory, OffsetsAndAlignment) {
  Lent lent(40 * sizeof(float) + 16);
  auto* base = reinterpret_cast<float*>(lent.bytes());
  auto x = fill(base, 40);
  // Data 4 bytes past a 16-byte boundary: the buffer starts at the boundary, the array 1 element in.
  array a = from_external(lent.memory(sizeof(float)), {3, 13}, float32, {}, Device(Device::cpu));
  auto got = a.to_vector<float>();
  for (int i = 0; i < 39; ++i) EXPECT_EQ(got[i], static_cast<float>(x[i + 1])) << i;
  EXPECT_EQ(a.offset(), 1);
  // Strided (a column of a row-major 13 x 3 block).
  array col = from_external(lent.memory(2 * sizeof(float)), {13}, float32, {3}, Device(Device::cpu));
  auto c = col.to_vector<float>();
  for (int i = 0; i < 13; ++i) EXPECT_EQ(c[i], static_cast<float>(x[2 + 3 * i])) << i;
  // Misaligned for the element type, negative strides, bad stride counts: refused with the reason.
  KILN_EXPECT_THROW_MSG(from_external(lent.memory(2), {4}, float32), ValueError, "not aligned");
  KILN_EXPECT_THROW_MSG(from_external(lent.memory(), {4}, float32, {-1}), ValueError, "negative strides");
  KILN_EXPECT_THROW_MSG(from_external(lent.memory(), {4, 2}, float32, {1}), ValueError, "strides");
  // A view as a wider type must start on a multiple of its size.
  array shifted = from_external(lent.memory(sizeof(float)), {4}, float32, {}, Device(Device::cpu));
  KILN_EXPECT_THROW_MSG(view(shifted, float64).eval(), ValueError, "not aligned");
  EXPECT_EQ(lent.releases, 0);  // the refused ones never took the memory; the others still live
}

TEST(ExternalMemory, GpuMemory) {
  if (!gpu_available()) {
    test::note_gpu_skip();
    return;
  }
  // Device memory that the test owns (from kiln's allocator, as another library's would be).
  const int64_t n = 1000;
  Device gpu(Device::gpu);
  Stream s = default_stream(gpu);
  std::vector<float> host(n);
  auto x = fill(host.data(), n);
  size_t bytes = n * sizeof(float);
  void* dev = allocator::gpu_malloc(bytes, gpu.index, s.index);
  gpu_backend()->copy_to_device(dev, host.data(), bytes, gpu.index, s.index);
  int releases = 0;
  {
    array a = from_external(ExternalMemory{dev, gpu, s.index, [&] { ++releases; }}, {n}, float32, {}, s);
    array y = add(a, a, s);
    std::vector<double> ref(n);
    for (int64_t i = 0; i < n; ++i) ref[i] = 2 * x[i];
    KILN_EXPECT_CLOSE(test::to_doubles(y), ref, float32, "a + a over GPU memory");
    KILN_EXPECT_CLOSE(test::to_doubles(a), x, float32, "GPU memory read on the host");
    // Never written: an update that could take the buffer over copies it instead.
    array z = slice_update(a, array(5.0f), {0}, {10}, {}, s);
    z.eval();
    std::vector<float> back(n);
    synchronize();
    gpu_backend()->copy_to_host(back.data(), dev, bytes, gpu.index, s.index);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(back[i], host[i]) << i;
    EXPECT_EQ(releases, 0);
  }
  EXPECT_EQ(releases, 1);
  allocator::gpu_free(dev, bytes, gpu.index, s.index);
}
