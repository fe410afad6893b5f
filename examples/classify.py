"""The top-5 ImageNet labels of photos with EfficientNet-Lite0.

    PYTHONPATH=build-py python3 examples/classify.py models/photos/coffee.png [more photos]
"""
import sys
from pathlib import Path

import kiln as kn

photos = sys.argv[1:] or [str(Path(__file__).parent.parent / "models/photos/chelsea.png")]

model = kn.models.load_classifier("efficientnet-lite0")
labels = kn.vision.imagenet_labels()
batch = kn.stack([kn.vision.imagenet_preprocess(kn.vision.load_image(p)) for p in photos])
probs = kn.softmax(model(batch.transpose(0, 2, 3, 1)), axis=-1)  # the model takes channels-last
top5 = kn.argsort(-probs, axis=-1)[:, :5]

for photo, p, best in zip(photos, probs.tolist(), top5.tolist()):
    print(photo)
    for c in best:
        print(f"  {100 * p[c]:6.2f}%  {labels[c]}")
