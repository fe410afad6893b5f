"""Devices, streams, evaluation, memory accounting and file loading."""
import shutil
import subprocess

import numpy as np
import pytest

import kiln as kn
from utils import assert_close, random_array


def test_devices_and_streams():
    d = kn.default_device()
    assert d in (kn.cpu, kn.gpu)
    assert kn.Device(kn.DeviceType.cpu) == kn.cpu and kn.cpu != kn.gpu
    assert kn.cpu.type == kn.DeviceType.cpu and kn.cpu.index == 0
    s = kn.default_stream(kn.cpu)
    assert s.device == kn.cpu and kn.default_stream(kn.cpu) == s
    t = kn.new_stream(kn.cpu)
    assert t != s
    a = kn.add(kn.ones((2,)), 1, stream=t)
    assert a.stream == t and a.device == kn.cpu
    kn.set_default_device(kn.cpu)
    try:
        assert kn.zeros((1,)).device == kn.cpu
    finally:
        kn.set_default_device(d)
    assert kn.built_with_cuda() in (True, False) and kn.gpu_count() >= 0


def test_eval_trees_and_synchronize(rng):
    x = random_array(rng, (3, 3))
    a = kn.exp(kn.array(x))
    b = a * 2
    kn.eval([a, {"b": b, "n": 3}], (a,))
    assert_close(b, np.exp(x) * 2, rtol=1e-5)
    c = kn.sin(a)
    kn.async_eval(c)
    kn.synchronize()
    assert_close(c, np.sin(np.exp(x.astype(np.float64))), rtol=1e-5)
    d = kn.cos(c)
    d.eval()
    assert_close(d, np.cos(np.sin(np.exp(x.astype(np.float64)))), rtol=1e-5)


def test_memory_functions():
    kn.reset_peak_memory()
    base = kn.get_active_memory()
    a = kn.zeros((1024, 256))  # 1 MiB
    kn.eval(a)
    assert kn.get_active_memory() >= base + 1024 * 256 * 4
    assert kn.get_peak_memory() >= kn.get_active_memory()
    del a
    assert kn.get_active_memory() < base + 1024 * 256 * 4
    assert kn.get_cache_memory() >= 0
    old = kn.set_memory_limit(0)
    assert kn.get_memory_limit() == 0
    kn.set_memory_limit(old)
    kn.clear_cache()


def test_load_safetensors(rng, tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="safetensors (pip install safetensors) writes the file")
    tensors = {"w": random_array(rng, (3, 4)), "b": random_array(rng, (5,), np.int64, low=-9, high=9),
               "h": random_array(rng, (2, 2), np.float16)}
    path = str(tmp_path / "m.safetensors")
    st.save_file(tensors, path)
    for loaded in (kn.load_safetensors(path), kn.load(path)):
        assert sorted(loaded) == sorted(tensors)
        for name, ref in tensors.items():
            assert_close(loaded[name], ref)
    cast = kn.load_safetensors(path, kn.float32)
    assert all(v.dtype == kn.float32 for v in cast.values())


def test_the_module_uses_the_shared_cpp_runtime():
    # A private copy of libstdc++ inside the module crashes the first formatted error message in
    # a process that also has the shared runtime (import torch first); the build links the shared
    # one. The copy shows as libstdc++'s own internals among the module's exported symbols.
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) is not installed")
    symbols = subprocess.run(["nm", "-D", "--defined-only", kn._core.__file__], capture_output=True, text=True,
                             check=True).stdout
    own = [s for s in ("_ZNSt6chrono3_V212steady_clock3nowEv", "_ZNSt6locale7classicEv", "__cxa_throw")
           if f" {s}\n" in symbols]
    assert not own, f"kiln._core carries its own C++ runtime: {own}"
