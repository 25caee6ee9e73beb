"""Hannagan's Reset networks: number topography on the grid, Reset(n) for several n, at CPU scale.

    python reproductions/reset/run.py --out runs/reset                       # Reset(1), (2), (4); 32 px
    python reproductions/reset/run.py --out runs/reset --image-size 16 --steps 300   # cheaper

Digits 0–9 (rendered in six DejaVu fonts + three quarters of scikit-learn's handwritten scans)
are mapped onto 100-dimensional number codes (:func:`cortexsim.stimuli.number_codes`) with
binary cross-entropy and Adam (lr 1e-3), Reset's recipe; the grid (32 × 32 tanh units) is
recorded on held-out digits (two other fonts and the other scans). From the Sheets alone:
preferred number per unit (d′ > 2), Reset's clustering index and topography index, each
against 200 shuffled maps. Writes ``results.json``, ``results.md`` and ``maps.png``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Finding, parser, write_results  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "reproduction_reset", batch_size=100)
    p.add_argument("--n", default="1,2,4", help="sub-networks per side, comma-separated")
    p.add_argument("--steps", type=int, default=600, help="Adam steps per network (batch 100)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--per-digit", type=int, default=300, help="rendered training images per digit")
    p.add_argument("--n-perm", type=int, default=200)
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    import torch

    from cortexsim.adapters.trainer import load_trained
    from cortexsim.io import open_sheet
    from cortexsim.study import map_result, number_task, train_in_memory

    task = number_task(image_size=args.image_size, per_digit=args.per_digit, seed=args.seed)
    x, y = task.tensors("train")
    xh, yh = task.tensors("heldout")
    codes = task.code_tensor()
    results, numbers = {}, {}
    for n in (int(v) for v in args.n.split(",")):
        label = f"Reset({n})"
        run = args.out / "runs" / f"reset{n}"
        build = {"method": "reset", "arch": "resnet20", "num_classes": codes.shape[1], "layout": None, "lam": 0.0,
                 "layers": None, "seed": args.seed, "image_size": args.image_size, "kw": {"n": n, "m": 32}}
        sheet = args.out / "sheets" / f"reset{n}.h5"
        if sheet.is_file() and (run / "model.pt").is_file():  # an earlier run of this script: statistics only
            res = json.loads((run / "config.json").read_text())["resolved"]
        else:
            res = train_in_memory(run, build, x, y, steps=args.steps, codes=codes, seed=args.seed, heldout=(xh, yh),
                                  recipe_overrides={"batch_size": args.batch_size}, desc=f"train {label}",
                                  device=args.device)
            net = load_trained(run, map_location=args.device)
            with torch.inference_mode():
                net.export_cortex().record(task.heldout, batch_size=200, out=sheet, device=args.device)
        r = map_result(open_sheet(sheet), label, by="numerosity", n_perm=args.n_perm, seed=args.seed, ordered=True)
        results[label] = r
        numbers[label] = {**r.row(), "heldout_decoding_accuracy": res["heldout_accuracy"],
                          "train_decoding_accuracy": res["train_accuracy"], "train_seconds": res["seconds"]}
        print(label, {k: round(v, 3) if isinstance(v, float) else v for k, v in numbers[label].items()}, flush=True)
    _figure(results, args.out / "maps.png")

    labels = list(numbers)
    ti = {k: numbers[k].get("topography_index", float("nan")) for k in labels}
    tp = {k: numbers[k].get("topography_p_value", float("nan")) for k in labels}
    ci = {k: numbers[k]["clustering_index"] for k in labels}
    cp = {k: numbers[k]["clustering_p_value"] for k in labels}
    fmt = lambda d, q: ", ".join(f"{k} {d[k]:.2f} (p {q[k]:.3g})" for k in d)  # noqa: E731
    multi = [k for k in labels if k != "Reset(1)"]
    findings = [
        Finding("clustering index > 0 (same-preference clusters larger than in shuffled maps)",
                "positive for every Reset(n), n = 1…8 (Fig. 6, middle)", fmt(ci, cp),
                all(ci[k] > 0 and cp[k] < 0.05 for k in labels)),
        Finding("topography index ≈ 0 for Reset(1)", "close to absent in Reset(1) (Fig. 6, bottom)",
                fmt({"Reset(1)": ti.get("Reset(1)", float("nan"))}, {"Reset(1)": tp.get("Reset(1)", float("nan"))})
                if "Reset(1)" in ti else "not run", None if "Reset(1)" not in ti else bool(tp["Reset(1)"] > 0.05)),
        Finding("topography index > 0 for Reset(n ≥ 2)", "measurable in Reset(2), (4), (8)",
                fmt({k: ti[k] for k in multi}, {k: tp[k] for k in multi}) if multi else "not run",
                None if not multi else all(ti[k] > 0 and tp[k] < 0.05 for k in multi)),
        Finding("topography index grows with n", "tends to increase with n",
                ", ".join(f"{k} {ti[k]:.2f}" for k in labels),
                None if len(labels) < 2 else all(ti[a] <= ti[b] for a, b in zip(labels, labels[1:]))),
    ]
    write_results(args.out, findings, numbers, vars(args) | {"out": str(args.out)}, time.perf_counter() - t0)
    return 0


def _figure(results: dict, path: Path) -> None:
    import numpy as np
    import pandas as pd
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    from cortexsim.grid import Grid, rasterize, unit_positions

    fig = Figure(figsize=(3.6 * len(results) + 1, 3.6), layout="constrained")
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    cmap = ListedColormap([colormaps["viridis"](i / 9) for i in range(10)]).with_extremes(bad="white")
    im = None
    for ax, (label, r) in zip(axes, results.items()):
        num = pd.to_numeric(pd.Series(np.asarray(r.preference.values).astype(str)), errors="coerce").to_numpy()
        img = rasterize(num, unit_positions(r.preference, ndim=2), statistic="mean")
        im = ax.imshow(img.values, origin="lower", extent=Grid.of(img).extent(), cmap=cmap, vmin=-0.5, vmax=9.5,
                       interpolation="nearest")
        t = r.topography or {"index": float("nan"), "p_value": float("nan")}
        ax.set_title(f"{label}: topography {t['index']:.2f} (p {t['p_value']:.2g})", fontsize=9)
    fig.colorbar(im, ax=list(axes), ticks=range(10), label="preferred number (white: d′ ≤ 2)")
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
