"""Find a model's sub-module by its ``named_modules()`` name, with close-match hints.

The one module lookup of cortexsim: recording, the adapters, the analyses and
the Brain-Score bridge all resolve layer names here, so a misspelt name gives
the same :class:`~cortexsim.errors.LayerNotFoundError` (with the closest valid
names) wherever it is typed.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence

from torch import nn

from .errors import LayerNotFoundError

__all__ = ["close_matches", "find_module", "module_names", "resolve_module"]

_LISTED = 12  # names listed when nothing is close


def module_names(model: nn.Module, kind: type | tuple[type, ...] | None = None) -> list[str]:
    """``named_modules()`` names of ``model`` (the root ``""`` left out), optionally only modules of ``kind``."""
    return [n for n, m in model.named_modules() if n and (kind is None or isinstance(m, kind))]


def close_matches(name: str, choices: Sequence[str], n: int = 5) -> list[str]:
    """Up to ``n`` entries of ``choices`` closest to ``name`` (difflib ratio ≥ 0.5), best first."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)


def _spellings(name: str, prefixes: Sequence[str]) -> list[str]:
    """``name`` and its variants with each prefix removed (if present) or added."""
    out = [name]
    for p in prefixes:
        out.append(name[len(p):] if name.startswith(p) else p + name)
    return list(dict.fromkeys(out))


def resolve_module(
    model: nn.Module,
    name: str,
    *,
    prefixes: Sequence[str] = (),
    kind: type | tuple[type, ...] | None = None,
) -> tuple[str, nn.Module]:
    """The canonical name and the sub-module of ``model`` called ``name``.

    Parameters
    ----------
    model : nn.Module
    name : str
        A ``model.named_modules()`` name, e.g. ``"layer4.1"``.
    prefixes : sequence of str
        Accepted alternative spellings: for each prefix ``p``, ``name`` with ``p``
        removed (when it starts with it) or added, e.g. ``("net.",)`` lets
        ``"net.layer4.1"`` and ``"layer4.1"`` find the same module of a wrapper.
    kind : type or tuple of types, optional
        The module must be an instance of this (e.g. ``nn.Conv2d``).

    Returns
    -------
    (str, nn.Module)
        The name as spelt in ``model.named_modules()`` and the module.

    Raises
    ------
    LayerNotFoundError
        No such module (the message lists the closest names, or some valid ones),
        or the module is not a ``kind``.
    """
    if not isinstance(name, str):
        raise LayerNotFoundError(f"module names are strings (model.named_modules() names); got {name!r}.")
    modules = dict(model.named_modules())
    for candidate in _spellings(name, prefixes):
        if candidate and candidate in modules:
            module = modules[candidate]
            if kind is not None and not isinstance(module, kind):
                valid = module_names(model, kind)
                raise LayerNotFoundError(
                    f"module {name!r} of {type(model).__name__} is a {type(module).__name__}; a {_kind_name(kind)} "
                    f"is needed here. {_kind_name(kind)} modules: {', '.join(valid[:_LISTED]) or 'none'}"
                    f"{', ...' if len(valid) > _LISTED else ''}."
                )
            return candidate, module
    valid = module_names(model, kind)
    close = close_matches(name, valid) or close_matches(name, module_names(model))
    if close:
        hint = f" Close matches: {', '.join(close)}."
    else:
        shown = ", ".join(valid[:_LISTED]) or "none"
        hint = f" Valid names{f' ({_kind_name(kind)})' if kind else ''}: {shown}{', ...' if len(valid) > _LISTED else ''}."
    raise LayerNotFoundError(
        f"model {type(model).__name__} has no module {name!r}.{hint} "
        f"List valid names with [n for n, _ in model.named_modules()]."
    )


def find_module(
    model: nn.Module,
    name: str,
    *,
    prefixes: Sequence[str] = (),
    kind: type | tuple[type, ...] | None = None,
) -> nn.Module:
    """``model``'s sub-module called ``name``; see :func:`resolve_module` for the options and errors.

    >>> find_module(torchvision.models.resnet18(), "layer4.2")  # doctest: +SKIP
    LayerNotFoundError: model ResNet has no module 'layer4.2'. Close matches: layer4.1, layer4.0, ...
    """
    return resolve_module(model, name, prefixes=prefixes, kind=kind)[1]
