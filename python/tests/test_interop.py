"""Memory shared with other libraries: kn.asarray and kn.from_dlpack view NumPy arrays, PyTorch tensors and
buffer / __array_interface__ providers without a copy where the layout allows (copying otherwise), keep the owner
alive and never write to it; kn.array copies; __dlpack__ hands kiln's memory out (host or GPU)."""
import array as pyarray
import gc
import time
import weakref

import numpy as np
import pytest

import kiln as kn

from utils import assert_close, random_array

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def gpu_with_torch():
    if not kn.built_with_cuda():
        pytest.skip("this kiln package is CPU-only (KILN_CUDA=ON pip install ./python builds the GPU backend)")
    if not kn.gpu_available():
        pytest.skip("no GPU present")
    if torch is None or not torch.cuda.is_available():
        pytest.skip("PyTorch with CUDA is not installed")


def wait_until(predicate, seconds=5.0):
    """Whether predicate() comes true within seconds (a release deferred to the main thread's next chance)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.001)
    return predicate()


def host_pointer(a):
    """The address of a kiln array's host data (through the buffer protocol, which does not copy)."""
    return np.asarray(memoryview(a)).__array_interface__["data"][0]


SHARED_DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64,
                 np.float16, np.float32, np.float64, np.complex64]


@pytest.mark.parametrize("dtype", SHARED_DTYPES)
def test_asarray_shares_numpy_memory(rng, dtype):
    x = random_array(rng, (3, 5), dtype)
    original = x.copy()
    a = kn.asarray(x)
    b = kn.array(x)
    assert_close(a, x)
    assert host_pointer(a) == x.ctypes.data  # the same memory, no copy
    assert host_pointer(b) != x.ctypes.data
    # Reading the array reads x's memory as it is now (np.asarray's behavior)...
    fresh = random_array(rng, (3, 5), dtype)
    x[...] = fresh
    assert_close(a, fresh)
    # ...while kn.array made a copy when it was called.
    np.testing.assert_array_equal(np.array(b), original)


def test_lazy_ops_read_at_evaluation(rng):
    """A kiln op reads shared memory when it runs: changes made before its evaluation are seen, changes after are
    not (the result is a new array of kiln's)."""
    x = random_array(rng, (4, 6))
    a = kn.asarray(x)
    y = a * 2.0 + 1.0  # a graph: nothing has run
    x[1, 2] = 50.0
    expected = x * 2 + 1
    kn.eval(y)
    assert_close(y, expected)
    x[...] = 0.0
    assert_close(y, expected)  # y owns its result
    assert_close(a, np.zeros_like(x))  # a still views x


@pytest.mark.parametrize("op", ["add", "multiply", "matmul", "sum", "exp", "maximum", "take"])
def test_ops_on_shared_arrays_match_numpy(rng, op):
    x = random_array(rng, (16, 16))
    y = random_array(rng, (16, 16))
    a, b = kn.asarray(x), kn.asarray(y)
    if op == "add":
        got, ref = a + b, x + y
    elif op == "multiply":
        got, ref = kn.multiply(a, b), x * y
    elif op == "matmul":
        got, ref = a @ b, x.astype(np.float64) @ y.astype(np.float64)
    elif op == "sum":
        got, ref = kn.sum(a, axis=1), x.astype(np.float64).sum(axis=1)
    elif op == "exp":
        got, ref = kn.exp(a), np.exp(x.astype(np.float64))
    elif op == "maximum":
        got, ref = kn.maximum(a, b), np.maximum(x, y)
    else:
        idx = rng.integers(0, 16, size=7)
        got, ref = kn.take(a, kn.asarray(idx), axis=0), x[idx]
    assert_close(got, ref, rtol=1e-5, atol=1e-4)


def test_asarray_keeps_the_owner_alive(rng):
    x = random_array(rng, (64, 64))
    expected = x.copy()
    owner = weakref.ref(x)
    a = kn.asarray(x)
    del x
    gc.collect()
    assert owner() is not None, "the NumPy array died while a kiln array viewed it"
    _ = [np.ones(64 * 64, np.float32) for _ in range(8)]  # memory that would reuse a freed block
    assert_close(a, expected)
    assert_close(kn.sum(a), expected.astype(np.float64).sum(), rtol=1e-5, atol=1e-3)
    view = a[3:9, ::2]
    del a
    gc.collect()
    assert owner() is not None, "a view still reads the memory"
    assert_close(view, expected[3:9, ::2])
    del view
    assert owner() is None, "the owner was not released with the last kiln array"


