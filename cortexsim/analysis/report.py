"""``analysis.run(obj, what=[...], **params) -> Report``: a set of registered analyses, per area.

>>> from cortexsim import analysis
>>> rep = analysis.run(ds, what=["selectivity", "preference", "clustering"], by="domain", n_perm=50)
>>> rep["IT", "clustering"]          # the clustering_index Dataset of area IT
>>> rep.summary["areas"]["IT"]["clustering"]["p_value"]
>>> rep.maps["IT"]                   # per-unit results (d′, preference ...) as one Dataset
>>> rep.save("results/")             # summary.json, units_<area>.nc, figures: what `cortexsim analyze` writes

The analyses are those of :mod:`cortexsim.analysis.registry`; each step's intermediate results
(group moments, the per-category selectivity, the preference map ...) are computed once per area.
An analysis that fails on one area for a reason of the data (a :class:`~cortexsim.CortexsimError`,
e.g. an :class:`~cortexsim.errors.UndefinedStatisticError` for a constant map) is recorded as
``{"error": ...}`` and the others go on.
"""
from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import xarray as xr

from ..errors import CortexsimError, ParameterError, SheetError
from ._params import check_run_params, flag_of
from .registry import AnalysisSpec, analysis_names, dependencies, get_analysis

#: Figure formats matplotlib writes that make sense for maps.
FIGURE_FORMATS = ("png", "svg", "pdf", "eps", "jpg", "tif")


def safe_name(name: str) -> str:
    """``name`` with every character but letters, digits, ``-_.`` replaced by ``_`` (file names)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclass
class _Figure:
    stem: str                 # file name without suffix, e.g. "IT_preference"
    plot: str                 # a function of cortexsim.plotting
    obj: Any
    kwargs: dict[str, Any]


class Context:
    """What a registered step sees: one area's Sheet, the parameters, shared results, outputs.

    Attributes
    ----------
    ds : the Sheet of this area
    area : the area's name
    p : the run parameters as attributes (``ctx.p.by``, ``ctx.p.n_perm`` ...)
    maps : per-unit results of this area written to ``units_<area>.nc``
    """

    def __init__(self, ds: xr.Dataset, area: str, params: dict[str, Any]) -> None:
        self.ds, self.area, self.p = ds, area, SimpleNamespace(**params)
        self.maps: dict[str, xr.DataArray] = {}
        self.results: dict[str, Any] = {}
        self.figures: list[_Figure] = []
        self.files: dict[str, Any] = {}
        self.notes: list[str] = []
        self._values: dict[str, Any] = {}
        self._current: str | None = None

    def need(self, name: str) -> Any:
        """The kept result of the registered analysis ``name`` on this area (computed once)."""
        if name not in self._values:
            spec = get_analysis(name)
            saved = (self._current, self.maps, self.figures, self.files)
            # a dependency that was not asked for computes its value only: its outputs are dropped
            self._current, self.maps, self.figures, self.files = name, {}, [], {}
            try:
                spec.step(self)
            finally:
                self._current, self.maps, self.figures, self.files = saved
        return self._values.get(name)

    def keep(self, value: Any) -> Any:
        """Keep ``value`` as the result of the running analysis (``report[area, name]``, ``ctx.need``)."""
        self._values[self._current] = value
        return value

    def map(self, name: str, values: xr.DataArray) -> None:
        """Add a per-unit DataArray to this area's ``units_<area>.nc`` under ``name``."""
        self.maps[name] = values

    def figure(self, suffix: str, plot: str, obj: Any, **kwargs: Any) -> None:
        """Draw ``cortexsim.plotting.<plot>(obj, **kwargs)`` as ``<area>_<suffix>`` when the report is saved."""
        if isinstance(obj, (xr.Dataset, xr.DataArray)) and "area" not in obj.attrs:
            obj = obj.assign_attrs(area=self.area)  # the figure's title names the area (a shallow copy)
        self.figures.append(_Figure(f"{safe_name(self.area)}_{suffix}", plot, obj, kwargs))

    def file(self, suffix: str, writer: Any, obj: Any) -> str:
        """Write ``writer(obj, path)`` as ``<area>_<suffix>`` when the report is saved; returns the file name."""
        name = f"{safe_name(self.area)}_{suffix}"
        self.files[name] = (writer, obj)
        return name

    def note(self, text: str, sep: str = ": ") -> None:
        """A remark for the user, ``"<area>/<analysis><sep><text>"`` (``cortexsim analyze`` prints it to stderr)."""
        self.notes.append(f"{self.area}/{self._current}{sep}{text}")

    def run(self, spec: AnalysisSpec) -> dict[str, Any]:
        self._current = spec.name
        summary = spec.step(self)
        value = self._values.get(spec.name)
        if spec.figure is not None and value is not None:
            self.figure(spec.figure[0], spec.figure[1], value)
        self.results[spec.name] = value
        return summary


