"""Truong & Hasson: weight similarity (WS) vs activation similarity (AS) vs control, at CPU scale.

    python reproductions/ws_vs_as/run.py --out runs/ws_vs_as          # trains via `cortexsim demo` (~10 min, 2 cores)
    python reproductions/ws_vs_as/run.py --out runs/ws_vs_as --epochs 3   # a quick look

The three models are the demo's (:mod:`cortexsim.study.demo`): ``th_cifar`` twins on real
handwritten digits, λ = 1 for WS and AS, λ = 0 for the control, evaluated on held-out scans;
a fourth twin, AS with λ = 0.1 (the low end of the paper's sweep), is trained the same way.
On top of the demo's map statistics this script measures robustness to weight noise (RSM of
the class weight vectors and accuracy, noise on every weight tensor) and to white / pink /
salt-and-pepper input noise at the paper's levels. Writes ``results.json``, ``results.md``
and ``robustness.png`` into ``--out``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Finding, parser, write_results  # noqa: E402

WEIGHT_LEVELS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
AS_LOW = "AS (λ = 0.1)"


def _train_as_low(run: Path, config: dict, split, seed: int, device: str = "cpu") -> dict:
    """Train and record the demo's AS twin with λ = 0.1; its statistics row (as the demo's summary rows)."""
    import torch

    from cortexsim.adapters.trainer import load_trained
    from cortexsim.io import open_sheet
    from cortexsim.study import map_result, train_in_memory

    sheet = run / "sheet.h5"
    x, y = split.tensors("train")
    build = {"method": "as", "arch": config["arch"], "num_classes": 10, "layout": None, "lam": 0.1, "layers": None,
             "seed": seed, "image_size": config["image_size"], "kw": {}}
    if sheet.is_file():  # trained and recorded by an earlier run of this script
        res = json.loads((run / "config.json").read_text())["resolved"]
        return {**map_result(open_sheet(sheet), AS_LOW, by="numerosity", n_perm=config["n_perm"], seed=seed).row(),
                "heldout_accuracy": res["heldout_accuracy"], "train_accuracy": res["train_accuracy"]}
    res = train_in_memory(run, build, x, y, steps=config["epochs"] * (len(x) // 64), seed=seed,
                          heldout=split.tensors("heldout"), desc="train AS λ=0.1", device=device)
    with torch.inference_mode():
        load_trained(run, map_location=device).export_cortex().record(split.heldout, batch_size=256, out=sheet,
                                                                      device=device, progress=False)
    return {**map_result(open_sheet(sheet), AS_LOW, by="numerosity", n_perm=config["n_perm"], seed=seed).row(),
            "heldout_accuracy": res["heldout_accuracy"], "train_accuracy": res["train_accuracy"]}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "reproduction_ws_vs_as")
    p.add_argument("--epochs", type=int, default=None, help="demo epochs (default 30)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    import torch

    from cortexsim.adapters.trainer import load_trained
    from cortexsim.analysis.robustness import input_noise_robustness, weight_noise_robustness
    from cortexsim.stimuli import TRUONG_HASSON_LEVELS
    from cortexsim.study import run_demo, scan_split

    demo_dir = args.out / "demo"
    summary_path = demo_dir / "summary.json"
    if not summary_path.is_file():
        run_demo(demo_dir, seed=args.seed, epochs=args.epochs, device=args.device, progress=True)
    summary = json.loads(summary_path.read_text())
    rows = dict(summary["models"])
    split = scan_split(seed=args.seed)
    xh, yh = split.tensors("heldout")
    runs = {label: demo_dir / "runs" / label for label in rows}
    runs[AS_LOW] = args.out / "runs" / "AS_0.1"
    rows[AS_LOW] = _train_as_low(runs[AS_LOW], summary["config"], split, args.seed, args.device)
    weight, inputs = {}, {}
    for label, run in runs.items():
        net = load_trained(run, map_location=args.device)
        with torch.no_grad():
            w = weight_noise_robustness(net, "net.fc2", (xh, yh), WEIGHT_LEVELS, n_repeats=3, seed=args.seed,
                                        scope="all", device=args.device)
            n = input_noise_robustness(net, xh, yh, levels=TRUONG_HASSON_LEVELS, seed=args.seed, device=args.device)
        weight[label] = {"rsm": w["rsm_similarity"].mean("repeat").values.tolist(),
                         "accuracy": w["accuracy"].mean("repeat").values.tolist()}
        inputs[label] = {"drop": n["accuracy_drop"].values.tolist(), "kinds": list(n.kind.values)}
    _figure(weight, inputs, args.out / "robustness.png")

    ws, as_, ctrl, low = rows["WS"], rows["AS"], rows["control"], rows[AS_LOW]
    noisy = range(1, len(WEIGHT_LEVELS))  # every level > 0

    def above(key: str, label: str) -> int:  # levels at which ``label`` keeps more than the control
        return sum(weight[label][key][i] > weight["control"][key][i] for i in noisy)

    models = list(weight)
    drops = np.stack([np.asarray(inputs[k]["drop"]) for k in models])  # (model, kind, level)
    wins = np.bincount(np.argmin(drops, axis=0).ravel(), minlength=len(models))
    smooth = lambda r: f"{r['morans_i_mean']:.2f}"  # noqa: E731
    half = len(noisy) / 2
    findings = [
        Finding("WS maps are smoother than AS maps (Moran's I of the d′ maps, mean over digits)",
                "WS smooth, correlated neighbourhoods; AS lacks spatial smoothness",
                f"WS {smooth(ws)}, AS λ=1 {smooth(as_)}, AS λ=0.1 {smooth(low)}, control {smooth(ctrl)}",
                ws["morans_i_mean"] > max(as_["morans_i_mean"], low["morans_i_mean"]) + 0.1),
        Finding("AS raises correlation between all units, near or far (response r of shuffled pairs)",
                "AS: bimodal inter-unit correlation structure",
                f"AS λ=1 {as_['neighbour_correlation_shuffled']:.2f}, AS λ=0.1 {low['neighbour_correlation_shuffled']:.2f},"
                f" WS {ws['neighbour_correlation_shuffled']:.2f}, control {ctrl['neighbour_correlation_shuffled']:.2f}",
                min(as_["neighbour_correlation_shuffled"], low["neighbour_correlation_shuffled"])
                > max(ws["neighbour_correlation_shuffled"], ctrl["neighbour_correlation_shuffled"]) + 0.1),
        *[Finding(f"{k}: accuracy close to the control's (held-out, within 3 points)", "comparable across λ (Fig. 2)",
                  f"{rows[k]['heldout_accuracy']:.3f} vs {ctrl['heldout_accuracy']:.3f}",
                  abs(rows[k]["heldout_accuracy"] - ctrl["heldout_accuracy"]) < 0.03) for k in ("WS", "AS", AS_LOW)],
        *[Finding(f"{k}: accuracy under weight noise (all weights) above the control's at most levels",
                  "both WS and AS more robust than control",
                  f"{above('accuracy', k)} of {len(noisy)} levels; {k} / control at 0.1, 0.25, 0.5 × std: "
                  + ", ".join(f"{weight[k]['accuracy'][i]:.2f}/{weight['control']['accuracy'][i]:.2f}" for i in (1, 2, 3)),
                  above("accuracy", k) > half) for k in ("WS", "AS", AS_LOW)],
        *[Finding(f"{k}: class-weight RSM under weight noise more stable than the control's at most levels",
                  "both WS and AS more robust than control",
                  f"{above('rsm', k)} of {len(noisy)} levels; {k} / control at 0.5, 1 × std: "
                  + ", ".join(f"{weight[k]['rsm'][i]:.2f}/{weight['control']['rsm'][i]:.2f}" for i in (3, 4)),
                  above("rsm", k) > half) for k in ("WS", "AS", AS_LOW)],
        Finding("input noise on MNIST-like digits: WS most often the most robust (smallest accuracy drop)",
                "MNIST: WS most often most robust (Fig. 4)",
                ", ".join(f"{k} {int(w)}" for k, w in zip(models, wins)) + f" of {drops[0].size} (kind, level) cells "
                "(a low-accuracy model has less to lose)", models[int(np.argmax(wins))] == "WS"),
    ]
    write_results(args.out, findings, {"maps": rows, "weight_noise": weight, "input_noise": inputs,
                                       "weight_levels": WEIGHT_LEVELS, "input_levels": list(TRUONG_HASSON_LEVELS)},
                  {"epochs": summary["config"]["epochs"], "seed": args.seed, "arch": summary["config"]["arch"],
                   "lam": {k: v[1] for k, v in summary["config"]["models"].items()}},
                  time.perf_counter() - t0)
    return 0


def _figure(weight: dict, inputs: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.2), layout="constrained")
    ax = fig.subplots(1, 2 + len(next(iter(inputs.values()))["kinds"]))
    for label, w in weight.items():
        ax[0].plot(WEIGHT_LEVELS, w["rsm"], "-o", ms=3, label=label)
        ax[1].plot(WEIGHT_LEVELS, w["accuracy"], "-o", ms=3, label=label)
    ax[0].set(xlabel="weight noise (× std)", ylabel="RSM similarity to clean")
    ax[1].set(xlabel="weight noise (× std)", ylabel="held-out accuracy")
    from cortexsim.stimuli import TRUONG_HASSON_LEVELS

    for j, kind in enumerate(next(iter(inputs.values()))["kinds"]):
        for label, n in inputs.items():
            ax[2 + j].plot(TRUONG_HASSON_LEVELS, n["drop"][j], "-o", ms=3, label=label)
        ax[2 + j].set(xlabel=f"{kind} noise level", ylabel="accuracy drop")
    ax[0].legend(fontsize=8)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