def test_owner_released_from_evaluation(rng):
    """The last kiln reference can go on a thread without the GIL (inside kn.eval, on async_eval's worker): the
    owner is released later on the main thread, not leaked and not touched without the GIL."""
    x = random_array(rng, (32, 32))
    expected = x * 3
    owner = weakref.ref(x)
    y = kn.asarray(x) * 3.0  # only y's graph holds the shared array
    del x
    kn.eval(y)  # the shared array dies here, with the GIL released
    assert wait_until(lambda: owner() is None), "the owner was never released"
    assert_close(y, expected)

    z = random_array(rng, (32, 32))
    expected = z + 1
    owner = weakref.ref(z)
    w = kn.asarray(z) + 1.0
    del z
    kn.async_eval(w)
    kn.synchronize()
    assert wait_until(lambda: owner() is None), "the owner was never released after async_eval"
    assert_close(w, expected)


def test_no_deadlock_when_the_worker_lets_go(rng):
    """The evaluation worker can drop the last reference to shared memory while the main thread, holding the GIL,
    waits for that evaluation (item() evaluates without releasing the GIL): the release must not wait for the
    GIL."""
    for _ in range(20):
        x = random_array(rng, (64, 64))
        x64 = x.astype(np.float64)
        expected, scale = (x64 @ x64).sum(), (np.abs(x64) @ np.abs(x64)).sum()
        y = kn.sum(kn.asarray(x) @ kn.asarray(x))
        del x
        kn.async_eval(y)
        assert abs(y.item() - expected) <= 1e-5 * scale


def test_writes_never_reach_the_owner(rng):
    x = random_array(rng, (8, 8))
    original = x.copy()
    a = kn.asarray(x)
    a[2:4, 1] = 7.0  # rebinds a to an updated array; the shared memory must not be the one updated in place
    kn.eval(a)
    np.testing.assert_array_equal(x, original)
    expected = original.copy()
    expected[2:4, 1] = 7.0
    assert_close(a, expected)
    # A read-only NumPy array can be shared too: kiln only reads.
    r = random_array(rng, (5,))
    r.flags.writeable = False
    assert_close(kn.asarray(r) * 2, r * 2)
    assert host_pointer(kn.asarray(r)) == r.ctypes.data


def test_falls_back_to_a_copy(rng):
    x = random_array(rng, (6, 8))
    buf = bytearray(4 * 20 + 1)
    misaligned = np.frombuffer(buf, dtype=np.float32, count=20, offset=1)
    misaligned[:] = random_array(rng, (20,))
    assert not misaligned.flags.aligned
    cases = {
        "strided": x[:, ::2],
        "transposed": x.T,
        "misaligned": misaligned,
        "complex128": random_array(rng, (3, 4), np.complex128),
        "reversed": x[::-1],
    }
    for name, src in cases.items():
        a = kn.asarray(src)
        assert_close(a, src.astype(np.complex64) if name == "complex128" else src, rtol=1e-6)
        before = np.array(a)
        if name == "misaligned":
            src[:] = 0  # the copy does not see it
        else:
            src[...] = 0
        np.testing.assert_array_equal(np.array(a), before, err_msg=name)
        src[...] = before if name != "complex128" else before.astype(np.complex128)
        with pytest.raises(ValueError, match="copy=False"):
            kn.asarray(src, copy=False)


def test_slices_share_from_unaligned_starts(rng):
    """A slice that starts off a 16-byte boundary (but on its element size) is still shared."""
    x = random_array(rng, (37,), np.float32)
    for start in (1, 2, 3, 5):
        a = kn.asarray(x[start:])
        assert host_pointer(a) == x[start:].ctypes.data
        assert_close(kn.exp(a), np.exp(x[start:].astype(np.float64)), rtol=1e-5)
    i16 = random_array(rng, (40,), np.int16)
    assert_close(kn.asarray(i16[3:]) + 1, i16[3:] + 1)


def test_copy_and_dtype_arguments(rng):
    x = random_array(rng, (4, 4))
    c = kn.asarray(x, copy=True)
    assert host_pointer(c) != x.ctypes.data
    s = kn.asarray(x, copy=False)
    assert host_pointer(s) == x.ctypes.data
    expected = x.astype(np.float16)
    d = kn.asarray(x, dtype=kn.float16)  # a conversion is a copy made now
    x[...] = 0
    assert_close(d, expected, dtype=kn.float16, rtol=0, atol=0)
    with pytest.raises(ValueError, match="copy=False"):
        kn.asarray(x, dtype=kn.float64, copy=False)
    assert_close(kn.asarray(x, dtype=kn.float32), x)  # the same dtype: shared
    # Python values have no memory to share.
    assert_close(kn.asarray([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]))
    assert_close(kn.asarray(2.5, dtype=kn.float32), np.float32(2.5))
    with pytest.raises(ValueError, match="copy=False"):
        kn.asarray([1.0, 2.0], copy=False)
    # A kiln array is itself.
    k = kn.random.normal((3,))
    assert_close(kn.asarray(k), np.array(k))
    assert_close(kn.asarray(k, dtype=kn.float64), np.array(k).astype(np.float64), dtype=kn.float64)
    with pytest.raises(TypeError, match="asarray"):
        kn.asarray("not an array")


