"""Module: the base of kiln.nn's layers, and Sequential.

A module's parameter tree is its public attributes: a kn.array is a parameter, a Module a child,
and a list, tuple or dict holding arrays or modules a branch whose entries are named by index or
key. Flattened names join the path with dots ("blocks.0.attn.out_proj.weight"), as PyTorch's
state_dict keys do, so that checkpoints load name for name. Attributes whose names start with "_"
are private and never parameters.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from .. import _core as kn
from .._save import save_safetensors

Weights = Union[str, "os.PathLike[str]", Mapping[str, Any], Sequence[Tuple[str, Any]]]

# Files by extension; anything else (a folder, an index .json) goes to kn.load's sharded reader.
_TORCH_EXTENSIONS = (".pth", ".pt", ".bin")


def _holds(value: Any) -> bool:
    """Whether an attribute value is part of the parameter tree."""
    if isinstance(value, (kn.array, Module)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds(v) for v in value)
    if isinstance(value, dict):
        return any(_holds(v) for v in value.values())
    return False


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch"


def _as_array(value: Any) -> kn.array:
    if isinstance(value, kn.array):
        return value
    if _is_torch_tensor(value):
        value = value.detach().cpu()
    return kn.array(value)


def _join(prefix: str, name: Any) -> str:
    return f"{prefix}.{name}" if prefix else str(name)


def _flatten_tree(tree: Any, prefix: str, out: Dict[str, Any]) -> None:
    """Dotted names of the leaves of nested dicts and lists (a flat dict passes through)."""
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            _flatten_tree(v, _join(prefix, k), out)
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            _flatten_tree(v, _join(prefix, i), out)
    else:
        out[prefix] = tree


class _Slot:
    """Where a parameter lives: its container (a module, list or dict) and key, and the nearest module
    above it with the parameter's name relative to that module."""

    __slots__ = ("container", "key", "module", "local")

    def __init__(self, container: Any, key: Any, module: "Module", local: str) -> None:
        self.container, self.key, self.module, self.local = container, key, module, local

    def get(self) -> kn.array:
        if isinstance(self.container, Module):
            return getattr(self.container, self.key)
        return self.container[self.key]

    def set(self, value: kn.array) -> None:
        if isinstance(self.container, Module):
            setattr(self.container, self.key, value)
        elif isinstance(self.container, tuple):
            raise TypeError(f"[update] '{self.local}' of {type(self.module).__name__} is an array in a tuple, "
                            "which cannot be replaced (hold parameters in a list)")
        else:
            self.container[self.key] = value


