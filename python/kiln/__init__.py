"""kiln: lazy arrays on CPUs and NVIDIA GPUs, over kiln's C++ core.

    import kiln as kn
    x = kn.random.normal((8, 64))
    y = kn.tanh(x @ x.T)      # a graph; nothing has run yet
    kn.eval(y)                # runs on kn.default_device()

kn.models (language models, ImageNet classifiers), kn.vision (images), kn.generate (streamed text) and kn.nn
(layers, activations and losses).
"""
import ast as _ast
import re as _re
import sys as _sys
from inspect import Parameter as _Parameter
from inspect import Signature as _Signature
from typing import Sequence as _Sequence
from typing import Union as _Union

from . import _core
from ._core import *  # noqa: F401,F403
from ._core import __version__, fast, random

# `import kiln.random` and `from kiln.fast import rms_norm` find the extension's submodules.
_sys.modules[__name__ + ".random"] = random
_sys.modules[__name__ + ".fast"] = fast
# The Python modules models, text and vision wrap the extension's submodules of the same names (which
# _core.__all__ leaves out of the star import).
from . import models, nn, text, vision  # noqa: E402
from ._save import save_safetensors  # noqa: E402

generate = text.generate


def _reshape(self, *shape: _Union[int, _Sequence[int]], stream: _Union[Stream, Device, None] = None) -> array:
    """The values in a new shape: a.reshape(2, 3) or a.reshape((2, 3))."""
    new_shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return _core.reshape(self, new_shape, stream=stream)  # type: ignore[arg-type]


def _transpose(self, *axes: _Union[int, _Sequence[int]], stream: _Union[Stream, Device, None] = None) -> array:
    """The axes permuted: a.transpose(), a.transpose(1, 0) or a.transpose((1, 0))."""
    order = axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes
    return _core.transpose(self, list(order) if order else None, stream=stream)  # type: ignore[arg-type]


def _method_signature(fn):
    """The signature of a bound function (nanobind records it as text) with its first parameter as self, so
    that help() and the generated stubs show a method's arguments."""
    text, _, defaults = fn.__nb_signature__[0]
    node = _ast.parse(_re.sub(r"\\(\d+)", r"__default_\1", text) + ": ...").body[0]
    args = node.args

    def value(expr):
        if isinstance(expr, _ast.Name) and expr.id.startswith("__default_"):
            return defaults[int(expr.id[len("__default_"):])]
        return _ast.literal_eval(expr)

    def annotation(arg):
        return _ast.unparse(arg.annotation) if arg.annotation is not None else _Parameter.empty

    empty = _Parameter.empty
    positional = args.posonlyargs + args.args
    first_default = len(positional) - len(args.defaults)
    params = []
    for i, arg in enumerate(positional):
        kind = _Parameter.POSITIONAL_ONLY if i < len(args.posonlyargs) else _Parameter.POSITIONAL_OR_KEYWORD
        default = value(args.defaults[i - first_default]) if i >= first_default else empty
        if i == 0:
            params.append(_Parameter("self", kind))
        else:
            params.append(_Parameter(arg.arg, kind, default=default, annotation=annotation(arg)))
    if args.vararg:
        params.append(_Parameter(args.vararg.arg, _Parameter.VAR_POSITIONAL, annotation=annotation(args.vararg)))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        params.append(_Parameter(arg.arg, _Parameter.KEYWORD_ONLY, annotation=annotation(arg),
                                 default=empty if default is None else value(default)))
    if args.kwarg:
        params.append(_Parameter(args.kwarg.arg, _Parameter.VAR_KEYWORD, annotation=annotation(args.kwarg)))
    returns = _ast.unparse(node.returns) if node.returns is not None else _Signature.empty
    return _Signature(params, return_annotation=returns)


def _as_method(fn, name):
    """fn as a method of array, named as the extension's own methods are (so stubgen emits it in the class)."""
    fn.__name__ = name
    fn.__qualname__ = "array." + name
    fn.__module__ = _core.__name__
    return fn


def _method(fn):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    method.__doc__ = fn.__nb_signature__[0][1]
    method.__signature__ = _method_signature(fn)
    return _as_method(method, fn.__name__)


setattr(array, "reshape", _as_method(_reshape, "reshape"))
setattr(array, "transpose", _as_method(_transpose, "transpose"))
# Methods that call the function of the same name with the array first.
for _name in ("flatten", "squeeze", "swapaxes", "moveaxis", "expand_dims", "sum", "prod", "max", "min", "all",
              "any", "mean", "var", "std", "logsumexp", "argmax", "argmin", "cumsum", "cumprod", "cummax", "cummin",
              "sort", "argsort", "topk", "take", "flip", "round", "abs", "square", "sqrt", "exp", "log", "split",
              "diagonal", "view"):
    setattr(array, _name, _method(getattr(_core, _name)))
del _name
