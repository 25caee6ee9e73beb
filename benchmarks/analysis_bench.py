"""Benchmark of the Sheet analyses at scale: d′ maps, clustering index, smoothness, patches.

A synthetic Sheet (units on a square grid over a 100 mm × 100 mm sheet, five
stimulus domains, one planted selective disc per domain) is built either in memory
or — with ``--stream`` (default above 200k units) — written stimulus batch by batch
with :class:`cortexsim.SheetWriter` and reopened lazily with ``cortexsim.open_sheet``
(dask), so the full response matrix is never in memory.

For each analysis the wall time and the peak resident memory *above the level
before the call* (psutil sampling every 20 ms) are recorded. A straightforward
Python-loop implementation of d′ and of pairwise smoothness runs on a 5k-unit
subset next to the vectorised one, and their time ratio is reported.

Usage::

    python benchmarks/analysis_bench.py --quick                 # 20k units × 200 stimuli
    python benchmarks/analysis_bench.py --units 100000 --stimuli 2000
    python benchmarks/analysis_bench.py --units 1000000 --stimuli 1000 --tmpdir /big/disk

Results go to ``benchmarks/results/analysis_bench_<date>.json`` (``--out`` to change).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
try:
    import psutil
except ImportError:  # pragma: no cover - benchmarks need the bench extra
    raise SystemExit("analysis_bench needs psutil: pip install -e \".[bench]\"") from None

import cortexsim as cx

DOMAINS = ("bodies", "characters", "faces", "objects", "places")
SIDE_MM = 100.0
#: (x, y, radius) of the disc of units selective for each domain, in mm
DISCS = {"bodies": (25, 25, 12), "characters": (75, 25, 10), "faces": (50, 50, 14), "objects": (25, 75, 9), "places": (75, 75, 15)}


# --------------------------------------------------------------------------- synthetic sheet


def layout(n_units: int) -> dict[str, np.ndarray]:
    """Unit coords of a square grid (row-major) covering SIDE_MM × SIDE_MM."""
    side = int(np.ceil(np.sqrt(n_units)))
    idx = np.arange(n_units)
    row, col = np.divmod(idx, side)
    step = SIDE_MM / side
    return {
        "area": np.full(n_units, "IT"), "layer": np.full(n_units, "layer4"), "channel": np.zeros(n_units, np.int64),
        "row": row.astype(np.int64), "col": col.astype(np.int64),
        "x_mm": (col + 0.5) * step, "y_mm": (row + 0.5) * step, "unit_id": idx.astype(np.int64),
    }


def stimuli(n_stim: int) -> pd.DataFrame:
    dom = np.asarray(DOMAINS)[np.arange(n_stim) % len(DOMAINS)]
    return pd.DataFrame({"stimulus_id": [f"s{i:06d}" for i in range(n_stim)], "domain": dom})


def selective_gain(coords: dict[str, np.ndarray]) -> np.ndarray:
    """(n_domains, n_units) response gain: 3 inside a domain's disc, 0 outside."""
    x, y = coords["x_mm"], coords["y_mm"]
    return np.stack([3.0 * (np.hypot(x - cx_, y - cy_) <= r) for cx_, cy_, r in DISCS.values()]).astype(np.float32)


def response_batch(start: int, stop: int, gain: np.ndarray, seed: int) -> np.ndarray:
    """Responses of stimuli start…stop-1: unit noise plus the domain's disc gain (deterministic per stimulus)."""
    rng = np.random.default_rng([seed, start])
    out = rng.standard_normal((stop - start, gain.shape[1]), dtype=np.float32)
    out += gain[np.arange(start, stop) % len(DOMAINS)]
    return out


