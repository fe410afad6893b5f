"""kiln's C++ exceptions arrive as the natural Python ones, with the C++ message."""
import os

import pytest

import kiln as kn


def test_value_error():
    with pytest.raises(ValueError, match=r"^\[reshape\] cannot reshape array of size 6 into shape \(4, 4\)"):
        kn.reshape(kn.zeros((2, 3)), (4, 4))
    with pytest.raises(ValueError, match=r"^\[concatenate\]"):
        kn.concatenate([kn.zeros((2, 3)), kn.zeros((2, 4))])


def test_type_error():
    with pytest.raises(TypeError, match=r"^\[bitwise_and\]"):
        kn.bitwise_and(kn.zeros((2,)), kn.zeros((2,)))
    with pytest.raises(TypeError, match=r"^\[random.uniform\]|uniform"):
        kn.random.uniform(shape=(2,), dtype=kn.int32)


def test_index_error():
    with pytest.raises(IndexError, match=r"^\[transpose\]|^\[swapaxes\]"):
        kn.swapaxes(kn.zeros((2, 3)), 0, 5)
    with pytest.raises(IndexError, match=r"^\[take\]"):
        kn.take(kn.zeros((3,)), kn.array([7]))


def test_file_errors(tmp_path):
    missing = str(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        kn.load_safetensors(missing)
    with pytest.raises(OSError):
        kn.load(str(tmp_path / "missing.gguf"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(os.urandom(4))
    with pytest.raises(ValueError, match=r"^\[safetensors\]"):
        kn.load_safetensors(str(bad))


def test_missing_gpu_is_a_value_error():
    if kn.gpu_available():
        pytest.skip("a GPU is present: there is no missing device to ask for")
    with pytest.raises(ValueError, match="no GPU"):
        kn.set_default_device(kn.gpu)
    assert kn.default_device() == kn.cpu
