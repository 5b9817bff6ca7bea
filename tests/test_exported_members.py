"""The public names: ``__all__`` is sorted, every name exists, and every exported class
and function documents itself (its own docstring, not one inherited or generated)."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

import pinwarden
import pinwarden.testing

MODULES = [pinwarden, pinwarden.testing]


def _own_doc(obj: object) -> str | None:
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__")
        # dataclasses invent "Name(field, ...)" when a class has no docstring.
        if isinstance(doc, str) and doc.startswith(f"{obj.__name__}("):
            return None
        return doc if isinstance(doc, str) else None
    return inspect.getdoc(obj)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted_and_unique(module: ModuleType) -> None:
    names = list(module.__all__)
    assert names == sorted(names)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_name_exists(module: ModuleType) -> None:
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(module.__all__)


def _documentable(module: ModuleType) -> list[str]:
    """The exported classes and functions (type aliases and ``__version__`` have no
    docstring of their own)."""
    return [
        name
        for name in module.__all__
        if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))
    ]


def test_most_exports_are_classes_and_functions() -> None:
    assert len(_documentable(pinwarden)) == len(pinwarden.__all__) - 1  # all but __version__
    assert set(pinwarden.testing.__all__) - set(_documentable(pinwarden.testing)) == {
        "KeyType",
        "PrivateKey",
    }


@pytest.mark.parametrize(
    ("module", "name"),
    [(m, n) for m in MODULES for n in _documentable(m)],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_classes_and_functions_have_docstrings(module: ModuleType, name: str) -> None:
    doc = _own_doc(getattr(module, name))
    assert doc is not None and doc.strip(), f"{module.__name__}.{name} has no docstring"


def test_the_helper_sees_through_generated_docstrings() -> None:
    from dataclasses import dataclass

    @dataclass
    class Undocumented:
        x: int

    class Inherits(pinwarden.PinwardenError):
        pass

    assert Undocumented.__doc__  # dataclasses generate one...
    assert _own_doc(Undocumented) is None  # ...which does not count
    assert _own_doc(Inherits) is None
    assert _own_doc(pinwarden.Pin)


def test_version_is_a_string() -> None:
    assert isinstance(pinwarden.__version__, str)
    assert pinwarden.__version__