def build_sheet(n_units: int, n_stim: int, stream_to: Path | None, seed: int = 0, batch: int = 16):
    coords = layout(n_units)
    gain = selective_gain(coords)
    table = stimuli(n_stim)
    if stream_to is None:
        resp = np.concatenate([response_batch(s, min(s + 256, n_stim), gain, seed) for s in range(0, n_stim, 256)])
        ds = cx.make_sheet(resp, stimuli=table, **{k: v for k, v in coords.items()})
        return ds, None
    with cx.SheetWriter(stream_to, n_stim, coords, table, {"model": "synthetic benchmark"}, compression=None) as w:
        for s in range(0, n_stim, batch):
            w.write(response_batch(s, min(s + batch, n_stim), gain, seed))
    return cx.open_sheet(stream_to), stream_to


# --------------------------------------------------------------------------- measuring


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``fn``; return (result, seconds, peak RSS above the starting RSS in MiB)."""
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        dt_s = time.perf_counter() - t0
        stop.set()
        t.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return out, dt_s, (peak[0] - base) / 2**20


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- loop baselines (5k subset)


def loop_dprime(resp: np.ndarray, labels: np.ndarray, target: str) -> np.ndarray:
    """d′ one unit at a time (the straightforward implementation)."""
    out = np.empty(resp.shape[1])
    is_t = labels == target
    for u in range(resp.shape[1]):
        a, b = resp[is_t, u], resp[~is_t, u]
        out[u] = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return out


def loop_smoothness(resp: np.ndarray, pos: np.ndarray, a: np.ndarray, b: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Pair correlations one pair at a time, then binned."""
    sums, counts = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for i, j in zip(a, b):
        d = np.hypot(*(pos[i] - pos[j]))
        k = np.searchsorted(edges, d, side="right") - 1
        if 0 <= k < len(sums):
            sums[k] += np.corrcoef(resp[:, i], resp[:, j])[0, 1]
            counts[k] += 1
    return sums / counts


def loop_comparison(ds, n_sub: int, n_pairs: int) -> dict[str, Any]:
    from cortexsim.analysis import dprime, smoothness
    from cortexsim.analysis.smoothness import sample_pairs

    sub = ds.isel(unit=slice(0, n_sub)).load()
    resp = sub["responses"].values
    labels = np.asarray(sub["domain"].values).astype(str)
    res: dict[str, Any] = {"units": int(sub.sizes["unit"]), "stimuli": int(sub.sizes["stimulus"])}
    d_vec, t_vec, _ = measure(lambda: dprime(sub, by="domain", target="faces"))
    d_loop, t_loop, _ = measure(lambda: loop_dprime(resp, labels, "faces"))
    res["dprime"] = {"vectorised_s": t_vec, "loop_s": t_loop, "ratio": t_loop / t_vec,
                     "max_abs_diff": float(np.max(np.abs(d_vec.values - d_loop)))}
    pos = np.c_[sub["x_mm"].values, sub["y_mm"].values]
    a, b = sample_pairs(pos, n_pairs, 5.0, np.random.default_rng(0))
    edges = np.linspace(0, 5.0, 6)
    s_vec, t_vec, _ = measure(lambda: smoothness(sub, bins=edges, n_pairs=n_pairs, seed=0, shuffle=False))
    s_loop, t_loop, _ = measure(lambda: loop_smoothness(resp, pos, a, b, edges))
    res["smoothness"] = {"pairs": int(len(a)), "vectorised_s": t_vec, "loop_s": t_loop, "ratio": t_loop / t_vec,
                         "max_abs_diff": float(np.nanmax(np.abs(s_vec["similarity"].values - s_loop)))}
    return res


# --------------------------------------------------------------------------- main


