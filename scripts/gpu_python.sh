#!/usr/bin/env bash
# One call on a lent GPU machine for the Python bindings: one CUDA build of the library serving
# the module (kiln._core) and the C++ tests and benchmarks, then pytest on the GPU.
#   scripts/gpu_python.sh [extra ninja targets]   (PYTEST_TIMEOUT=0: build and checks, no pytest;
#   KILN_PY_CMAKE_ARGS: more cmake arguments)
# The module lands in build-py/kiln (PYTHONPATH=build-py), kiln_tests and the benchmarks in
# build-py/kiln_lib. nanobind and pytest come from the carried wheels (.whl/ or .whlpy/). Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/kiln-out}
mkdir -p "$out"
source scripts/gpu_env.sh
# From .whl/ or, where only they are carried, .whlpy/ (the same wheels without CMake's).
w=.whl; [ -e .whl/nanobind-*.whl ] 2>/dev/null || w=.whlpy
python3 -m pip install -q --no-index --no-deps --target /tmp/py-site $w/nanobind-*.whl $w/pytest-*.whl \
  $w/pluggy-*.whl $w/iniconfig-*.whl $w/packaging-*.whl $w/pygments-*.whl
export PYTHONPATH=/tmp/py-site:${PYTHONPATH:-}
t0=$(date +%s)
cmake -S python -B build-py -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DKILN_BUILD_TESTS=ON -DKILN_BUILD_BENCH=ON ${KILN_PY_CMAKE_ARGS:-} >"$out/configure-py.log" 2>&1 || { tail -30 "$out/configure-py.log"; exit 1; }
ninja -C build-py -j"$(nproc)" all "$@" >"$out/build-py.log" 2>&1 || { grep -E "error|Error" -A5 "$out/build-py.log" | head -80; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
PYTHONPATH=build-py:$PYTHONPATH python3 -c "import kiln as kn; print('cuda', kn.built_with_cuda(), 'gpu', kn.gpu_available())"
# A C++ exception turned into a Python one, in fresh processes, the second with torch's CUDA
# started first: a module carrying its own copy of libstdc++ crashed there (SIGSEGV formatting
# the message), which a process without the shared runtime never shows.
exception_check='
import kiln as kn
try:
    kn.array([[1, 2], [3]])
except ValueError as e:
    print("C++ exceptions reach Python:", e)'
PYTHONPATH=build-py:$PYTHONPATH python3 -X faulthandler -c "$exception_check" 2>&1 | head -3
PYTHONPATH=build-py:$PYTHONPATH python3 -X faulthandler -c "
try:
    import torch
    torch.zeros(1, device='cuda')
    print('(after torch CUDA)', end=' ')
except Exception:
    pass
$exception_check" 2>&1 | head -3
[ "${PYTEST_TIMEOUT:-900}" = 0 ] && exit 0  # build and checks only
PYTHONPATH=build-py:$PYTHONPATH timeout "${PYTEST_TIMEOUT:-900}" python3 -m pytest -q -rs python/tests >"$out/pytest.log" 2>&1
rc=$?
echo "pytest exit $rc"
tail -15 "$out/pytest.log"
if [ $rc -ge 128 ] && command -v cuda-gdb >/dev/null; then  # killed by a signal: where, in C++
  PYTHONPATH=build-py:$PYTHONPATH timeout "${GDB_TIMEOUT:-300}" cuda-gdb -batch -ex run -ex bt --args python3 -m pytest -q -x -s \
    -p no:faulthandler python/tests >"$out/pytest-gdb.log" 2>&1
  grep -A30 "received signal" "$out/pytest-gdb.log" | head -40
fi
exit $rc