class Module:
    """The base of layers and models. Subclasses set parameters and children as attributes in __init__
    and define __call__ (as MLX does) or forward (as PyTorch does); calling a module runs either.

        class MLP(kn.nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = [kn.nn.Linear(4, 8), kn.nn.Linear(8, 2)]

            def __call__(self, x):
                return self.layers[1](kn.nn.relu(self.layers[0](x)))

    MLP().parameters() is {"layers": [{"weight": ..., "bias": ...}, {...}]}; its flattened names are
    "layers.0.weight", "layers.0.bias", ...
    """

    def __init__(self) -> None:
        self._training = True

    # ---- calling ----

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if type(self).forward is Module.forward:
            raise NotImplementedError(f"{type(self).__name__} defines neither __call__ nor forward")
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation; a subclass overrides this or __call__."""
        if type(self).__call__ is Module.__call__:
            raise NotImplementedError(f"{type(self).__name__} defines neither __call__ nor forward")
        return self(*args, **kwargs)

    # ---- the tree ----

    def _entries(self) -> Iterator[Tuple[str, Any]]:
        """The attributes in the parameter tree, in the order they were set."""
        for name, value in vars(self).items():
            if not name.startswith("_") and _holds(value):
                yield name, value

    def _slots(self, prefix: str = "") -> Iterator[Tuple[str, _Slot]]:
        """Every parameter by dotted name with where it lives, depth first in attribute order."""

        def walk(container: Any, key: Any, value: Any, name: str, owner: Module, local: str):
            if isinstance(value, kn.array):
                yield name, _Slot(container, key, owner, local)
            elif isinstance(value, Module):
                yield from value._slots(name)
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    yield from walk(value, i, v, _join(name, i), owner, _join(local, i))
            elif isinstance(value, dict):
                for k, v in value.items():
                    yield from walk(value, k, v, _join(name, k), owner, _join(local, k))

        for attr, value in self._entries():
            yield from walk(self, attr, value, _join(prefix, attr), self, attr)

    def parameters(self) -> Dict[str, Any]:
        """The parameter tree as nested dicts (lists stay lists) with arrays at the leaves."""

        def tree(value: Any) -> Any:
            if isinstance(value, Module):
                return value.parameters()
            if isinstance(value, (list, tuple)):
                return [tree(v) if _holds(v) else {} for v in value]
            if isinstance(value, dict):
                return {k: tree(v) for k, v in value.items() if _holds(v)}
            return value

        return {name: tree(value) for name, value in self._entries()}

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, kn.array]]:
        """(dotted name, array) for every parameter, as PyTorch's named_parameters."""
        for name, slot in self._slots(prefix):
            yield name, slot.get()

    def state_dict(self) -> Dict[str, kn.array]:
        """Every parameter by dotted name, the keys PyTorch's state_dict has for the same layers."""
        return dict(self.named_parameters())

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        """The direct child modules, those in lists and dicts named by index or key."""

        def walk(value: Any, name: str):
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    yield from walk(v, _join(name, i))
            elif isinstance(value, dict):
                for k, v in value.items():
                    yield from walk(v, _join(name, k))

        for attr, value in self._entries():
            yield from walk(value, attr)

    def children(self) -> List["Module"]:
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, "Module"]]:
        """This module (named prefix) and every descendant by dotted name, parents first."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(_join(prefix, name))

    def modules(self) -> List["Module"]:
        return [m for _, m in self.named_modules()]

    def num_parameters(self) -> int:
        """The number of scalars in all parameters."""
        return sum(p.size for _, p in self.named_parameters())

    # ---- changing parameters ----

    def update(self, parameters: Union[Mapping[str, Any], Sequence[Tuple[str, Any]]], strict: bool = True) -> "Module":
        """Replaces parameters, given as a tree like parameters() returns or as a flat dict (or list of
        pairs) by dotted name. Values may be anything kn.array takes. An unknown name raises ValueError
        (with strict) before anything changes; shapes are not checked."""
        given = self._flatten_given(parameters)
        slots = dict(self._slots())
        unknown = [name for name in given if name not in slots]
        if unknown and strict:
            raise ValueError(f"[update] {type(self).__name__} has no parameter {_names(unknown)}")
        for name, value in given.items():
            if name in slots:
                slots[name].set(_as_array(value))
        return self

    def load_weights(self, weights: Weights, strict: bool = True, dtype: Optional[kn.Dtype] = None,
                     layout: Optional[str] = None) -> "Module":
        """Loads parameters from a file or from arrays by name.

        weights: a .safetensors file, a PyTorch checkpoint (.pth, .pt or .bin, read without running its
        pickle), a .gguf file (dequantized), a sharded safetensors index or folder; or a dict (flat by
        dotted name, or nested as parameters() returns) or a list of (name, value) pairs, with values
        kn.array takes or torch tensors.
        strict: every parameter must be given and nothing else. Shapes must always match. Every problem
        found (missing, unexpected and mismatched names) is reported in one ValueError, before anything
        changes.
        dtype: casts floating weights to it; otherwise they keep the stored dtype.
        layout: "torch" when convolution weights are in PyTorch's (C_out, C_in, *kernel) layout and
        should be moved to kiln's channels-last (C_out, *kernel, C_in); "kiln" when they already are.
        By default PyTorch checkpoint files and dicts of torch tensors are "torch", the rest "kiln".
        """
        if layout not in (None, "torch", "kiln"):
            raise ValueError(f"[load_weights] layout must be 'torch', 'kiln' or None, not {layout!r}")
        if isinstance(weights, (str, os.PathLike)):
            source = f"'{os.fspath(weights)}'"
            given, file_layout = _read_weights(os.fspath(weights))
            layout = layout or file_layout
        else:
            source = "the weights given"
            given = self._flatten_given(weights)
            if layout is None:
                layout = "torch" if any(_is_torch_tensor(v) for v in given.values()) else "kiln"
            given = {name: _as_array(v) for name, v in given.items()}
        slots = dict(self._slots())
        missing = [name for name in slots if name not in given]
        unexpected = [name for name in given if name not in slots]
        loaded: Dict[str, kn.array] = {}
        mismatched = []
        for name, value in given.items():
            slot = slots.get(name)
            if slot is None:
                continue
            if layout == "torch":
                value = slot.module._from_torch(slot.local, value)
            if dtype is not None and kn.is_floating(value.dtype) and value.dtype != dtype:
                value = value.astype(dtype)
            expected = slot.get().shape
            if value.shape != expected:
                mismatched.append(f"'{name}' is {value.shape} in the checkpoint but {expected} in the module")
            loaded[name] = value
        problems = []
        if strict and missing:
            problems.append(f"missing {_names(missing)}")
        if strict and unexpected:
            problems.append(f"unexpected {_names(unexpected)}")
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if problems:
            raise ValueError(f"[load_weights] {source} does not fit {type(self).__name__}: " + "; ".join(problems))
        for name, value in loaded.items():
            slots[name].set(value)
        return self

    def save_weights(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes every parameter by dotted name to a .safetensors file (load_weights reads it back)."""
        path = os.fspath(path)
        if not path.endswith(".safetensors"):
            raise ValueError(f"[save_weights] '{path}': only .safetensors files are written")
        save_safetensors(path, self.state_dict())

    def set_dtype(self, dtype: kn.Dtype) -> "Module":
        """Casts every floating parameter to dtype (a floating type)."""
        if not kn.is_floating(dtype):
            raise TypeError(f"[set_dtype] {dtype} is not a floating type")
        for _, slot in self._slots():
            value = slot.get()
            if kn.is_floating(value.dtype):
                slot.set(value.astype(dtype))
        return self

    def _from_torch(self, name: str, value: kn.array) -> kn.array:
        """A parameter of a PyTorch checkpoint in this module's layout (the convolutions override it)."""
        return value

    @staticmethod
    def _flatten_given(parameters: Any) -> Dict[str, Any]:
        if isinstance(parameters, Mapping):
            out: Dict[str, Any] = {}
            _flatten_tree(parameters, "", out)
            return out
        if isinstance(parameters, (list, tuple)):
            return dict(parameters)
        raise TypeError(f"parameters must be a dict or a list of (name, value) pairs, not {type(parameters).__name__}")

    # ---- modes ----

    @property
    def training(self) -> bool:
        """Whether the module is in training mode (dropout active, batch norm on batch statistics)."""
        return getattr(self, "_training", True)

    def train(self, mode: bool = True) -> "Module":
        """Sets training mode on this module and every descendant."""
        for _, m in self.named_modules():
            m._training = mode
        return self

    def eval(self) -> "Module":
        """Sets inference mode on this module and every descendant (train(False))."""
        return self.train(False)

    # ---- printing ----

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self._extra_repr()}"]
        children = list(self.named_children())
        if not children:
            return lines[0] + ")"
        for name, child in children:
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {text}")
        return "\n".join(lines) + "\n)"


