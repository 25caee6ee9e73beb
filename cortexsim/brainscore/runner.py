"""Brain-Score side of cortexsim: run by the Brain-Score environment's Python, never imported by cortexsim.

    python -I runner.py COMMAND REQUEST.json

It reads a JSON request (paths to NetCDF files and options), does the work with
brainscore-vision 2.4.2 and writes ``result.json`` next to the request (or
``error.json`` and exit status 3 for an error it can explain). Only the
standard library, numpy, xarray 2022 and Brain-Score are available here.

Commands
--------
probe      versions, site-packages, and whether the network is reachable (it must not be)
score      Brain-Score metrics (and ceilings) of model vs neural NeuroidAssemblies
look_at    load a model plugin by id and record its committed regions on local images
benchmark  score a model plugin on a benchmark plugin folder (e.g. cortexsim's tissue correlation)

Safety: a socket guard installed before anything else refuses every non-local
connection, and only local plugins, local files and the metric registry are
used — none of Brain-Score's S3-backed loaders is ever called from here.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path

HANDLED_EXIT = 3
BLOCKED = "cortexsim: network access is blocked in the Brain-Score runner"


# ----------------------------------------------------------------------------- network guard
def _guard_network() -> None:
    """Refuse every connection that is not to a Unix socket, and every name lookup."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)
        raise OSError(errno.ENETUNREACH, f"{BLOCKED} (connect to {address!r})")

    def connect_ex(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect_ex(self, address)
        return errno.ENETUNREACH

    def getaddrinfo(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, f"{BLOCKED} (name lookup of {host!r})")

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
    socket.create_connection = lambda address, *a, **k: (_ for _ in ()).throw(
        OSError(errno.ENETUNREACH, f"{BLOCKED} (connection to {address!r})"))


class InputError(Exception):
    """A request the runner cannot honour; its message goes back to cortexsim."""


# ----------------------------------------------------------------------------- helpers
def _assembly(path: str | os.PathLike):
    """NeuroidAssembly from an exchange NetCDF file (variable ``responses`` + coords on its dims)."""
    import xarray as xr
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    with xr.open_dataset(path, engine="netcdf4") as ds:
        ds = ds.load()
    var = ds["responses"]
    coords = {name: (c.dims, c.values) for name, c in ds.coords.items() if c.dims and set(c.dims) <= set(var.dims)}
    coords = {k: v for k, v in coords.items() if k not in var.dims}
    return NeuroidAssembly(var.values, coords=coords, dims=list(var.dims))


def _write_assembly(assembly, path: Path) -> None:
    """An assembly (MultiIndex dims) as a flat NetCDF file: ``responses`` + every coord level as a variable."""
    import numpy as np
    import xarray as xr
    from brainscore_core.supported_data_standards.brainio.assemblies import walk_coords

    coords = {}
    for name, dims, values in walk_coords(assembly):
        if not set(dims) <= set(assembly.dims):
            continue
        values = np.asarray(values)
        if values.dtype == object:
            if values.ndim != 1 or any(isinstance(v, (tuple, list, np.ndarray)) for v in values):
                continue  # e.g. time_bin tuples: no flat NetCDF form, and nothing cortexsim reads
            values = values.astype(str)
        coords[name] = (dims, values)
    ds = xr.Dataset({"responses": (assembly.dims, np.asarray(assembly.values))}, coords=coords)
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, path)


def _scalar(score) -> float:
    import numpy as np

    value = np.asarray(getattr(score, "values", score), dtype=float)
    if value.size != 1:
        raise InputError(f"the metric returned {value.shape} values, expected one score")
    return float(value.reshape(()))


def _error(score) -> float | None:
    err = getattr(score, "attrs", {}).get("error")
    return None if err is None else _scalar(err)


def _plugin_root(kind: str):
    """The ``brainscore_vision.<kind>`` package (models / benchmarks / metrics)."""
    import importlib

    return importlib.import_module(f"brainscore_vision.{kind}")


