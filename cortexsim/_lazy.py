"""Lazy package attributes, so ``import cortexsim.<package>`` (and ``cortexsim --help``) stays fast.

A package lists ``name -> submodule`` and gets a module ``__getattr__`` that imports the
submodule on first use (PEP 562). Where a function shadows its submodule (``analysis.smoothness``
is the function), the package's module class keeps the function bound when the import
system binds the submodule of that name.
"""
from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_package(package: str, attrs: Mapping[str, str], shadowed: Iterable[str] = ()
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``attrs`` live in submodules.

    Parameters
    ----------
    package : the package's ``__name__``
    attrs : attribute name -> submodule name (relative, without the leading dot)
    shadowed : further names that are both a function and a submodule (a name that lives in the
        submodule of the same name, as ``smoothness`` in ``smoothness``, is one already); the
        function wins.
    """
    module = sys.modules[package]
    keep = frozenset(shadowed) | {name for name, sub in attrs.items() if name == sub}

    if keep:
        class _Package(type(module)):  # type: ignore[misc]
            def __setattr__(self, name: str, value: Any) -> None:
                if name in keep and isinstance(value, types.ModuleType):
                    return  # importing the submodule must not replace the function of that name
                super().__setattr__(name, value)

        module.__class__ = _Package

    def __getattr__(name: str) -> Any:
        sub = attrs.get(name)
        if sub is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{sub}"), name)
        vars(module)[name] = value  # bypasses the class hook: this is the function
        return value

    def __dir__() -> list[str]:
        return sorted(set(attrs) | {k for k in vars(module) if not k.startswith("_")})

    return __getattr__, __dir__
