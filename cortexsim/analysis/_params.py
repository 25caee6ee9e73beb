"""Parameters of the analyses in one place: declarative checks, renamed names, shared docs.

* :func:`validate_params` — a decorator (in the manner of scikit-learn's ``validate_params``)
  checking a function's arguments against constraints (:class:`Interval`, :class:`Options`, types)
  before it runs, with a :class:`~cortexsim.errors.ParameterError` (ValueError) or
  :class:`~cortexsim.errors.ParameterTypeError` (TypeError) naming the function, the parameter,
  what it got and what it accepts (:data:`SHARED`: the constraints of ``by``, ``area``, ``n_perm``,
  ``seed`` ... wherever they appear); ``renamed={"permutations": "n_perm"}`` and
  ``positional=("by",)`` keep an old keyword / an old positional use working for one release
  with a ``FutureWarning``.
* :func:`fill_doc` — ``%(n_perm)s`` in a docstring is replaced by the shared text of
  :data:`DOCS` (in the manner of nilearn's ``fill_doc``), so a parameter reads alike everywhere.
* :data:`RUN_PARAMS` — the parameters of :func:`cortexsim.analysis.run` and their
  ``cortexsim analyze`` flags, defaults and constraints.
"""
from __future__ import annotations

import functools
import inspect
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ParameterError, ParameterTypeError


@dataclass(frozen=True)
class Interval:
    """A real (or, with ``integer=True``, integral) value in [left, right] (``None``: unbounded).

    ``closed``: "both", "left", "right" or "neither" — which ends belong to the interval.
    """

    left: float | None = None
    right: float | None = None
    closed: str = "both"
    integer: bool = False

    def check(self, value: Any) -> str | None:
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            return "an integer" if self.integer else "a real number"
        if value != value:  # NaN
            return "a number, not NaN"
        lo_ok = self.left is None or (value >= self.left if self.closed in ("both", "left") else value > self.left)
        hi_ok = self.right is None or (value <= self.right if self.closed in ("both", "right") else value < self.right)
        return None if lo_ok and hi_ok else f"in {self}"

    def __str__(self) -> str:
        lo = "-inf" if self.left is None else f"{self.left:g}"
        hi = "inf" if self.right is None else f"{self.right:g}"
        left = "[" if self.closed in ("both", "left") and self.left is not None else "("
        right = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        return f"{left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def check(self, value: Any) -> str | None:
        try:
            ok = value in self.values
        except TypeError:
            ok = False
        return None if ok else f"one of {list(self.values)}"


Constraint = Any  # Interval | Options | type | tuple of those | None (None accepted)


def check_value(func: str, name: str, value: Any, constraints: list[Constraint]) -> None:
    """Raise when ``value`` meets none of ``constraints`` (ParameterTypeError when no type fits)."""
    wanted: list[str] = []
    type_only = True
    for c in constraints:
        if c is None:
            if value is None:
                return
            wanted.append("None")
        elif isinstance(c, (Interval, Options)):
            why = c.check(value)
            if why is None:
                return
            type_only = type_only and why in ("an integer", "a real number")
            wanted.append(why)
        elif isinstance(value, c):
            return
        else:
            wanted.append(f"a {getattr(c, '__name__', c)}")
    message = f"{func}: {name} must be {' or '.join(dict.fromkeys(wanted))}; got {value!r}."
    raise (ParameterTypeError if type_only else ParameterError)(message)


#: Constraints shared by every analysis: a parameter of one of these names is checked so
#: wherever it appears, unless a function's own ``constraints`` say otherwise.
SHARED: dict[str, list[Constraint]] = {
    "by": [str],
    "area": [None, str],
    "n_perm": [Interval(0, None, integer=True)],
    "seed": [Interval(0, None, integer=True)],
    "radius_mm": [None, Interval(0, None, "neither")],
    "k": [None, Interval(1, None, integer=True)],
    "threshold": [Interval()],
    "connectivity": [Options((4, 8))],
    "undefined": [Options(("raise", "nan"))],
    "skipna": [bool],
    "ddof": [Interval(0, None, integer=True)],
    "min_sd": [Interval(0, None)],
    "none": [str],
    "progress": [bool],
}


def _deprecated(message: str) -> None:
    # FutureWarning: shown to end users by default (DeprecationWarning is hidden outside __main__)
    warnings.warn(message, FutureWarning, stacklevel=3)