def _add_plugin(kind: str, folder: str | os.PathLike, identifier: str, registry: str):
    """Import plugin ``folder`` as ``brainscore_vision.<kind>.<folder name>`` and return that module.

    The folder's parent joins the package's ``__path__`` (nothing is written into the
    Brain-Score installation), so the plugin's own ``from brainscore_vision import ...``
    and relative imports work as in a checkout of brainscore-vision. Refuses a folder
    name Brain-Score already ships and an identifier a shipped plugin registers.
    """
    import importlib

    src = Path(folder).resolve()
    if not (src / "__init__.py").is_file():
        raise InputError(f"{src} is not a Brain-Score plugin folder (no __init__.py)")
    package = _plugin_root(kind)
    shipped = Path(package.__file__).parent
    if (shipped / src.name).exists():
        raise InputError(f"Brain-Score ships a {kind} plugin folder named {src.name!r}; rename yours")
    for other in shipped.iterdir():
        init = other / "__init__.py"
        if other.name.startswith(("_", ".")) or not init.is_file():
            continue
        text = init.read_text(encoding="utf-8", errors="replace").replace('"', "'")
        if f"{registry}['{identifier}']" in text:
            raise InputError(f"the identifier {identifier!r} is already registered by Brain-Score's {kind} plugin "
                             f"{other.name!r}; choose another identifier")
    if str(src.parent) not in list(package.__path__):
        package.__path__.append(str(src.parent))
    return importlib.import_module(f"{package.__name__}.{src.name}")


def _registered(kind: str, folder: str | os.PathLike, identifier: str, registry: str):
    """The registry entry ``identifier`` of plugin ``folder`` (imported with :func:`_add_plugin`), called."""
    import brainscore_vision

    _add_plugin(kind, folder, identifier, registry)
    table = getattr(brainscore_vision, registry)
    if identifier not in table:
        raise InputError(f"the plugin {folder} does not register {identifier!r} in {registry} "
                         f"(it registers {sorted(table)[:5]})")
    return table[identifier]()


def _stimulus_set(stimuli: list[dict]):
    """A local StimulusSet (no identifier, so nothing is cached or looked up) from [{stimulus_id, path, ...}]."""
    import pandas as pd
    from brainscore_core.supported_data_standards.brainio.stimuli import StimulusSet

    missing = [s["path"] for s in stimuli if not Path(s["path"]).is_file()]
    if missing:
        raise InputError(f"{len(missing)} stimulus files do not exist, e.g. {missing[0]}")
    table = pd.DataFrame([{k: v for k, v in s.items() if k != "path"} for s in stimuli])
    stimulus_set = StimulusSet(table)
    stimulus_set.stimulus_paths = {s["stimulus_id"]: Path(s["path"]) for s in stimuli}
    stimulus_set.identifier = None
    return stimulus_set


# ----------------------------------------------------------------------------- commands
def probe(request: dict, work: Path) -> dict:
    """Versions and where Brain-Score is installed; proves the network is unreachable from here."""
    import importlib.metadata as md

    import brainscore_vision  # noqa: F401  (a broken install fails here)

    versions = {name: md.version(name) for name in
                ("brainscore-vision", "brainscore-core", "numpy", "xarray", "pandas", "scikit-learn", "torch",
                 "torchvision")}
    try:
        socket.create_connection(("169.254.169.254", 80), timeout=2).close()
        reach = "reachable"
    except OSError as exc:
        reach = f"blocked: {exc}"
    interfaces = sorted(name for _, name in socket.if_nameindex()) if hasattr(socket, "if_nameindex") else []
    return {"versions": versions, "python": sys.version.split()[0],
            "site_packages": str(Path(brainscore_vision.__file__).parent.parent),
            "metadata_address": reach, "interfaces": interfaces}


#: cortexsim name -> (Brain-Score metric id, kind). "regression" metrics are cross-validated predictivity.
METRICS = {
    "pls": ("pls", "regression"), "ridge": ("ridge", "regression"),
    "linear_predictivity": ("linear_predictivity", "regression"),
    "neuron_to_neuron": ("neuron_to_neuron", "regression"), "reverse_pls": ("reverse_pls", "regression"),
    "rdm": ("rdm", "similarity"), "rdm_cv": ("rdm_cv", "similarity"),
    "cka": ("cka", "similarity"), "cka_cv": ("cka_cv", "similarity"),
}


