"""kiln: lazy arrays on CPUs and NVIDIA GPUs, over kiln's C++ core.

    import kiln as kn
    x = kn.random.normal((8, 64))
    y = kn.tanh(x @ x.T)      # a graph; nothing has run yet
    kn.eval(y)                # runs on kn.default_device()

kn.models (language models, ImageNet classifiers), kn.vision (images), kn.generate (streamed text) and kn.nn
(layers, activations and losses).
"""
import importlib as _importlib
import sys as _sys

from . import _core
from ._core import *  # noqa: F401,F403
from ._core import __version__, fast, random
from ._save import save_safetensors

# `import kiln.random` and `from kiln.fast import rms_norm` find the extension's submodules.
_sys.modules[__name__ + ".random"] = random
_sys.modules[__name__ + ".fast"] = fast
# The Python modules of the same names replace the extension's submodules they wrap (`from . import`
# would find the extension's, which the star import brought in).
models = _importlib.import_module(__name__ + ".models")
text = _importlib.import_module(__name__ + ".text")
vision = _importlib.import_module(__name__ + ".vision")
generate = text.generate
nn = _importlib.import_module(__name__ + ".nn")


def _reshape(self, *shape, stream=None):
    """The values in a new shape: a.reshape(2, 3) or a.reshape((2, 3))."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return _core.reshape(self, shape, stream=stream)


def _transpose(self, *axes, stream=None):
    """The axes permuted: a.transpose(), a.transpose(1, 0) or a.transpose((1, 0))."""
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return _core.transpose(self, list(axes) if axes else None, stream=stream)


def _method(fn):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


array.reshape = _reshape
array.transpose = _transpose
# Methods that call the function of the same name with the array first.
for _name in ("flatten", "squeeze", "swapaxes", "moveaxis", "expand_dims", "sum", "prod", "max", "min", "all",
              "any", "mean", "var", "std", "logsumexp", "argmax", "argmin", "cumsum", "cumprod", "cummax", "cummin",
              "sort", "argsort", "topk", "take", "flip", "round", "abs", "square", "sqrt", "exp", "log", "split",
              "diagonal", "view"):
    setattr(array, _name, _method(getattr(_core, _name)))
del _name
