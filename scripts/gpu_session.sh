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
source scripts/gpu_env.sh
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
