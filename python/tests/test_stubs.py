"""The type stubs the build generates for the extension (kiln/_core/*.pyi, nanobind's stubgen) and the py.typed
marker: they parse, cover every public name of the extension and its submodules, and give array the methods
python/kiln/__init__.py adds to it."""
import ast
import inspect
import types
from pathlib import Path

import pytest

import kiln as kn

STUBS = Path(kn._core.__file__).parent / "_core"
SUBMODULES = ["fast", "random", "text", "vision", "models"]


def stub(name=None):
    path = STUBS / ("__init__.pyi" if name is None else f"{name}.pyi")
    if not path.exists():
        pytest.skip(f"no stub at {path}: this kiln was built without its stubs")
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def top_level_names(tree):
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def test_marker_and_files():
    stub()
    assert (Path(kn.__file__).parent / "py.typed").is_file()
    for sub in SUBMODULES:
        stub(sub)


@pytest.mark.parametrize("sub", [None, *SUBMODULES])
def test_every_public_name_has_a_stub(sub):
    module = kn._core if sub is None else getattr(kn._core, sub)
    names = top_level_names(stub(sub))
    missing = [n for n in dir(module) if not n.startswith("_") and n not in names]
    assert not missing, f"{module.__name__}: no stub for {missing}"


def test_array_stub():
    cls = next(n for n in stub().body if isinstance(n, ast.ClassDef) and n.name == "array")
    methods = {f.name: f for f in cls.body if isinstance(f, ast.FunctionDef)}
    # The methods written in Python (kiln/__init__.py) are there with their parameters, self first.
    python_methods = [n for n, v in vars(kn.array).items() if isinstance(v, types.FunctionType)]
    assert {"reshape", "transpose", "sum", "var", "split"} <= set(python_methods)
    for name in python_methods:
        assert name in methods, name
        args = methods[name].args
        stubbed = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
        stubbed += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
        assert stubbed[0] == "self"
        assert sorted(stubbed) == sorted(inspect.signature(getattr(kn.array, name)).parameters), name
    assert "__buffer__" in methods and "__getitem__" in methods
    assert ast.unparse(methods["sum"].returns) == "array"


def test_array_like_and_imports():
    tree = stub()
    aliases = [n for n in tree.body if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "ArrayLike"]
    assert len(aliases) == 1 and "array" in ast.unparse(aliases[0].value)
    for sub in [None, *SUBMODULES]:
        tree = stub(sub)
        imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
        # The stubs describe the extension alone: nothing comes from the Python package above it.
        assert not [n for n in imports if n.module == "kiln"], sub
        if sub is not None and "ArrayLike" in ast.unparse(tree):
            assert any(n.module == "kiln._core" and any(a.name == "ArrayLike" for a in n.names) for n in imports), sub


def test_star_import_leaves_the_python_modules():
    # kiln.models, kiln.text and kiln.vision are Python modules wrapping the submodules of the same names.
    assert not {"models", "text", "vision"} & set(kn._core.__all__)
    assert {"array", "bool_", "conv2d", "fast", "random"} <= set(kn._core.__all__)
    for name in ("models", "text", "vision"):
        assert getattr(kn, name).__file__.endswith(f"{name}.py")
    assert callable(kn.text.generate) and callable(kn.models.load_classifier)
