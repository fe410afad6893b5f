"""Construction of arrays from Python values and NumPy, conversion back, and array metadata."""
import copy

import numpy as np
import pytest

import kiln as kn
from utils import NP_DTYPES, assert_close, random_array

ALL_NP = [np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64, np.float16,
          np.float32, np.float64, np.complex64]


@pytest.mark.parametrize("value", [True, False, 0, -7, 2**40, 3.25, -0.0, 1.5 - 2j])
def test_scalars_infer_numpy_dtypes(value):
    a = kn.array(value)
    expected = np.array(value)
    if expected.dtype == np.complex128:
        expected = expected.astype(np.complex64)  # kiln has no complex128
    assert a.shape == () and a.ndim == 0 and a.size == 1
    assert a.dtype == kn.dtype_from_name(str(expected.dtype) if expected.dtype != np.bool_ else "bool")
    assert a.item() == value and type(a.item()) is type(value)


def test_nested_lists(rng):
    shape = tuple(rng.integers(1, 4, size=3))
    for dtype in (np.int64, np.float64, np.bool_):
        ref = random_array(rng, shape, dtype)
        a = kn.array(ref.tolist())
        assert a.shape == shape
        assert_close(a, ref, dtype=kn.dtype_from_name("bool" if dtype == np.bool_ else np.dtype(dtype).name))
    mixed = [[1, 2.5], [True, 4]]
    assert_close(kn.array(mixed), np.array(mixed), dtype=kn.float64)
    assert_close(kn.array(((1, 2), (3, 4))), np.array([[1, 2], [3, 4]]), dtype=kn.int64)
    assert kn.array([]).shape == (0,) and kn.array([]).dtype == kn.float64
    assert kn.array([[], []]).shape == (2, 0)
    big = kn.array([2**64 - 1, 5])
    assert big.dtype == kn.uint64 and big.tolist() == [2**64 - 1, 5]


def test_lists_of_arrays_stack(rng):
    rows = [random_array(rng, (3,)) for _ in range(4)]
    assert_close(kn.array([kn.array(r) for r in rows]), np.stack(rows), dtype=kn.float32)
    assert_close(kn.array(rows), np.stack(rows), dtype=kn.float32)
    assert_close(kn.array([np.float32(1.5), np.float32(2)]), np.array([1.5, 2], np.float32), dtype=kn.float32)
    assert_close(kn.array([rows[0].tolist(), kn.array(rows[1])]), np.stack(rows[:2]))


def test_ragged_lists_are_value_errors():
    with pytest.raises(ValueError, match="inhomogeneous"):
        kn.array([[1, 2], [3]])
    with pytest.raises(ValueError, match="depths"):
        kn.array([[1, 2], 3])


def test_dtype_argument(rng):
    ref = random_array(rng, (3, 4), np.float64)
    for dtype in (kn.float32, kn.float16, kn.bfloat16, kn.int32, kn.bool_):
        a = kn.array(ref.tolist(), dtype=dtype)
        assert a.dtype == dtype
    assert_close(kn.array(ref, dtype=kn.float32), ref.astype(np.float32), dtype=kn.float32)
    assert_close(kn.array(3, kn.float16), np.array(3, np.float16), dtype=kn.float16)


@pytest.mark.parametrize("np_dtype", ALL_NP)
def test_numpy_round_trip_every_dtype(rng, np_dtype):
    ref = random_array(rng, (2, 3, 4), np_dtype, low=-50, high=50)
    a = kn.array(ref)
    assert a.dtype == [k for k, v in NP_DTYPES.items() if v == np_dtype][0]
    back = np.array(a)
    assert back.dtype == np_dtype and back.shape == ref.shape
    np.testing.assert_array_equal(back, ref)
    np.testing.assert_array_equal(np.asarray(memoryview(a)), ref)
    assert a.tolist() == ref.tolist()


def test_numpy_inputs_of_any_layout(rng):
    ref = random_array(rng, (5, 6), np.float32)
    for view in (ref.T, ref[::2, ::-1], ref[1:4, 2], np.broadcast_to(ref[0], (3, 6)), ref.astype(np.complex128)):
        expected = view.astype(np.complex64) if view.dtype == np.complex128 else view
        assert_close(kn.array(view), expected)
    assert_close(kn.array(np.float32(2.5)), np.float32(2.5), dtype=kn.float32)
    assert_close(kn.array(np.int16(-3)), np.int16(-3), dtype=kn.int16)