def _metric(name: str, stratification_coord: str | None, splits: int):
    from brainscore_vision import load_metric

    bs_id, kind = METRICS[name]
    if bs_id in ("rdm", "cka"):
        return load_metric(bs_id), kind
    cv = {"stratification_coord": stratification_coord, "splits": splits}
    return load_metric(bs_id, crossvalidation_kwargs=cv), kind


def _ceiling(neural_reps, kind: str, name: str):
    """Split-half internal consistency of the neural data (Spearman-Brown corrected), as Brain-Score computes it."""
    from brainscore_vision import load_metric
    from brainscore_vision.metrics.internal_consistency.ceiling import InternalConsistency

    if kind == "regression":
        return load_metric("internal_consistency")(neural_reps)
    base = "rdm" if name.startswith("rdm") else "cka"
    return InternalConsistency(consistency_metric=load_metric(base), aggregate=None)(neural_reps)


def score(request: dict, work: Path) -> dict:
    """Metrics of model vs neural data, with ceilings from repetitions and a stimulus-shuffled control."""
    import numpy as np
    from brainscore_vision.benchmark_helpers.neural_common import average_repetition

    model = _assembly(request["model"])
    neural_reps = _assembly(request["neural"])
    with_reps = "repetition" in _levels(neural_reps, "presentation")  # MultiIndex levels are not in .coords
    has_reps = with_reps and len(np.unique(neural_reps["repetition"].values)) > 1
    neural = average_repetition(neural_reps) if with_reps else neural_reps
    strat = request.get("stratification_coord")
    splits = int(request.get("splits", 10))
    out = {"n_stimuli": int(neural.sizes["presentation"]), "n_units": int(model.sizes["neuroid"]),
           "n_neuroids": int(neural.sizes["neuroid"]), "metrics": {}}
    shuffled = None
    if request.get("shuffle_seed") is not None:
        order = np.random.default_rng(int(request["shuffle_seed"])).permutation(model.sizes["presentation"])
        shuffled = model.copy(data=np.asarray(model.values)[order])
    ceilings: dict[str, tuple[float, float | None]] = {}  # one split-half ceiling per consistency metric
    for name in request["metrics"]:
        if name not in METRICS:
            raise InputError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        t0 = time.perf_counter()
        metric, kind = _metric(name, strat, splits)
        raw = metric(model, neural)
        rec = {"brainscore_id": METRICS[name][0], "kind": kind, "raw": _scalar(raw), "error": _error(raw)}
        if shuffled is not None:
            ctrl = _metric(name, strat, splits)[0](shuffled, neural)
            rec["shuffled"] = {"raw": _scalar(ctrl), "error": _error(ctrl)}
        if has_reps and request.get("ceiling", True):
            key = "internal_consistency" if kind == "regression" else name.removesuffix("_cv")
            if key not in ceilings:
                ceiling = _ceiling(neural_reps, kind, name)
                ceilings[key] = (_scalar(ceiling), _error(ceiling))
            rec["ceiling"], rec["ceiling_error"] = ceilings[key]
            if kind == "regression":  # Brain-Score 2.4.2 NeuralBenchmark: explained variance r² / ceiling
                rec["score"] = rec["raw"] ** 2 / rec["ceiling"]
                rec["ceiling_rule"] = "raw**2 / ceiling (explained variance, Brain-Score 2.4.2 NeuralBenchmark)"
            else:
                rec["score"] = rec["raw"] / rec["ceiling"]
                rec["ceiling_rule"] = "raw / ceiling"
        else:
            rec["ceiling"] = rec["ceiling_error"] = None
            rec["score"] = rec["raw"]
            rec["ceiling_rule"] = "none (no repetitions: raw score)"
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        out["metrics"][name] = rec
    return out


