"""Writing safetensors files (kn.load_safetensors reads them back)."""
from __future__ import annotations

import json
import os
import struct
from typing import Any, Mapping, Optional, Union

from . import _core

_STORED_NAMES = {
    _core.bool_: "BOOL", _core.uint8: "U8", _core.int8: "I8", _core.uint16: "U16", _core.int16: "I16",
    _core.float16: "F16", _core.bfloat16: "BF16", _core.uint32: "U32", _core.int32: "I32", _core.float32: "F32",
    _core.uint64: "U64", _core.int64: "I64", _core.float64: "F64", _core.complex64: "C64",
}


def _raw_bytes(a: _core.array) -> bytes:
    """The values in row-major order, little-endian, as stored."""
    a = _core.contiguous(a)
    if a.dtype == _core.bfloat16:  # no buffer format; the same bytes as uint16
        a = _core.view(a, _core.uint16)
    return memoryview(a).tobytes()


def save_safetensors(path: Union[str, "os.PathLike[str]"], arrays: Mapping[str, Any],
                     metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes arrays (anything kn.array takes) by name to a safetensors file, in name order, with an optional
    "__metadata__" map of strings."""
    path = os.fspath(path)
    header: dict = {}
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"[save_safetensors] '{path}': metadata keys and values must be strings ({bad[0]!r})")
        header["__metadata__"] = dict(metadata)
    tensors = []
    offset = 0
    for name in sorted(arrays):
        if not isinstance(name, str):
            raise TypeError(f"[save_safetensors] '{path}': tensor names must be strings, not {name!r}")
        if name == "__metadata__":
            raise ValueError(f"[save_safetensors] '{path}': '__metadata__' cannot name a tensor")
        a = arrays[name]
        if not isinstance(a, _core.array):
            a = _core.array(a)
        header[name] = {"dtype": _STORED_NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        tensors.append(a)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data section starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in tensors:
            f.write(_raw_bytes(a))
