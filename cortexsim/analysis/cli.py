"""``cortexsim analyze``: run analyses on a Sheet file, write a summary JSON, per-unit maps and figures.

::

    cortexsim analyze sheet.h5 --what selectivity,preference,clustering --by domain --target faces --out results/

Writes into ``--out``:

* ``summary.json`` — per area, one entry per analysis (scalars, counts, null
  distributions) plus the parameters used and the analyses skipped (and why);
* ``units_<area>.nc`` — per-unit results (d′, t, preference, orientation ...)
  with the unit coords, readable with ``xarray.open_dataset``;
* figures ``<area>_<analysis>.png`` / ``.svg``; ``<area>_graph.graphml``.

The lead CLI imports :func:`add_parser`; :func:`main` runs the subcommand alone
(tests, ``python -m cortexsim.analysis.cli``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import CortexsimError
from . import available
from ._common import jsonable

ANALYSES: tuple[str, ...] = (
    "selectivity", "preference", "clustering", "topography", "graph", "numbers", "orientation",
    "smoothness", "pinwheels", "patches", "rsa",
)
#: Analyses that need a stimulus coord: analysis -> the argparse attribute naming that coord.
_NEEDS_COORD = {
    "selectivity": "by", "preference": "by", "clustering": "by", "graph": "by", "patches": "by",
    "topography": "numbers_by", "numbers": "numbers_by", "orientation": "orientation_coord",
    "pinwheels": "orientation_coord",
}
#: Part-2 analyses: analysis -> the function it needs.
_NEEDS_FUNCTION = {"smoothness": "smoothness", "pinwheels": "pinwheels", "patches": "patches_by_category", "rsa": "rdm"}


#: Python keyword -> analyze flag, so that warnings advise what can be typed.
WARNING_FLAGS = {"undefined='raise'": "--undefined raise", "undefined='nan'": "--undefined nan",
                 "min_sd=0": "--min-sd 0", "skipna=True": "--skipna"}
#: Figure formats matplotlib writes that make sense for maps.
FIGURE_FORMATS = ("png", "svg", "pdf", "eps", "jpg", "tif")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``analyze`` subcommand to an argparse ``subparsers`` object."""
    from ..cliutil import finite_float, nonnegative_int, positive_int
    from .selectivity import MIN_SD

    p = subparsers.add_parser(
        "analyze",
        help="run analyses (selectivity, maps, clustering, ...) on a Sheet file",
        description="Run analyses on a Sheet file and write summary.json, per-unit maps (units_<area>.nc) "
        "and figures (PNG + SVG) into --out. Analyses run per area.",
    )
    p.add_argument("sheet", help="Sheet file (.h5) written by `cortexsim record` or cortexsim.save_sheet")
    p.add_argument("--what", default="selectivity,preference,clustering",
                   help=f"comma-separated analyses among {', '.join(ANALYSES)}, or 'all' (every analysis the "
                   f"Sheet's stimulus coords allow). Default: %(default)s")
    p.add_argument("--by", default="domain", help="stimulus coord of the categories (default: %(default)s; "
                   "`cortexsim info SHEET` lists the coords)")
    p.add_argument("--target", default=None, help="category for d′/t maps and patches (default: every category vs rest)")
    p.add_argument("--reference", default=None, help="comma-separated reference categories (default: the rest)")
    p.add_argument("--threshold", type=finite_float(), default=2.0,
                   help="d′ threshold of preference maps (default: 2, Reset)")
    p.add_argument("--min-sd", type=finite_float(0.0), default=MIN_SD,
                   help="d′/t of units whose pooled SD is below MIN_SD × the area's median are undefined "
                        "(near-constant units; default: %(default)g, 0: off)")
    p.add_argument("--skipna", action="store_true",
                   help="leave out stimuli with NaN/Inf responses instead of stopping with an error")
    p.add_argument("--patch-threshold", type=finite_float(), default=4.0,
                   help="smoothed t a patch must exceed (default: %(default)g)")
    p.add_argument("--patch-sigma-mm", type=finite_float(0.0), default=None,
                   help="Gaussian smoothing of the t map in mm (default 2.4, TDANN's, scaled down on sheets "
                        "smaller than TDANN's 70 mm VTC)")
    p.add_argument("--patch-min-area-mm2", type=finite_float(0.0), default=None,
                   help="smallest patch in mm² (default 100, TDANN's, scaled like --patch-sigma-mm)")
    p.add_argument("--numbers-by", default="numerosity", help="numeric stimulus coord for number maps/topography")
    p.add_argument("--orientation-coord", default="orientation_deg", help="stimulus coord of grating orientation")
    p.add_argument("--area", default=None, help="analyse only this area (default: every area separately)")
    p.add_argument("--n-perm", type=positive_int, default=20,
                   help="permuted maps of the clustering/topography control (default: %(default)s)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the permutations")
    p.add_argument("--connectivity", type=int, choices=(4, 8), default=8,
                   help="grid adjacency of clustering components (8: what Hannagan's published numbers ran)")
    p.add_argument("--radius-mm", type=finite_float(0.0, strict=True), default=None,
                   help="neighbour radius (mm) for irregular sheets")
    p.add_argument("--k", type=positive_int, default=None, help="k nearest neighbours for irregular sheets (default 8)")
    p.add_argument("--undefined", choices=("raise", "nan"), default="nan",
                   help="d′/t of constant (dead) or near-constant units: stop with an error, or NaN (default)")
    p.add_argument("--formats", default="png,svg",
                   help=f"figure formats among {', '.join(FIGURE_FORMATS)} (default: %(default)s); '' for none")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run, warning_flags=WARNING_FLAGS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` as ``analyze`` arguments and run."""
    from ..cliutil import run_command

    parser = argparse.ArgumentParser(prog="cortexsim")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["analyze", *(argv if argv is not None else sys.argv[1:])])
    return run_command(args, "cortexsim analyze")


def run(args: argparse.Namespace) -> int:
    """Run the ``analyze`` subcommand; bad input raises a CortexsimError (exit 2 through the CLI)."""
    try:
        summary = analyze(args)
    except (ValueError, KeyError) as exc:
        if isinstance(exc, CortexsimError):
            raise
        raise CortexsimError(str(exc.args[0]) if exc.args else repr(exc)) from None
    print(f"wrote {Path(args.out) / 'summary.json'} ({len(summary['figures'])} figures)")
    return 0


def _requested(args: argparse.Namespace, ds: xr.Dataset) -> tuple[list[str], dict[str, str]]:
    from ..errors import SheetError

    names = [w.strip() for w in args.what.split(",") if w.strip()]
    if not names:
        raise CortexsimError(f"--what is empty; choose analyses among {', '.join(ANALYSES)}, or 'all'.")
    explicit = names != ["all"]
    if not explicit:
        names = list(ANALYSES)
    unknown = sorted(set(names) - set(ANALYSES))
    if unknown:
        raise CortexsimError(f"unknown analyses {unknown}; choose from {', '.join(ANALYSES)} or 'all'.")
    stimulus_coords = sorted(str(c) for c in ds.coords if ds[c].dims == ("stimulus",) and c != "stimulus_id")
    run_, skipped = [], {}
    for name in names:
        flag = _NEEDS_COORD.get(name, "")
        coord = getattr(args, flag, None)
        if coord is not None and coord not in ds.coords:
            reason = f"the Sheet has no stimulus coord {coord!r}"
        elif name in _NEEDS_FUNCTION and not available(_NEEDS_FUNCTION[name]):
            reason = f"analysis.{_NEEDS_FUNCTION[name]} is not installed"
        else:
            run_.append(name)
            continue
        if explicit:
            option = "--" + flag.replace("_", "-")
            raise SheetError(
                f"cannot run {name!r}: {reason}; its stimulus coords are {stimulus_coords}. Pass "
                f"{option} <one of those>, or choose other analyses with --what.")
        skipped[name] = reason
    if not run_:
        raise SheetError(f"none of the analyses can run on this Sheet ({'; '.join(f'{k}: {v}' for k, v in skipped.items())}); "
                         f"its stimulus coords are {stimulus_coords}: pass --by / --numbers-by / --orientation-coord.")
    return run_, skipped


def _check_categories(ds: xr.Dataset, args: argparse.Namespace) -> None:
    """Fail early (exit 2) on a --target / --reference that is not a value of --by."""
    from ._common import find_group, group_codes, require_coord

    wanted = ([args.target] if args.target is not None else []) + (args.reference.split(",") if args.reference else [])
    if wanted:
        groups, _ = group_codes(require_coord(ds, args.by))
        for value in wanted:
            find_group(groups, value, args.by)


def _stats(v: Any) -> dict[str, Any]:
    a = np.asarray(v, dtype=float)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "mean": float(a.mean()), "median": float(np.median(a)), "min": float(a.min()),
            "max": float(a.max())}


def scalars(obj: Any, max_len: int = 100) -> dict[str, Any]:
    """JSON summary of an analysis result: 0-d variables as numbers, short 1-d ones as lists (with the
    labels of their dims, e.g. ``category``), attrs."""
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
    return json.loads(json.dumps(out, default=str))


def _area_names(ds: xr.Dataset, area: str | None) -> list[str]:
    return [area] if area is not None else ds.cortex.areas


def analyze(args: argparse.Namespace) -> dict[str, Any]:
    """Run the analyses ``args`` asks for; returns (and writes) the summary dict."""
    from .. import open_sheet
    from ..cliutil import check_output

    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad:
        raise CortexsimError(f"--formats: unknown figure formats {bad}; choose among {', '.join(FIGURE_FORMATS)}.")
    out = check_output(args.out, "dir")
    ds = open_sheet(args.sheet)
    names, skipped = _requested(args, ds)
    _check_categories(ds, args)
    summary: dict[str, Any] = {
        "sheet": str(args.sheet),
        "n_stimuli": int(ds.sizes["stimulus"]),
        "n_units": int(ds.sizes["unit"]),
        "analyses": names,
        "skipped": skipped,
        "parameters": {k: v for k, v in vars(args).items() if k not in ("func", "command")},
        "areas": {},
        "figures": [],
    }
    for area in _area_names(ds, args.area):
        sub = ds.cortex.area(area)
        with _area_warnings(area):
            results, per_unit, figures = _analyze_area(sub, area, names, args, out, formats)
        summary["areas"][area] = results
        summary["figures"] += [str(p.relative_to(out)) for p in figures]
        if per_unit:
            _write_units(per_unit, out / f"units_{_safe(area)}.nc")
    (out / "summary.json").write_text(json.dumps(_finite(jsonable(summary)), indent=2, default=str, allow_nan=False))
    return summary


@contextlib.contextmanager
def _area_warnings(area: str) -> Iterator[None]:
    """Re-issue the warnings of one area's analyses once each, prefixed with the area.

    d′ and t of the same units warn alike (same counts); they become one "d′/t ..." line.
    """
    import re
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: dict[str, type[Warning]] = {}
    for w in caught:
        text = re.sub(r"^(d′|t) is ", "d′/t is ", str(w.message))
        seen.setdefault(text, w.category)
    for text, category in seen.items():
        warnings.warn(f"{area}: {text}", category, stacklevel=3)


def _finite(obj: Any) -> Any:
    """NaN/Inf -> None, so summary.json is strict JSON (readable by any parser)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _write_units(maps: dict[str, xr.DataArray], path: Path) -> None:
    from ..io import atomic_path

    ds = xr.Dataset(dict(maps))
    for var in ds.data_vars.values():
        var.attrs = {k: (v if isinstance(v, (str, int, float)) else json.dumps(jsonable(v))) for k, v in var.attrs.items()}
        if var.dtype.kind in "OU":
            var.values = np.asarray(var.values).astype(str)
    ds.attrs = {}
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def _analyze_area(
    ds: xr.Dataset, area: str, names: list[str], args: argparse.Namespace, out: Path, formats: list[str]
) -> tuple[dict[str, Any], dict[str, xr.DataArray], list[Path]]:
    from . import figures as fg
    from ._cli_steps import part2_steps
    from .clustering import clustering_index, topography_index
    from .graphs import component_sizes, neighbour_graph, preference_modularity, write_graphml
    from .preference import number_map, orientation_map, preference_from_selectivity
    from .selectivity import dprime, moments_for, selectivity, tstat

    res: dict[str, Any] = {}
    maps: dict[str, xr.DataArray] = {}
    figs: list[Path] = []
    stem = out / _safe(area)
    adjacency = {"radius_mm": args.radius_mm, "k": args.k}
    reference = args.reference.split(",") if args.reference else None
    cache: dict[str, Any] = {}

    def figure(func: Callable[..., list[Path]], obj: Any, suffix: str) -> None:
        if formats:
            if isinstance(obj, (xr.Dataset, xr.DataArray)) and "area" not in obj.attrs:
                obj = obj.assign_attrs(area=area)  # the figure's title names the area (a shallow copy)
            figs.extend(func(obj, f"{stem}_{suffix}", formats))

    def moments() -> Any:
        if "moments" not in cache:
            cache["moments"] = moments_for(ds, args.by, skipna=args.skipna)
        return cache["moments"]

    def sel() -> xr.DataArray:
        if "sel" not in cache:
            cache["sel"] = selectivity(ds, args.by, undefined=args.undefined, min_sd=args.min_sd, moments=moments())
        return cache["sel"]

    def pref() -> xr.DataArray:
        if "pref" not in cache:
            cache["pref"] = preference_from_selectivity(sel(), args.threshold)
        return cache["pref"]

    def ori() -> xr.Dataset:
        if "ori" not in cache:
            cache["ori"] = orientation_map(ds, orientation=args.orientation_coord)
        return cache["ori"]

    def run_selectivity() -> dict[str, Any]:
        if args.target is None:
            s = sel()
            for c in s["category"].values.tolist():
                d_c = maps[f"dprime_{_safe(str(c))}"] = s.sel(category=c, drop=True)
                figure(fg.plot_dprime_map, d_c.rename(f"d′ {c}").assign_attrs(long_name=f"d′ {c} vs the rest"),
                       f"dprime_{_safe(str(c))}")
            return {str(c): {"dprime": _stats(s.sel(category=c).values),
                             "n_above_threshold": int(np.sum(s.sel(category=c).values > args.threshold))}
                    for c in s["category"].values.tolist()}
        d = dprime(ds, args.by, args.target, reference, undefined=args.undefined, min_sd=args.min_sd, moments=moments())
        t = tstat(ds, args.by, args.target, reference, undefined=args.undefined, min_sd=args.min_sd, moments=moments())
        maps.update(dprime=d, t=t)
        cache["t"] = t
        figure(fg.plot_dprime_map, d, "dprime")
        return {"target": d.attrs["target"], "reference": d.attrs["reference"], "dprime": _stats(d.values),
                "t": _stats(t.values), "n_dprime_above_threshold": int(np.sum(d.values > args.threshold))}

    def run_preference() -> dict[str, Any]:
        p = pref()
        labels, counts = np.unique(np.asarray(p.values).astype(str), return_counts=True)
        maps["preference"] = p
        figure(fg.plot_preference_map, p, "preference")
        return {"threshold": args.threshold, "classes": p.attrs["classes"],
                "counts": dict(zip(labels.tolist(), counts.tolist()))}

    def run_clustering() -> dict[str, Any]:
        ci = clustering_index(pref(), args.n_perm, args.seed, connectivity=args.connectivity, **adjacency)
        figure(fg.plot_clustering_null, ci, "clustering_null")
        return scalars(ci)

    def run_graph() -> dict[str, Any]:
        G = neighbour_graph(ds, connectivity=args.connectivity, values=pref(), **adjacency)
        comps = component_sizes(G)
        try:
            q = preference_modularity(G)
        except CortexsimError:  # no edge between preferring units
            q = None
        path = Path(f"{stem}_graph.graphml")
        write_graphml(G, path)
        return {"n_nodes": G.number_of_nodes(), "n_edges": G.number_of_edges(), **G.graph, "modularity": q,
                "n_components": int(comps.sizes["component"]),
                "largest_components": comps["size"].values[:10].tolist(), "graphml": path.name}

    def numbers() -> xr.Dataset:
        if "numbers" not in cache:
            cache["numbers"] = number_map(ds, args.numbers_by, args.threshold, undefined=args.undefined)
        return cache["numbers"]

    def run_numbers() -> dict[str, Any]:
        nm = numbers()
        maps.update(preferred_numerosity=nm["preferred_numerosity"], tuning_width=nm["tuning_width"])
        figure(lambda v, path, formats: fg.plot_unit_map(v, path, formats, label="preferred numerosity"),
               nm["preferred_numerosity"], "preferred_numerosity")
        figure(fg.plot_tuning_curves, nm["tuning"], "number_tuning")
        return {"n_selective": int(nm["selective"].sum()), "tuning_width": _stats(nm["tuning_width"].values),
                "preferred": _stats(nm["preferred_numerosity"].values)}

    def run_topography() -> dict[str, Any]:
        tm = topography_index(numbers(), args.n_perm, args.seed, **adjacency)
        figure(fg.plot_clustering_null, tm, "topography_null")
        return scalars(tm.drop_vars("proximity"))

    def run_orientation() -> dict[str, Any]:
        o = ori()
        maps.update({k: o[k] for k in ("preferred_orientation_deg", "preferred_sf_cpd", "circular_variance", "osi")})
        figure(fg.plot_orientation_map, o, "orientation")
        return {"circular_variance": _stats(o["circular_variance"].values), "osi": _stats(o["osi"].values),
                "preferred_sf_cpd": _stats(o["preferred_sf_cpd"].values)}

    steps = {"selectivity": run_selectivity, "preference": run_preference, "clustering": run_clustering,
             "graph": run_graph, "numbers": run_numbers, "topography": run_topography, "orientation": run_orientation,
             **part2_steps(ds, args, cache, ori, moments, figure)}
    for name in names:
        try:
            res[name] = steps[name]()
        except CortexsimError as exc:  # e.g. no preferring unit in this area: record it, go on
            print(f"cortexsim analyze: {area}/{name}: {exc}", file=sys.stderr)
            res[name] = {"error": str(exc)}
    return res, maps, figs


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