def test_shared_memory_is_not_counted(rng):
    kn.synchronize()
    x = np.ones((1 << 20,), np.float32)  # 4 MiB
    before = kn.get_active_memory()
    a = kn.asarray(x)
    assert kn.get_active_memory() < before + 4096
    b = kn.array(x)
    assert kn.get_active_memory() >= before + x.nbytes
    del a, b


def test_buffer_protocol_and_array_interface(rng):
    # The buffer protocol: array.array and memoryview.
    values = random_array(rng, (9,), np.float64).tolist()
    arr = pyarray.array("d", values)
    a = kn.asarray(arr)
    arr[4] = 123.0
    assert a.tolist()[4] == 123.0
    m = memoryview(bytearray(np.arange(12, dtype=np.int32).tobytes())).cast("i", (3, 4))
    assert_close(kn.asarray(m), np.arange(12).reshape(3, 4))

    # __array_interface__ alone: shared, and the providing object is kept alive.
    class Interface:
        def __init__(self, data):
            self.data = data

        @property
        def __array_interface__(self):
            return self.data.__array_interface__

    x = random_array(rng, (5, 3), np.int32, -100, 100)
    provider = Interface(x)
    alive = weakref.ref(provider)
    a = kn.asarray(provider)
    del provider
    gc.collect()
    assert alive() is not None
    assert host_pointer(a) == x.ctypes.data
    x[0, 0] = 99
    assert a.tolist()[0][0] == 99
    strided = Interface(x[:, ::2])
    assert_close(kn.asarray(strided), x[:, ::2])  # copied, through the interface's strides
    del a
    assert alive() is None


def test_from_dlpack_numpy(rng):
    x = random_array(rng, (7, 3))
    a = kn.from_dlpack(x)
    assert host_pointer(a) == x.ctypes.data
    assert_close(a, x)
    assert_close(kn.from_dlpack(x, copy=True) - a, np.zeros_like(x))
    assert host_pointer(kn.from_dlpack(x, copy=True)) != x.ctypes.data
    with pytest.raises(TypeError, match="__dlpack__"):
        kn.from_dlpack([1, 2, 3])


@needs_torch
def test_torch_cpu_tensors_are_shared(rng):
    t = torch.from_numpy(random_array(rng, (6, 5)))
    expected = t.clone()
    owner = weakref.ref(t)
    a = kn.from_dlpack(t)
    b = kn.asarray(t)
    assert host_pointer(a) == t.data_ptr() == host_pointer(b)
    t.mul_(2)  # in place, seen through the shared memory
    expected *= 2
    assert_close(a, expected.numpy())
    assert_close(kn.tanh(a) @ kn.transpose(b), (torch.tanh(expected.double()) @ expected.double().T).numpy(),
                 rtol=1e-5, atol=1e-5)
    del t, b
    gc.collect()
    assert owner() is not None
    del a
    assert wait_until(lambda: owner() is None)
    # kn.array copies.
    u = torch.arange(10, dtype=torch.int64)
    c = kn.array(u)
    u.zero_()
    assert c.tolist() == list(range(10))


def test_dlpack_export_to_numpy(rng, cpu_default):
    x = random_array(rng, (5, 6))
    a = kn.array(x)
    assert a.__dlpack_device__() == (1, 0)
    view = np.from_dlpack(a)  # NumPy asks for a versioned capsule: read-only
    assert view.ctypes.data == host_pointer(a)
    assert not view.flags.writeable
    assert_close(a, view)
    assert "dltensor_versioned" in repr(a.__dlpack__(max_version=(1, 0)))
    assert "dltensor" in repr(a.__dlpack__())
    copied = np.from_dlpack(a, copy=True)
    assert copied.ctypes.data != host_pointer(a)
    assert_close(a, copied)
    assert_close(kn.array(np.from_dlpack(a[:, 1:])), x[:, 1:])
    with pytest.raises(BufferError, match="dl_device"):
        a.__dlpack__(dl_device=(2, 0))
    assert "dltensor" in repr(a.__dlpack__(dl_device=(1, 0), stream=None))


