"""Fixtures: a fresh random generator per test (its seed is printed, so a failure can be replayed with
KILN_TEST_SEED=<seed>) and the devices to run on (the GPU one skips, visibly, without a GPU or
a CUDA build)."""
import os

import numpy as np
import pytest

import kiln as kn


@pytest.fixture
def rng():
    seed = int(os.environ.get("KILN_TEST_SEED", int.from_bytes(os.urandom(4), "little")))
    print(f"KILN_TEST_SEED={seed}")
    return np.random.default_rng(seed)


@pytest.fixture(params=["cpu", "gpu"])
def device(request):
    if request.param == "gpu" and not kn.built_with_cuda():
        pytest.skip("this kiln package is CPU-only (KILN_CUDA=ON pip install ./python builds the GPU backend)")
    if request.param == "gpu" and not kn.gpu_available():
        pytest.skip("no GPU present")
    return kn.cpu if request.param == "cpu" else kn.gpu


@pytest.fixture
def cpu_default():
    """The CPU as the default device for one test, for what only host memory can do (NumPy's
    DLPack import, zero-copy views); the default device comes back after it."""
    previous = kn.default_device()
    kn.set_default_device(kn.cpu)
    yield
    kn.set_default_device(previous)
