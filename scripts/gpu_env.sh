# Sourced by the GPU-machine scripts (scripts/gpu_session.sh, scripts/gpu_python.sh): a CMake
# recent enough, and the carried dependencies (scripts/device_deps.sh makes .deps/ and .whl/)
# where the machine lacks them.
# C++20 in CUDA needs CMake >= 3.28; use a carried wheel (.whl/cmake-*.whl) when the machine's is older.
if ! cmake --version | head -1 | awk '{split($3,v,"."); exit !(v[1]>3 || (v[1]==3 && v[2]>=28))}'; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/cmake-site .whl/cmake-*.whl && export PATH=/tmp/cmake-site/bin:$PATH PYTHONPATH=/tmp/cmake-site:${PYTHONPATH:-}
fi
cmake --version | head -1
# PCRE2, nlohmann-json, libjpeg-turbo and libpng from carried Debian packages (.deps/, unpacked
# with dpkg-deb -x; their shared libraries are found through the build tree's RPATH) where the machine
# lacks them.
if ! pkg-config --exists libpcre2-8 libjpeg libpng 2>/dev/null && [ -d .deps ]; then
  d=$PWD/.deps/usr
  for pc in "$d"/lib/x86_64-linux-gnu/pkgconfig/*.pc "$d"/share/pkgconfig/*.pc; do
    # Some .pc files (libjpeg's) spell their folders out as /usr/...: all point into .deps.
    sed -i -E "s|^prefix=.*|prefix=$d|; s#^(exec_prefix|libdir|includedir)=/usr#\1=$d#" "$pc"
  done
  export PKG_CONFIG_PATH=$d/lib/x86_64-linux-gnu/pkgconfig:$d/share/pkgconfig CMAKE_PREFIX_PATH=$d
  # The .pc files name only include/; Debian keeps some headers (libjpeg's jconfig.h) in the
  # multiarch folder, which the machine's own headers would otherwise answer, of another version.
  export CPATH=$d/include/x86_64-linux-gnu:$d/include${CPATH:+:$CPATH}
fi
# cudnn-frontend's headers, carried as .deps/cudnn_frontend/include where pip cannot reach PyPI.
[ -d .deps/cudnn_frontend ] && export CUDNN_FRONTEND_ROOT=$PWD/.deps/cudnn_frontend
export PATH=/usr/local/cuda/bin:$PATH
