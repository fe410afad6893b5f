#!/usr/bin/env bash
# One call on a lent GPU machine: build, run the tests on the GPU, run the benchmarks.
#   scripts/gpu_session.sh [tests|bench|all] [extra gtest filter]
# KILN_TARGETS (e.g. "kiln_tests") limits what is built. scripts/device_deps.sh prepares the
# .deps/ and .whl/ folders to carry (the machine lacks PCRE2, libjpeg, libpng, cudnn-frontend and
# a recent CMake).
# Logs go to $OUT (when set) so they come back even if the call is cut short.
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
filter=${2:-*}
out=${OUT:-/tmp/kiln-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv,noheader
# C++20 in CUDA needs CMake >= 3.28; use a carried wheel (.whl/cmake-*.whl) when the machine's is older.
if ! cmake --version | head -1 | awk '{split($3,v,"."); exit !(v[1]>3 || (v[1]==3 && v[2]>=28))}'; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/cmake-site .whl/cmake-*.whl && export PATH=/tmp/cmake-site/bin:$PATH PYTHONPATH=/tmp/cmake-site:${PYTHONPATH:-}
fi
cmake --version | head -1
# PCRE2, nlohmann-json, libjpeg-turbo and libpng from carried Debian packages (.deps/, unpacked
# with dpkg-deb -x, shared-library links removed so that they link statically) where the machine
# lacks them.
if ! pkg-config --exists libpcre2-8 libjpeg libpng 2>/dev/null && [ -d .deps ]; then
  d=$PWD/.deps/usr
  for pc in "$d"/lib/x86_64-linux-gnu/pkgconfig/*.pc "$d"/share/pkgconfig/*.pc; do
    sed -i "s|^prefix=.*|prefix=$d|" "$pc"
  done
  export PKG_CONFIG_PATH=$d/lib/x86_64-linux-gnu/pkgconfig:$d/share/pkgconfig CMAKE_PREFIX_PATH=$d
fi
# cudnn-frontend's headers, carried as .deps/cudnn_frontend/include where pip cannot reach PyPI.
[ -d .deps/cudnn_frontend ] && export CUDNN_FRONTEND_ROOT=$PWD/.deps/cudnn_frontend
export PATH=/usr/local/cuda/bin:$PATH
t0=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 \
  || { tail -30 "$out/configure.log"; exit 1; }
ninja -C build-gpu -j"$(nproc)" ${KILN_TARGETS:-} >"$out/build.log" 2>&1 || { grep -E "error|Error" -A5 "$out/build.log" | head -80; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
./build-gpu/kiln info
if [ "$what" = tests ] || [ "$what" = all ]; then
  ./build-gpu/kiln_tests --gtest_filter="$filter" >"$out/tests.log" 2>&1
  echo "tests exit $?"
  grep -E "^\[  FAILED|^\[  PASSED|FAILED TEST|tests ran" "$out/tests.log" | head -60
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  python3 bench/core.py --build build-gpu 2>&1 | tee "$out/bench.log"
fi
