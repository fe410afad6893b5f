#!/usr/bin/env bash
# Builds kiln and runs every test. GPU tests run where a GPU is present and skip, visibly,
# where none is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ctest --test-dir build --output-on-failure
