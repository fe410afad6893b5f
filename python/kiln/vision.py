"""Image files and torchvision's transforms, channels-last as load_image returns them.

    x = kn.vision.imagenet_preprocess(kn.vision.load_image("models/photos/chelsea.png"))  # (3, 224, 224)
"""
from ._core.vision import *  # noqa: F401,F403
from ._data import find_data


def imagenet_labels(path=None):
    """The 1000 ImageNet class names, in class order (models/imagenet_labels.txt by default)."""
    path = path or find_data("imagenet_labels.txt")
    if path is None:
        raise FileNotFoundError("models/imagenet_labels.txt is missing: run ./scripts/get_models.sh")
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()
