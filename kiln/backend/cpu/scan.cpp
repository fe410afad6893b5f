// CPU kernels of the scans (cumsum, cumprod, cummax, cummin). Each line along the axis is scanned
// sequentially; when the axis is not the innermost one, blocks of neighbouring lines are scanned
// together so that every step reads and writes contiguous memory.
#include <algorithm>

#include "kiln/backend/common/reduce.h"
#include "kiln/backend/cpu/utils.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitives_reduce.h"

namespace kiln::cpu {

namespace {

constexpr int64_t kLineBlock = 128;

template <class Op, class T, class Out>
void scan_typed(const Scan& p, const array& in, array& out) {
  using Acc = typename Op::Acc;
  Op op;
  Out* dst = allocate<Out>(out);
  if (out.size() == 0) return;
  const T* x = in.host_data<T>();
  const int ax = p.axis;
  const int64_t L = in.shape()[ax];
  const int64_t si = in.strides()[ax];
  const int64_t so = row_major_strides(out.shape())[ax];
  const bool rev = p.reverse, inc = p.inclusive;

  // The lines: every axis but the scanned one, with input and output strides.
  Shape ls;
  Strides lin, lout;
  Strides os = row_major_strides(out.shape());
  for (int d = 0; d < in.ndim(); ++d) {
    if (d == ax) continue;
    ls.push_back(in.shape()[d]);
    lin.push_back(in.strides()[d]);
    lout.push_back(os[d]);
  }
  auto lines = collapse<2>(ls, {&lin, &lout});
  const int64_t n_lines = out.size() / L;

  // Scans w neighbouring lines (w = 1 for a single line) starting at xs / ds.
  auto scan_block = [&](const T* xs, Out* ds, int64_t w) {
    Acc acc[kLineBlock];
    for (int64_t i = 0; i < w; ++i) acc[i] = Op::init();
    for (int64_t j = 0; j < L; ++j) {
      int64_t k = rev ? L - 1 - j : j;
      const T* xr = xs + k * si;
      Out* dr = ds + k * so;
      for (int64_t i = 0; i < w; ++i) {
        Acc v = Op::load(xr[i]);
        if (inc) {
          acc[i] = op(acc[i], v);
          dr[i] = convert<Out>(acc[i]);
        } else {
          dr[i] = convert<Out>(acc[i]);
          acc[i] = op(acc[i], v);
        }
      }
    }
  };

  int nd = static_cast<int>(lines.shape.size());
  bool columns = L > 1 && so != 1 && lines.shape[nd - 1] > 1 && lines.strides[0][nd - 1] == 1 &&
                 lines.strides[1][nd - 1] == 1;
  if (columns) {
    const int64_t I = lines.shape[nd - 1], blocks = (I + kLineBlock - 1) / kLineBlock;
    Collapsed<2> outer;
    outer.shape.assign(lines.shape.begin(), lines.shape.end() - 1);
    for (int k = 0; k < 2; ++k) outer.strides[k].assign(lines.strides[k].begin(), lines.strides[k].end() - 1);
    if (outer.shape.empty()) {
      outer.shape = {1};
      outer.strides = {Strides{0}, Strides{0}};
    }
    parallel_for(n_lines / I * blocks, std::max<int64_t>(1, kElementwiseGrain / (L * kLineBlock)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t it = b; it < e; ++it) {
                     int64_t j = it % blocks, o = it / blocks;
                     int64_t oi = 0, oo = 0, rem = o;
                     for (int d = static_cast<int>(outer.shape.size()) - 1; d >= 0; --d) {
                       int64_t idx = rem % outer.shape[d];
                       rem /= outer.shape[d];
                       oi += idx * outer.strides[0][d];
                       oo += idx * outer.strides[1][d];
                     }
                     scan_block(x + oi + j * kLineBlock, dst + oo + j * kLineBlock, std::min(kLineBlock, I - j * kLineBlock));
                   }
                 });
    return;
  }
  parallel_for(n_lines, std::max<int64_t>(1, kElementwiseGrain / L), [&](int64_t b, int64_t e) {
    for_each_strided(lines, b, e, [&](const std::array<int64_t, 2>& off) { scan_block(x + off[0], dst + off[1], 1); });
  });
}

template <class Op, class T>
void scan_run(const Scan& p, const array& in, array& out) {
  using Out = typename Op::Out;
  if (out.dtype() != dtype_of<Out>::value) fail<TypeError>("[", p.name(), "] cannot scan ", in.dtype(), " into ", out.dtype());
  scan_typed<Op, T, Out>(p, in, out);
}

void scan_kernel(const Primitive& prim, const std::vector<array>& inputs, array& out) {
  const auto& p = static_cast<const Scan&>(prim);
  const array& in = inputs[0];
  const char* name = p.name();
  switch (p.op) {
    case ScanOp::cumsum:
      KILN_DISPATCH_ALL(name, in.dtype(), { scan_run<reduce::Sum<T>, T>(p, in, out); });
      break;
    case ScanOp::cumprod:
      KILN_DISPATCH_ALL(name, in.dtype(), { scan_run<reduce::Prod<T>, T>(p, in, out); });
      break;
    case ScanOp::cummax:
      KILN_DISPATCH_REAL(name, in.dtype(), { scan_run<reduce::Max<T>, T>(p, in, out); });
      break;
    case ScanOp::cummin:
      KILN_DISPATCH_REAL(name, in.dtype(), { scan_run<reduce::Min<T>, T>(p, in, out); });
      break;
  }
}

}  // namespace

void register_cpu_scan() {
  for (auto op : {ScanOp::cumsum, ScanOp::cumprod, ScanOp::cummax, ScanOp::cummin}) {
    register_kernel(Backend::cpu, op_name(op), scan_kernel);
  }
}

}  // namespace kiln::cpu
