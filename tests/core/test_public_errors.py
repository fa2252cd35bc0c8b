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


def test_every_keyerror_shows_its_message_unquoted() -> None:
    # KeyError's own str() quotes the message: each error that is a KeyError shows its message as written
    made = [
        errors.RIDNotFound("1-X", "Subject"),
        errors.WrongTable("1-X", "Subject", "Image"),
        errors.UnknownCatalog("c", ["a"], where="here"),
        errors.UnknownCatalog("c", None),
        errors.UnknownTable("T", ["A"]),
        errors.NotAVocabulary("T", ["V"]),
        errors.UnknownColumn("T", "C", ["A"]),
        errors.UnknownTerm("V", "t", ["a"]),
    ]
    keyerrors = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.DerivaMLException) and issubclass(obj, KeyError)
    }
    assert {type(e) for e in made} == keyerrors, "a KeyError-based error is not checked here"
    for e in made:
        assert str(e) == e.args[0] != repr(e.args[0]), (type(e).__name__, str(e))
