#!/usr/bin/env bash
# Prepares what a lent GPU machine lacks for building kiln, to carry there with the working tree
# (carry: [".whl", ".deps"]; both are ignored by git):
#   .deps/   Debian's PCRE2, nlohmann-json, libjpeg-turbo, libpng and zlib development files and
#            shared libraries, unpacked (found at run time through the build tree's RPATH);
#            cudnn-frontend's headers (PyPI nvidia-cudnn-frontend) in .deps/cudnn_frontend/include.
#   .whl/    a CMake wheel (C++20 in CUDA needs CMake >= 3.28), and what `pip install ./python`
#            builds with (scikit-build-core, nanobind) and pytest, for the Python tests on the GPU.
# scripts/gpu_session.sh uses them where the machine has none of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download libpcre2-dev nlohmann-json3-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev \
  libpcre2-8-0 libjpeg62-turbo libpng16-16 zlib1g >/dev/null)
rm -rf .deps && mkdir -p .deps .whl
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" .deps; done
# Shared, not static: Debian's static libjpeg, libpng and zlib refer to data in a way that cannot
# go into a shared object (the Python module). Links to absolute paths (libz.so ->
# /lib/x86_64-linux-gnu/...) are made relative to the copies here.
find .deps -type l -lname '/*' | while read -r link; do
  target=.deps$(readlink "$link")
  [ -e "$target" ] && ln -sfr "$target" "$link"
done
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: "cmake==3.31.6" -d .whl
python3 -m pip download -q --disable-pip-version-check --only-binary=:all: scikit-build-core nanobind pytest -d .whl
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: nvidia-cudnn-frontend -d "$tmp"
mkdir -p .deps/cudnn_frontend
python3 - "$tmp" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/nvidia_cudnn_frontend-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    z.extractall(".deps/cudnn_frontend", [n for n in z.namelist() if n.startswith("include/")])
PY
grep -qx ".deps/" .git/info/exclude 2>/dev/null || echo ".deps/" >> .git/info/exclude
du -sh .deps .whl