def _names(names: List[str], limit: int = 20) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return shown + more


def _read_weights(path: str) -> Tuple[Dict[str, kn.array], str]:
    """The arrays of a checkpoint file by name, and the layout its convolution weights are in."""
    if path.endswith(".safetensors"):
        return kn.load_safetensors(path), "kiln"
    if path.endswith(".gguf"):
        return kn.load_gguf(path), "kiln"
    if path.endswith(_TORCH_EXTENSIONS):
        return kn.load_torch_checkpoint(path), "torch"
    if os.path.isdir(path) or path.endswith(".json"):
        return kn.load(path), "kiln"
    raise ValueError(f"[load_weights] '{path}': not a .safetensors, .pth/.pt/.bin or .gguf file, nor a sharded "
                     "safetensors index or folder")


class Sequential(Module):
    """Layers called in order; they are named "0", "1", ... as in PyTorch (so "0.weight")."""

    def __init__(self, *layers: Callable[..., Any]) -> None:
        super().__init__()
        self.layers = list(layers)

    def _entries(self) -> Iterator[Tuple[str, Any]]:
        for i, layer in enumerate(self.layers):
            if _holds(layer):
                yield str(i), layer

    def __call__(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Any:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def append(self, layer: Callable[..., Any]) -> "Sequential":
        self.layers.append(layer)
        return self