def test_views_export_without_copy_and_with_strides(rng):
    ref = random_array(rng, (4, 5), np.float32)
    a = kn.array(ref)
    for view, expected in ((a.T, ref.T), (kn.flip(a, 1), ref[:, ::-1]), (a[1:, ::2], ref[1:, ::2]),
                           (kn.broadcast_to(a[0], (3, 5)), np.broadcast_to(ref[0], (3, 5)))):
        got = np.asarray(view)
        np.testing.assert_array_equal(got, expected)
        assert not got.flags.writeable
    # np.asarray of an evaluated row-contiguous array shares its memory.
    assert np.asarray(a).__array_interface__["data"][0] == np.asarray(a).__array_interface__["data"][0]
    m = memoryview(a.T)
    assert m.format == "f" and m.shape == (5, 4) and m.readonly


def test_bfloat16_exports_as_float32(rng):
    ref = random_array(rng, (3, 3), np.float32)
    a = kn.array(ref).astype(kn.bfloat16)
    out = np.array(a)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-2)
    with pytest.raises(BufferError):
        memoryview(a)
    with pytest.raises(ValueError, match="copy=False"):
        a.__array__(copy=False)


def test_array_protocol_dtype_and_copy(rng):
    ref = random_array(rng, (3,), np.int32)
    a = kn.array(ref)
    out = a.__array__(np.float64)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, ref)
    c = a.__array__(copy=True)
    assert c.flags.writeable


def test_dlpack(rng, cpu_default):
    ref = random_array(rng, (3, 4), np.float32)
    out = np.from_dlpack(kn.array(ref)[:, 1:])
    np.testing.assert_array_equal(out, ref[:, 1:])
    assert_close(kn.array(np.from_dlpack(ref)), ref)


def test_metadata_and_conversions(rng):
    ref = random_array(rng, (2, 3, 4), np.float32)
    a = kn.array(ref)
    assert a.shape == (2, 3, 4) and a.ndim == 3 and a.size == 24
    assert a.itemsize == 4 and a.nbytes == 96 and a.dtype == kn.float32
    assert len(a) == 2
    assert [r.shape for r in a] == [(3, 4), (3, 4)]
    assert_close(list(a)[1], ref[1])
    assert_close(a.T, ref.T)
    assert a.device == kn.default_device()
    assert float(a[0, 0, 0]) == pytest.approx(float(ref[0, 0, 0]))
    assert int(kn.array(7)) == 7 and bool(kn.array([True])) is True
    assert [10, 20, 30][kn.array(1, kn.int32)] == 20
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a)
    with pytest.raises(ValueError, match="one element"):
        a.item()
    with pytest.raises(TypeError):
        len(kn.array(1))
    assert copy.copy(a) is not None and copy.deepcopy(a).shape == a.shape


def test_astype(rng):
    ref = random_array(rng, (4, 5), np.float32, low=-100, high=100)
    a = kn.array(ref)
    for dtype in (kn.int32, kn.int8, kn.uint8, kn.float16, kn.float64, kn.bool_, kn.complex64):
        np_dtype = NP_DTYPES[dtype]
        src = ref if dtype != kn.uint8 else np.abs(ref)  # float -> unsigned of negatives is undefined
        assert_close(kn.array(src).astype(dtype), src.astype(np_dtype), dtype=dtype, rtol=1e-3)
    assert_close(kn.astype(a, kn.float64), ref.astype(np.float64), dtype=kn.float64)


def test_repr(rng):
    a = kn.array([[1.5, 2.0], [3.0, -4.25]])
    r = repr(a)
    assert r.startswith("array([[1.5, 2") and r.endswith("dtype=float64)")
    assert "-4.25" in r
    assert repr(kn.array(True)) == "array(true, dtype=bool)"
    assert repr(kn.float32) == "kiln.float32" and str(kn.int8) == "int8"
    assert repr(kn.cpu) == "Device(cpu, 0)"


def test_unconvertible_values_are_type_errors():
    with pytest.raises(TypeError, match="cannot convert"):
        kn.array("text")
    with pytest.raises(TypeError):
        kn.array(object())
    with pytest.raises(TypeError):
        kn.add(kn.array(1), "x")
