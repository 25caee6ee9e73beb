"""The registry of analyses that :func:`cortexsim.analysis.run` and ``cortexsim analyze`` run.

An analysis is a function ``step(ctx) -> dict`` (its JSON summary) registered under a name::

    from cortexsim.analysis.registry import register_analysis

    @register_analysis("sparseness", coord="by", params=("threshold",))
    def sparseness(ctx):
        d = ctx.need("category_selectivity")            # computed once per area, shared
        ctx.keep(d)                                       # the xarray result of the report
        ctx.map("n_selective", (d > ctx.p.threshold).sum("category"))   # into units_<area>.nc
        ctx.figure("sparseness", "plot_unit_map", ctx.maps["n_selective"])  # <area>_sparseness.png
        return {"mean": float(d.mean())}

``needs`` names the results an analysis uses (other registered names); they are computed
once per area, also when not asked for themselves (then without their summary or figures).
``hidden=True`` registers such a shared intermediate (``moments``, ``category_selectivity``)
that ``--what`` does not offer.

Built-in analyses live in :mod:`cortexsim.analysis.steps`, one small module per analysis;
every module there is imported on first use of the registry, so adding an analysis means adding
one file (or calling :func:`register_analysis` from one's own code before ``analysis.run``).
Step modules import their numerical code inside the step, so listing the analyses stays cheap.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ParameterError


@dataclass(frozen=True)
class AnalysisSpec:
    """One registered analysis.

    Attributes
    ----------
    name : the name ``what=`` / ``--what`` uses
    step : ``step(ctx) -> dict``, the JSON summary of one area (``ctx``: :class:`~cortexsim.analysis.report.Context`)
    needs : names of the registered results the step calls ``ctx.need`` for (run first, cached)
    coord : the run parameter naming a stimulus coord the analysis needs (``"by"``), or None
    requires : a function of :mod:`cortexsim.analysis` that must be importable (optional dependencies)
    params : the run parameters the analysis reads (checked: an unknown keyword is an error)
    figure : ``(suffix, plotting function name)`` drawn from the kept result after the step, or None
    hidden : a shared intermediate, not offered by ``--what``
    order : position in ``what="all"`` (registration order otherwise)
    """

    name: str
    step: Callable[[Any], Any]
    needs: tuple[str, ...] = ()
    coord: str | None = None
    requires: str | None = None
    params: tuple[str, ...] = ()
    figure: tuple[str, str] | None = None
    hidden: bool = False
    order: int = 0
    doc: str = field(default="", compare=False)


_REGISTRY: dict[str, AnalysisSpec] = {}
_LOADED = False


def register_analysis(name: str, *, needs: tuple[str, ...] | list[str] = (), coord: str | None = None,
                      requires: str | None = None, params: tuple[str, ...] | list[str] = (),
                      figure: tuple[str, str] | str | None = None, hidden: bool = False,
                      order: int | None = None, replace: bool = False) -> Callable[[Callable], Callable]:
    """Decorator registering ``step(ctx) -> dict`` as the analysis ``name`` (see the module docstring).

    ``figure="plot_x"`` draws ``plot_x(kept result)`` as ``<area>_<name>``; ``("suffix", "plot_x")``
    names the file. Registering a name twice is an error unless ``replace=True``.
    """
    if not name.isidentifier():
        raise ParameterError(f"analysis names are identifiers (they become file names); got {name!r}.")
    if isinstance(figure, str):
        figure = (name, figure)

    def decorate(step: Callable) -> Callable:
        _load_builtin()
        if name in _REGISTRY and not replace and _REGISTRY[name].step is not step:
            raise ParameterError(f"an analysis {name!r} is registered already; pass replace=True to replace it.")
        _REGISTRY[name] = AnalysisSpec(
            name=name, step=step, needs=tuple(needs), coord=coord, requires=requires, params=tuple(params),
            figure=figure, hidden=hidden, order=len(_REGISTRY) if order is None else order,
            doc=(step.__doc__ or "").strip().split("\n")[0])
        return step

    return decorate


def _load_builtin() -> None:
    """Import every module of :mod:`cortexsim.analysis.steps` once (they register themselves)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from . import steps

    for info in sorted(pkgutil.iter_modules(steps.__path__), key=lambda m: m.name):
        importlib.import_module(f"{steps.__name__}.{info.name}")


def get_analysis(name: str) -> AnalysisSpec:
    """The spec of a registered analysis; a :class:`~cortexsim.errors.ParameterError` listing the names otherwise."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ParameterError(f"unknown analyses [{name!r}]; choose from {', '.join(analysis_names())} or 'all'.")
    return _REGISTRY[name]


def analysis_names(hidden: bool = False) -> tuple[str, ...]:
    """Registered analysis names in their ``what="all"`` order (``hidden``: intermediates too)."""
    _load_builtin()
    specs = sorted(_REGISTRY.values(), key=lambda s: s.order)
    return tuple(s.name for s in specs if hidden or not s.hidden)


def dependencies(names: list[str]) -> list[str]:
    """``names`` and everything they need, each after what it needs (a cycle is an error)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ParameterError(f"analysis {name!r} needs itself (through {sorted(visiting)}).")
        visiting.add(name)
        for dep in get_analysis(name).needs:
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for n in names:
        visit(n)
    return order
