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


LOADERS = {
    "safetensors": (lambda p: kn.load_safetensors(p), ".safetensors"),
    "gguf": (lambda p: kn.load_gguf(p), ".gguf"),
    "torch_checkpoint": (lambda p: kn.load_torch_checkpoint(p), ".pth"),
    "image": (lambda p: kn.vision.load_image(p), ".png"),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_file_error_classes(tmp_path, loader):
    """A file that cannot be read raises the OSError subclass of its cause, with the C++ message."""
    load, ext = LOADERS[loader]
    missing = str(tmp_path / f"missing{ext}")
    with pytest.raises(FileNotFoundError, match=rf"^\[{loader}\] cannot open '{missing}': No such file"):
        load(missing)
    folder = tmp_path / f"folder{ext}"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"^\[{loader}\] '{folder}' is not a regular file"):
        load(str(folder))
    garbage = tmp_path / f"garbage{ext}"
    garbage.write_bytes(b"\x00" * 7)
    with pytest.raises(ValueError, match=rf"^\[{loader}\] '{garbage}'"):
        load(str(garbage))
    with pytest.raises(NotADirectoryError, match=rf"^\[{loader}\] cannot open"):
        load(str(garbage / "below"))  # a path through a file, as if it were a folder


def test_missing_gpu_is_a_value_error():
    if kn.gpu_available():
        pytest.skip("a GPU is present: there is no missing device to ask for")
    with pytest.raises(ValueError, match="no GPU"):
        kn.set_default_device(kn.gpu)
    assert kn.default_device() == kn.cpu