def look_at(request: dict, work: Path) -> dict:
    """Build a model plugin's commitment from its folder and record each requested region on local images."""
    out_dir = Path(request["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = _registered("models", request["plugin"], request["model_id"], "model_registry")
    t_load = time.perf_counter() - t0
    stimuli = _stimulus_set(request["stimuli"])
    region_map = dict(model.layer_model.region_layer_map)
    regions = request.get("regions") or list(region_map)
    unknown = [r for r in regions if r not in region_map]
    if unknown:
        raise InputError(f"the model commits no layer to {unknown}; it maps {region_map}")
    result = {"identifier": model.identifier, "region_layer_map": region_map,
              "visual_degrees": model.visual_degrees(), "seconds_load": round(t_load, 3), "regions": {}}
    t1 = time.perf_counter()
    for region in regions:
        model.start_recording(region, time_bins=[(70, 170)])
        act = model.look_at(stimuli)
        if "time_bin" in act.dims:
            act = act.squeeze("time_bin", drop=True)
        act = act.transpose("presentation", "neuroid")
        path = out_dir / f"{region}.nc"
        _write_assembly(act, path)
        result["regions"][region] = {"file": str(path), "shape": list(act.shape), "coords": _levels(act)}
    result["seconds_look_at"] = round(time.perf_counter() - t1, 3)
    if request.get("run_tests"):
        result["tests"] = _plugin_tests(request["plugin"], work)
    return result


def _plugin_tests(folder: str, work: Path) -> dict[str, str]:
    """Call the ``test_*`` functions of a plugin's ``test.py`` (pytest is not installed here): name -> 'passed'."""
    import importlib
    import inspect

    module = importlib.import_module(f"brainscore_vision.models.{Path(folder).resolve().name}.test")
    results = {}
    for name, fn in sorted(vars(module).items()):
        if not (name.startswith("test_") and callable(fn)):
            continue
        tmp = work / "plugin_tests" / name
        tmp.mkdir(parents=True, exist_ok=True)
        kwargs = {"tmp_path": tmp} if "tmp_path" in inspect.signature(fn).parameters else {}
        try:
            fn(**kwargs)
            results[name] = "passed"
        except Exception as exc:  # noqa: BLE001 - reported back, one line per test
            results[name] = f"failed: {type(exc).__name__}: {exc}"
    return results


def _levels(assembly, dim: str = "neuroid") -> list[str]:
    """Names of the coords (MultiIndex levels included) on ``dim`` alone."""
    from brainscore_core.supported_data_standards.brainio.assemblies import walk_coords

    return sorted(name for name, dims, _ in walk_coords(assembly) if tuple(dims) == (dim,))


def benchmark(request: dict, work: Path) -> dict:
    """Score a model plugin on a benchmark plugin folder (and its metric plugin folder), all local files."""
    if request.get("metric_plugin"):
        _add_plugin("metrics", request["metric_plugin"], request["metric_id"], "metric_registry")
    bench = _registered("benchmarks", request["benchmark_plugin"], request["benchmark_id"], "benchmark_registry")
    model = _registered("models", request["model_plugin"], request["model_id"], "model_registry")
    t0 = time.perf_counter()
    result = bench(model)
    attrs = {k: (_scalar(v) if hasattr(v, "values") else v) for k, v in result.attrs.items()
             if isinstance(v, (int, float, str, list, dict)) or getattr(v, "size", 2) == 1}
    return {"score": _scalar(result), "attrs": attrs, "ceiling": _scalar(bench.ceiling),
            "seconds": round(time.perf_counter() - t0, 3)}


COMMANDS = {"probe": probe, "score": score, "look_at": look_at, "benchmark": benchmark}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    _guard_network()
    if len(argv) != 2 or argv[0] not in COMMANDS:
        print(f"usage: runner.py {{{'|'.join(COMMANDS)}}} REQUEST.json", file=sys.stderr)
        return 2
    req_path = Path(argv[1])
    work = req_path.parent
    try:
        request = json.loads(req_path.read_text())
        result = COMMANDS[argv[0]](request, work)
    except InputError as exc:
        _write_json(work / "error.json", {"kind": "input", "message": str(exc)})
        return HANDLED_EXIT
    except ImportError as exc:
        traceback.print_exc()
        _write_json(work / "error.json", {"kind": "env", "message": f"Brain-Score cannot be imported ({exc})"})
        return HANDLED_EXIT
    except Exception as exc:  # noqa: BLE001 - everything else is reported with its traceback in the log
        traceback.print_exc()
        _write_json(work / "error.json", {"kind": "run", "message": f"Brain-Score failed: {type(exc).__name__}: {exc}"})
        return HANDLED_EXIT
    _write_json(work / "result.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
