"""kiln.nn: layers, activations and losses over kiln's ops, in the manner of mlx.nn and torch.nn.

    import kiln as kn
    import kiln.nn as nn

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm(16), nn.ReLU(), nn.MaxPool2d(2))
    model.load_weights("model.pth")        # a torch.save'd state dict; conv weights become channels-last
    y = model.eval()(kn.random.normal((1, 32, 32, 3)))

Layers keep PyTorch's parameter names and shapes (except convolutions, channels-last as kiln's ops), so
state dicts load name for name. Modules are inference-first: kiln has no autograd, and training mode
only changes what Dropout, BatchNorm and MultiHeadAttention's dropout do.
"""
from . import activations as _activations
from . import init, losses
from .activations import *  # noqa: F401,F403
from .attention import MultiHeadAttention
from .conv import AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Conv1d, Conv2d, MaxPool1d, MaxPool2d
from .layers import Dropout, Embedding, Identity, Linear
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
                     l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from .module import Module, Sequential
from .normalization import BatchNorm, GroupNorm, LayerNorm, RMSNorm

__all__ = [  # noqa: F405
    "Module", "Sequential", "Identity", "Linear", "Embedding", "Dropout", "Conv1d", "Conv2d", "MaxPool1d",
    "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm", "LayerNorm", "RMSNorm", "GroupNorm",
    "MultiHeadAttention", "init", "losses", *losses.__all__, *_activations.__all__,
]