def run(n_units: int, n_stim: int, stream: bool, tmpdir: str | None, n_pairs: int, n_sub: int) -> dict[str, Any]:
    from cortexsim.analysis import clustering_index, patches, preference_map, selectivity, smoothness

    record: dict[str, Any] = {"units": n_units, "stimuli": n_stim, "streamed_from_hdf5": stream, "ops": {}}
    with tempfile.TemporaryDirectory(dir=tmpdir) as tmp:
        path = Path(tmp) / "bench_sheet.h5" if stream else None
        (ds, _), t, mem = measure(lambda: build_sheet(n_units, n_stim, path))
        record["ops"]["build_sheet"] = {"seconds": t, "peak_mib": mem}
        if path is not None:
            record["file_gib"] = path.stat().st_size / 2**30
        ops: dict[str, Callable[[], Any]] = {}
        sel, t, mem = measure(lambda: selectivity(ds, by="domain", stat="dprime"))
        record["ops"]["dprime_maps_all_domains"] = {"seconds": t, "peak_mib": mem}
        pref = preference_map(sel, threshold=2.0)
        ops["clustering_index_20_perm"] = lambda: clustering_index(pref, n_perm=20, seed=0)
        ops["smoothness"] = lambda: smoothness(ds, bins=10, max_distance_mm=20.0, n_pairs=n_pairs, seed=0)
        ops["patches_faces_dprime"] = lambda: patches(sel.sel(category="faces").drop_vars("category"), threshold=2.0,
                                                      sigma_mm=2.4, min_area_mm2=100, stat="dprime")
        results: dict[str, Any] = {}
        for name, fn in ops.items():
            results[name], t, mem = measure(fn)
            record["ops"][name] = {"seconds": t, "peak_mib": mem}
            print(f"  {name:28s} {t:8.2f} s  peak +{mem:8.0f} MiB", flush=True)
        ci = results["clustering_index_20_perm"]
        record["checks"] = {
            "clustering_index": float(ci["index"]) if "index" in ci else None,
            "patches_faces_area_mm2": results["patches_faces_dprime"]["area_mm2"].values.tolist(),
            "planted_faces_area_mm2": float(np.pi * DISCS["faces"][2] ** 2),
            "smoothness_first_bin": float(results["smoothness"]["similarity"][0]),
            "smoothness_shuffled_first_bin": float(results["smoothness"]["similarity_shuffled"][0]),
        }
        record["loop_comparison_subset"] = loop_comparison(ds, n_sub, min(n_pairs, 5000))
        ds.close()
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--units", type=int, nargs="+", default=[100_000, 1_000_000], help="sheet sizes (units)")
    p.add_argument("--stimuli", type=int, nargs="+", default=[2000, 1000], help="stimuli per size (same length as --units)")
    p.add_argument("--quick", action="store_true", help="one small run: 20k units × 200 stimuli")
    p.add_argument("--stream", choices=("auto", "yes", "no"), default="auto",
                   help="write the sheet to HDF5 and analyse it lazily (auto: above 200k units)")
    p.add_argument("--pairs", type=int, default=20_000, help="pairs sampled by smoothness")
    p.add_argument("--subset", type=int, default=5000, help="units of the loop-vs-vectorised comparison")
    p.add_argument("--tmpdir", default=None, help="folder for the streamed HDF5 file (needs units × stimuli × 4 bytes)")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/analysis_bench_<date>.json)")
    args = p.parse_args(argv)
    sizes = [(20_000, 200)] if args.quick else list(zip(args.units, args.stimuli))
    if not args.quick and len(args.units) != len(args.stimuli):
        p.error("--units and --stimuli need the same number of values")
    report: dict[str, Any] = {
        "benchmark": "cortexsim analysis_bench",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"cpu": cpu_model(), "logical_cores": os.cpu_count(),
                   "ram_gib": round(psutil.virtual_memory().total / 2**30, 1)},
        "versions": {"cortexsim": cx.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "runs": [],
    }
    for n_units, n_stim in sizes:
        stream = args.stream == "yes" or (args.stream == "auto" and n_units > 200_000)
        print(f"{n_units} units × {n_stim} stimuli ({'streamed HDF5/dask' if stream else 'in memory'})", flush=True)
        report["runs"].append(run(n_units, n_stim, stream, args.tmpdir, args.pairs, args.subset))
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"analysis_bench_{dt.date.today():%Y-%m-%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():  # keep earlier runs of the same day (e.g. --quick then a full size)
        previous = json.loads(out.read_text())
        report["runs"] = previous.get("runs", []) + report["runs"]
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