@dataclass
class Report:
    """Results of :func:`run`.

    Attributes
    ----------
    summary : dict — what ``summary.json`` holds: per area one entry per analysis (scalars, counts,
        null distributions), the parameters, the analyses skipped and why
    results : {area: {analysis: xarray result}} (``report[area, name]``)
    maps : {area: Dataset of the per-unit results} (``units_<area>.nc``)
    errors : {"area/analysis": message} of the analyses that could not run on an area
    notes : remarks (e.g. why no patch was found), as ``cortexsim analyze`` prints them
    """

    summary: dict[str, Any]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    maps: dict[str, xr.Dataset] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _figures: list[_Figure] = field(default_factory=list, repr=False)
    _files: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: tuple[str, str] | str) -> Any:
        if isinstance(key, str):
            if len(self.results) != 1:
                raise KeyError(f"the report has areas {list(self.results)}; use report[area, {key!r}].")
            key = (next(iter(self.results)), key)
        area, name = key
        return self.results[area][name]

    def save(self, out: str | Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
        """Write ``summary.json``, ``units_<area>.nc``, the figures (one file per format) and graph files
        into the folder ``out`` (created); returns the figure paths. ``formats=()``: no figures."""
        from ..io import atomic_path
        from ..jsonattrs import dumps

        formats = [f.lower() for f in formats]
        bad = [f for f in formats if f not in FIGURE_FORMATS]
        if bad:
            raise ParameterError(f"unknown figure formats {bad}; choose among {', '.join(FIGURE_FORMATS)}.")
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name, (writer, obj) in self._files.items():
            writer(obj, out / name)
        for area, ds in self.maps.items():
            _write_units(ds, out / f"units_{safe_name(area)}.nc")
        paths: list[Path] = []
        if formats:
            from .. import plotting

            for fig in self._figures:
                files = [out / f"{fig.stem}.{fmt}" for fmt in formats]
                getattr(plotting, fig.plot)(fig.obj, output_file=files, **fig.kwargs)
                paths += files
        self.summary["figures"] = [str(p.relative_to(out)) for p in paths]
        text = dumps(self.summary, indent=2)  # strict JSON: NaN/Inf -> null, readable by any parser
        with atomic_path(out / "summary.json") as tmp:
            Path(tmp).write_text(text)
        return paths


def run(obj: xr.Dataset, what: Sequence[str] | str = ("selectivity", "preference", "clustering"), *,
        strict: bool = True, **params: Any) -> Report:
    """Run registered analyses on each area of a Sheet.

    Parameters
    ----------
    obj : Sheet (``xarray.Dataset``)
    what : analysis names (:func:`~cortexsim.analysis.registry.analysis_names`), a comma-separated
        string, or ``"all"`` (every analysis the Sheet's stimulus coords allow; the others are listed
        in ``summary["skipped"]``)
    strict : an analysis named in ``what`` that cannot run on this Sheet (a stimulus coord missing)
        is an error (True) or skipped with the reason (False)
    **params : run parameters (``by``, ``target``, ``n_perm``, ``seed``, ``area`` ...; see
        :data:`cortexsim.analysis._params.RUN_PARAMS`); defaults are ``cortexsim analyze``'s

    Returns
    -------
    Report
    """
    from ._common import check_sheet

    ds = check_sheet(obj, "analysis.run")
    params = check_run_params(params)
    names, skipped = _requested(what, ds, params, strict)
    _check_categories(ds, params)
    summary: dict[str, Any] = {"n_stimuli": int(ds.sizes["stimulus"]), "n_units": int(ds.sizes["unit"]),
                               "analyses": names, "skipped": skipped,
                               "parameters": {k: v for k, v in params.items()}, "areas": {}, "figures": []}
    report = Report(summary)
    areas = [params["area"]] if params["area"] is not None else ds.cortex.areas
    for area in areas:
        ctx = Context(ds.cortex.area(area), area, params)
        res: dict[str, Any] = {}
        with _area_warnings(area):
            for name in names:
                try:
                    for dep in dependencies([name])[:-1]:
                        ctx.need(dep)
                    res[name] = ctx.run(get_analysis(name))
                except CortexsimError as exc:  # e.g. no preferring unit in this area: record it, go on
                    report.errors[f"{area}/{name}"] = str(exc)
                    res[name] = {"error": str(exc)}
        summary["areas"][area] = res
        report.results[area] = ctx.results
        if ctx.maps:
            report.maps[area] = xr.Dataset(dict(ctx.maps))
        report.notes += ctx.notes
        report._figures += ctx.figures
        report._files.update(ctx.files)
    return report


def _requested(what: Sequence[str] | str, ds: xr.Dataset, params: dict[str, Any],
               strict: bool) -> tuple[list[str], dict[str, str]]:
    """The analyses to run in order, and those skipped with the reason."""
    from . import available

    names = [w.strip() for w in what.split(",")] if isinstance(what, str) else [str(w).strip() for w in what]
    names = [n for n in names if n]
    offered = analysis_names()
    if not names:
        raise ParameterError(f"what= is empty; choose analyses among {', '.join(offered)}, or 'all'.")
    explicit = names != ["all"]
    if not explicit:
        names = list(offered)
    unknown = [n for n in names if n not in offered]
    if unknown:
        raise ParameterError(f"unknown analyses {sorted(unknown)}; choose from {', '.join(offered)} or 'all'.")
    stimulus_coords = sorted(str(c) for c in ds.coords if ds[c].dims == ("stimulus",) and c != "stimulus_id")
    chosen, skipped = [], {}
    for name in names:
        spec = get_analysis(name)
        coord = params.get(spec.coord) if spec.coord else None
        if coord is not None and coord not in ds.coords:
            reason = f"the Sheet has no stimulus coord {coord!r}"
        elif spec.requires and not available(spec.requires):
            reason = f"analysis.{spec.requires} is not installed"
        else:
            chosen.append(name)
            continue
        if explicit and strict:
            raise SheetError(
                f"cannot run {name!r}: {reason}; its stimulus coords are {stimulus_coords}. Pass "
                f"{flag_of(spec.coord)} <one of those>, or choose other analyses with --what.")
        skipped[name] = reason
    if not chosen:
        raise SheetError(f"none of the analyses can run on this Sheet ({'; '.join(f'{k}: {v}' for k, v in skipped.items())}); "
                         f"its stimulus coords are {stimulus_coords}: pass --by / --numbers-by / --orientation-coord.")
    return chosen, skipped


def _check_categories(ds: xr.Dataset, params: dict[str, Any]) -> None:
    """Fail early on a ``target`` / ``reference`` that is not a value of ``by``."""
    from ._common import find_group, group_codes, require_coord

    wanted = ([params["target"]] if params["target"] is not None else []) + list(params["reference"] or [])
    if wanted:
        groups, _ = group_codes(require_coord(ds, params["by"]))
        for value in wanted:
            find_group(groups, value, params["by"])


@contextlib.contextmanager
def _area_warnings(area: str) -> Iterator[None]:
    """Re-issue the warnings of one area's analyses once each, prefixed with the area.

    d′ and t of the same units warn alike (same counts); they become one "d′/t ..." line.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: dict[str, type[Warning]] = {}
    for w in caught:
        text = re.sub(r"^(d′|t) is ", "d′/t is ", str(w.message))
        seen.setdefault(text, w.category)
    for text, category in seen.items():
        warnings.warn(f"{area}: {text}", category, stacklevel=4)


def _write_units(ds: xr.Dataset, path: Path) -> None:
    from ..io import atomic_path
    from ..jsonattrs import netcdf_attrs

    ds = ds.copy()
    for var in ds.data_vars.values():
        var.attrs = netcdf_attrs(var.attrs)
        if var.dtype.kind in "OU":
            var.values = np.asarray(var.values).astype(str)
    ds.attrs = {}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def scalars(obj: Any, max_len: int = 100) -> dict[str, Any]:
    """JSON summary of an analysis result: 0-d variables as numbers, short 1-d ones as lists (with the
    labels of their dims, e.g. ``category``), attrs."""
    from ._common import jsonable  # the shared sanitiser, NaN kept (summary.json is made strict on save)

    if isinstance(obj, xr.DataArray):
        obj = obj.to_dataset(name=obj.name or "value")
    out: dict[str, Any] = {}
    if isinstance(obj, xr.Dataset):
        for dim, n in obj.sizes.items():
            if dim in obj.coords and n <= max_len:
                out[str(dim)] = jsonable(np.asarray(obj[dim].values))
        for name, var in obj.data_vars.items():
            if var.ndim == 0:
                out[str(name)] = jsonable(var.values[()])
            elif var.ndim == 1 and var.size <= max_len:
                out[str(name)] = jsonable(np.asarray(var.values))
            else:
                out[str(name)] = {"dims": list(var.dims), "shape": list(var.shape)}
        out["attrs"] = {str(k): jsonable(v) for k, v in obj.attrs.items()}
    return out


def stats(v: Any) -> dict[str, Any]:
    """n, mean, median, min, max of the finite values of ``v`` (``{"n": 0}`` when none)."""
    a = np.asarray(v, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "mean": float(a.mean()), "median": float(np.median(a)), "min": float(a.min()),
            "max": float(a.max())}
