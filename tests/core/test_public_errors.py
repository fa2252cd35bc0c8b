"""Every error class a user can meet is importable from the package top level."""

from __future__ import annotations

import inspect

import deriva_ml
from deriva_ml.core import errors


def test_every_error_class_is_exported_at_top_level() -> None:
    classes = {
        name
        for name, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.DerivaMLException) and obj.__module__ == errors.__name__
    }
    missing = sorted(n for n in classes if getattr(deriva_ml, n, None) is not getattr(errors, n))
    assert not missing, f"not exported from deriva_ml: {missing}"
    assert classes <= set(deriva_ml.__all__)
