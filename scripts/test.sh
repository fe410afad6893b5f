#!/usr/bin/env bash
# Builds kiln and runs every test. GPU tests run where a GPU is present and skip, visibly,
# where none is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
python3 -m pip install -q --disable-pip-version-check numpy gguf || echo "numpy/gguf not installed: the GGUF fixture tests will skip"
ctest --test-dir build --output-on-failure
