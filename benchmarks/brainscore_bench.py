"""Brain-Score metric cost on big Sheets, and what PCA / unit subsampling buy.

A made-up IT Sheet of ``--units`` units × ``--stimuli`` stimuli and 60 neuroids mixed
linearly from 256 of its units (+ noise, 3 repetitions). Timed in the Brain-Score
environment (one run of :func:`cortexsim.brainscore.score` per setting, Brain-Score's
10 cross-validation splits, no shuffled control): pls on all units, pls after PCA to ``--pca`` components,
pls on a random ``--subset`` of units, and ridge on all units. Also records the
environment's setup time and size (its stamp and ``du``).

Results go to ``benchmarks/results/brainscore_bench_<device>_<date>.json``::

    python benchmarks/brainscore_bench.py                 # 25k units, 200 stimuli (several minutes on 2 cores)
    python benchmarks/brainscore_bench.py --units 5000    # quick
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import xarray as xr

import cortexsim as cx
from cortexsim.brainscore import find_env, score


def made_up(n_units: int, n_stim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_stim, n_units)).astype(np.float32)
    ids = [f"s{i}" for i in range(n_stim)]
    sheet = cx.make_sheet(x, x_mm=rng.uniform(0, 10, n_units), y_mm=rng.uniform(0, 10, n_units), area="IT",
                          stimuli={"stimulus_id": ids})
    drivers = rng.choice(n_units, 256, replace=False)
    y = x[:, drivers] @ rng.normal(size=(256, 60)) / 16
    reps = np.stack([y + 0.7 * rng.normal(size=y.shape) for _ in range(3)])
    neural = xr.DataArray(reps, dims=("repetition", "presentation", "neuroid"),
                          coords={"stimulus_id": ("presentation", ids),
                                  "neuroid_id": ("neuroid", [f"n{i}" for i in range(60)]),
                                  "region": ("neuroid", ["IT"] * 60)})
    return sheet, neural


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=25_000)
    ap.add_argument("--stimuli", type=int, default=200)
    ap.add_argument("--pca", type=int, default=1000)
    ap.add_argument("--subset", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    env = find_env()
    sheet, neural = made_up(args.units, args.stimuli)
    runs = {"pls_all_units": dict(metric="pls"), f"pls_pca{args.pca}": dict(metric="pls", n_components=args.pca),
            f"pls_subset{args.subset}": dict(metric="pls", max_units=args.subset),
            "ridge_all_units": dict(metric="ridge")}
    res = {}
    for name, kw in runs.items():
        t0 = time.perf_counter()
        r = score(sheet, neural, stratification_coord=None, shuffle_control=False, **kw)
        res[name] = {"seconds_total": round(time.perf_counter() - t0, 1), "seconds_metric": r.seconds,
                     "raw": round(r.raw, 4), "ceiling": round(r.ceiling, 4), "n_units": r.n_units,
                     "reduction": r.reduction, "load_average": round(os.getloadavg()[0], 1)}
        print(f"{name:>18}: {r.seconds:7.1f} s in Brain-Score (metric + ceiling), {res[name]['seconds_total']:.1f} s "
              f"in all  raw {r.raw:.3f}  ceiling {r.ceiling:.3f}  [{r.reduction}]  load {os.getloadavg()[0]:.1f}",
              flush=True)
    size = subprocess.run(["du", "-sh", str(env.path)], capture_output=True, text=True).stdout.split()[0]
    date = dt.date.today().isoformat()
    record = {"benchmark": "brainscore_bench", "date": date, "device": "cpu", "cpus": os.cpu_count(),
              "units": args.units, "stimuli": args.stimuli, "neuroids": 60, "repetitions": 3, "splits": 10,
              "brainscore_env": {"setup_seconds": env.info.get("seconds"), "size": size,
                                 "versions": env.info.get("versions")},
              "cortexsim_version": cx.__version__, "results": res}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"brainscore_bench_cpu_{date}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