@needs_torch
def test_dlpack_export_to_torch_cpu(rng, cpu_default):
    x = random_array(rng, (4, 9))
    a = kn.exp(kn.array(x))
    t = torch.from_dlpack(a)
    assert t.data_ptr() == host_pointer(a)
    np.testing.assert_allclose(t.numpy(), np.exp(x.astype(np.float64)), rtol=1e-6)
    del a
    gc.collect()
    np.testing.assert_allclose(t.numpy(), np.exp(x.astype(np.float64)), rtol=1e-6)  # t keeps kiln's memory


@pytest.mark.skipif(kn.gpu_available(), reason="needs a kiln without a usable GPU")
def test_cuda_data_without_a_gpu_is_refused():
    class OnCuda:
        def __dlpack_device__(self):
            return (2, 0)

        def __dlpack__(self, **kwargs):
            raise AssertionError("kiln asked for CUDA memory it cannot read")

    for fn in (kn.asarray, kn.from_dlpack, kn.array):
        with pytest.raises(RuntimeError, match="CUDA device 0"):
            fn(OnCuda())


# ---- GPU: DLPack both ways with PyTorch (run where kiln has CUDA and a GPU, skipped otherwise) ----


def test_gpu_torch_tensor_shared(rng):
    gpu_with_torch()
    x = random_array(rng, (256, 128))
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    t = torch.from_numpy(x).cuda()
    held = torch.cuda.memory_allocated()
    a = kn.asarray(t)
    assert a.device == kn.Device(kn.DeviceType.gpu, t.device.index)
    assert a.__dlpack_device__() == (2, t.device.index)
    back = torch.from_dlpack(a)
    assert back.data_ptr() == t.data_ptr(), "kn.asarray copied a CUDA tensor"
    assert_close(kn.exp(a), np.exp(x.astype(np.float64)), rtol=1e-5)
    assert_close(a @ kn.transpose(a), x.astype(np.float64) @ x.astype(np.float64).T, rtol=1e-4, atol=1e-3)
    del t, back
    gc.collect()
    assert torch.cuda.memory_allocated() == held, "the tensor's memory went back to PyTorch while kiln reads it"
    reuse = [torch.full((256, 128), 7.0, device="cuda") for _ in range(4)]  # would take a freed block
    assert_close(a, x)
    del reuse, a
    kn.synchronize()
    assert wait_until(lambda: torch.cuda.memory_allocated() == before), "kiln never let go of the tensor"


def test_gpu_import_waits_for_the_producers_stream(rng):
    gpu_with_torch()
    n = 2048
    x = torch.from_numpy(random_array(rng, (n, n))).cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        y = x
        for _ in range(8):  # long enough that a reader that does not wait sees it unfinished
            y = torch.tanh(y @ x) * 0.5
        a = kn.from_dlpack(y)  # torch's current stream is `side`: kiln's stream must wait for it
        s = kn.sum(a, axis=1)
        ref = y.double().sum(dim=1)
    side.synchronize()
    assert_close(s, ref.cpu().numpy(), rtol=1e-4, atol=1e-3)


def test_gpu_export_to_torch(rng):
    gpu_with_torch()
    x = random_array(rng, (512, 64))
    a = kn.tanh(kn.multiply(kn.array(x), 2.0, stream=kn.gpu), stream=kn.gpu)
    ref = np.tanh(2 * x.astype(np.float64))
    t = torch.from_dlpack(a)  # torch's current stream waits for kiln's work
    assert t.is_cuda
    assert torch.from_dlpack(a).data_ptr() == t.data_ptr(), "two exports of one array gave different memory"
    np.testing.assert_allclose((t * 1).cpu().numpy(), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.from_dlpack(a, device="cpu"), ref, rtol=1e-5, atol=1e-6)  # dl_device=(1, 0)
    del a
    gc.collect()
    junk = [kn.ones((512, 64), stream=kn.gpu) * 3 for _ in range(4)]  # would reuse freed memory
    kn.eval(junk)
    np.testing.assert_allclose(t.cpu().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_gpu_copies_and_layouts(rng):
    gpu_with_torch()
    x = random_array(rng, (64, 48))
    t = torch.from_numpy(x).cuda()
    c = kn.array(t)  # always a copy, on the GPU
    assert torch.from_dlpack(c).data_ptr() != t.data_ptr()
    tt = t.T  # not C-contiguous: copied on the GPU
    a = kn.asarray(tt)
    assert_close(a, x.T)
    with pytest.raises(ValueError, match="copy=False"):
        kn.asarray(tt, copy=False)
    assert_close(kn.asarray(t[:, 5:], dtype=kn.float16), x[:, 5:].astype(np.float16), rtol=1e-3, atol=1e-3)
    t.zero_()
    torch.cuda.synchronize()
    assert_close(c, x)
    np.testing.assert_array_equal(np.from_dlpack(a, device="cpu"), x.T)  # to the host through dl_device