def validate_params(constraints: Mapping[str, list[Constraint]] | None = None, *,
                    renamed: Mapping[str, str] | None = None,
                    positional: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Check a function's arguments each call: ``constraints`` plus :data:`SHARED` for its other parameters.

    ``renamed``: old keyword -> new parameter name. ``positional``: parameters that were
    positional in the previous release and are keyword-only now, in their old order. Both
    old forms still work for one release, with a ``FutureWarning`` saying the new one; an
    old and a new name at once is a ParameterTypeError.
    """
    renamed = dict(renamed or {})

    def decorate(func: Callable) -> Callable:
        sig = inspect.signature(func)
        name = func.__name__
        checks = {p: SHARED[p] for p in sig.parameters if p in SHARED}
        checks.update(constraints or {})
        n_pos = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in sig.parameters.values())

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renamed.items():
                if old in kwargs:
                    if new in kwargs:
                        raise ParameterTypeError(f"{name}: pass {new}= only ({old}= is its old name).")
                    _deprecated(f"{name}({old}=...) is deprecated and will be removed in the next release; use {new}=.")
                    kwargs[new] = kwargs.pop(old)
            if positional and len(args) > n_pos:
                extra = args[n_pos:]
                if len(extra) > len(positional):
                    raise ParameterTypeError(f"{name}: takes {n_pos + len(positional)} positional arguments at most; "
                                             f"got {len(args)}.")
                names = positional[: len(extra)]
                clash = [n for n in names if n in kwargs]
                if clash:
                    raise ParameterTypeError(f"{name}: {clash} given both by position and by keyword.")
                _deprecated(f"{name}: passing {', '.join(names)} by position is deprecated and will be removed in "
                            f"the next release; use {', '.join(n + '=' for n in names)}.")
                kwargs.update(zip(names, extra))
                args = args[:n_pos]
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise ParameterTypeError(f"{name}: {exc}; its parameters are {list(sig.parameters)}.") from None
            for pname, value in bound.arguments.items():
                if pname in checks:
                    check_value(name, pname, value, checks[pname])
            return func(*bound.args, **bound.kwargs)

        wrapper.__signature__ = sig  # type: ignore[attr-defined]
        return wrapper

    return decorate


#: Shared parameter docs (numpydoc), filled into ``%(name)s`` by :func:`fill_doc`.
DOCS: dict[str, str] = {
    "obj": "obj : Sheet (xarray.Dataset) or per-unit DataArray\n"
           "    The data; per-unit DataArrays carry the unit coords (x_mm, y_mm, area ...).",
    "sheet": "obj : Sheet (xarray.Dataset, numpy or dask backed)\n    Responses (stimulus, unit) with the stimulus and unit coords (``cortexsim info SHEET``).",
    "by": "by : str\n    Stimulus coord whose values are the categories (``cortexsim info SHEET`` lists them).",
    "area": "area : str, optional\n    Analyse only the units of this area (default: all units of ``obj``).",
    "n_perm": "n_perm : int\n    Number of permuted maps of the null distribution.",
    "seed": "seed : int\n    Seed of the random numbers (permutations, pair sampling); same seed, same result.",
    "positions": "positions : array (n_units, 2), optional\n    Unit positions in mm, when ``obj`` carries no x_mm / y_mm.",
    "radius_mm": "radius_mm : float, optional\n    Neighbours are the units within this distance (mm).",
    "k": "k : int, optional\n    Neighbours are each unit's k nearest units (see :func:`cortexsim.analysis.graphs.knn_pairs`).",
    "skipna": "skipna : bool\n    Leave out stimuli with NaN/±Inf responses (with a warning) instead of raising a SheetError.",
    "moments": "moments : GroupMoments, optional\n    Precomputed ``group_moments(obj, by=by)``, to skip a pass over ``responses``.",
    "undefined": "undefined : {\"raise\", \"nan\"}\n    d′/t of constant units: NaN with a warning (default) or raise.",
    "threshold": "threshold : float\n    A unit prefers the category of its largest d′ when that d′ is above this (Reset: 2).",
    "none": "none : str\n    Label of units without a preference.",
    "G": "G : networkx.Graph\n    A neighbour graph (:func:`~cortexsim.analysis.neighbour_graph`): nodes are ``unit_id``.",
    "pref": "pref : DataArray (unit,) or dict unit_id -> label, optional\n"
            "    Each unit's preference (e.g. :func:`~cortexsim.analysis.preference_map`); default the nodes' ``attr``.",
    "attr": "attr : str\n    Node attribute holding (or given) each unit's preference label.",
    "progress": "progress : bool\n    Show a progress bar over the permutations (only on a terminal).",
    "outputs_null": "null : the statistic of every permuted map (``perm`` dim); ``p_value``: the share of\n"
                    "    permuted maps at least as extreme as the observed one, (1 + #) / (1 + n_perm).",
}

#: The parameters every function of a neighbour graph takes, in one block.
DOCS["graph"] = "\n".join(DOCS[p] for p in ("G", "pref", "none", "attr"))

def fill_doc(func: Callable) -> Callable:
    """Replace ``%(name)s`` in ``func.__doc__`` by :data:`DOCS` entries, indented as the placeholder."""
    doc = func.__doc__
    if doc:
        lines = []
        for line in doc.split("\n"):
            stripped = line.strip()
            if stripped.startswith("%(") and stripped.endswith(")s") and stripped[2:-2] in DOCS:
                indent = line[: len(line) - len(line.lstrip())]
                lines += [indent + part for part in DOCS[stripped[2:-2]].split("\n")]
            else:
                lines.append(line)
        func.__doc__ = "\n".join(lines)
    return func


@dataclass(frozen=True)
class RunParam:
    """A parameter of :func:`cortexsim.analysis.run`: default, accepted values, its CLI flag."""

    default: Any
    constraints: tuple[Constraint, ...]
    doc: str


def flag_of(name: str) -> str:
    """The ``cortexsim analyze`` flag of a run parameter (``n_perm`` -> ``--n-perm``)."""
    return "--" + name.replace("_", "-")


def _min_sd() -> float:
    from .selectivity import MIN_SD

    return MIN_SD


_real = Interval()
_pos_int = Interval(1, None, integer=True)
_nonneg_int = Interval(0, None, integer=True)
_nonneg = Interval(0, None)

#: Parameters of analysis.run: name -> (default, constraints, doc). ``cortexsim analyze`` has one flag each.
RUN_PARAMS: dict[str, RunParam] = {
    "by": RunParam("domain", (str,), "stimulus coord of the categories"),
    "target": RunParam(None, (None, str, int, float), "category for d′/t maps and patches (None: each vs the rest)"),
    "reference": RunParam(None, (None, list, tuple, str), "reference categories (None: the rest)"),
    "threshold": RunParam(2.0, (_real,), "d′ threshold of preference maps"),
    "min_sd": RunParam(None, (None, _nonneg), "near-constant units' d′/t undefined below MIN_SD × median SD"),
    "skipna": RunParam(False, (bool,), "leave out stimuli with NaN/Inf responses"),
    "undefined": RunParam("nan", (Options(("raise", "nan")),), "d′/t of constant units: raise or NaN"),
    "patch_threshold": RunParam(4.0, (_real,), "smoothed t a patch must exceed"),
    "patch_sigma_mm": RunParam(None, (None, _nonneg), "smoothing of the t map (mm); default TDANN's, scaled"),
    "patch_min_area_mm2": RunParam(None, (None, _nonneg), "smallest patch (mm²); default TDANN's, scaled"),
    "numbers_by": RunParam("numerosity", (str,), "numeric stimulus coord of number maps"),
    "orientation_coord": RunParam("orientation_deg", (str,), "stimulus coord of grating orientation"),
    "area": RunParam(None, (None, str), "analyse only this area"),
    "n_perm": RunParam(20, (_pos_int,), "permuted maps of the clustering/topography null"),
    "seed": RunParam(0, (_nonneg_int,), "seed of the permutations"),
    "connectivity": RunParam(8, (Options((4, 8)),), "grid adjacency of clustering components"),
    "radius_mm": RunParam(None, (None, Interval(0, None, "neither")), "neighbour radius (mm), irregular sheets"),
    "k": RunParam(None, (None, _pos_int), "k nearest neighbours, irregular sheets"),
}


def check_run_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` checked against :data:`RUN_PARAMS`, completed with the defaults.

    ``reference`` may be a comma-separated string (as ``--reference``); it becomes a list.
    """
    unknown = sorted(set(params) - set(RUN_PARAMS))
    if unknown:
        raise ParameterTypeError(f"analysis.run: unknown parameters {unknown}; its parameters are "
                                 f"{sorted(RUN_PARAMS)}.")
    out = {name: p.default for name, p in RUN_PARAMS.items()}
    out["min_sd"] = _min_sd()
    out.update({k: v for k, v in params.items() if not (k == "min_sd" and v is None)})
    for name, value in out.items():
        check_value("analysis.run", name, value, list(RUN_PARAMS[name].constraints))
    if isinstance(out["reference"], str):
        out["reference"] = [r for r in out["reference"].split(",") if r]
    if out["reference"] is not None:
        out["reference"] = list(out["reference"]) or None
    return out
