"""Poli, Dupoux & Riad: channel-level topographic loss — accuracy, L2 pruning, six layouts, at CPU scale.

    python reproductions/channel/run.py --out runs/channel                # 300 steps of 32 per network
    python reproductions/channel/run.py --out runs/channel --steps 4000 --device cuda

A rerun into the same ``--out`` reuses the saved models (statistics only); ``--retrain`` trains again.

ResNet-18 (the reference's CIFAR stem with its max-pool, conv1 with PyTorch's init) with the
channel loss on ``conv1`` and the last conv of each stage (2-D grid, λ = 1, the pruning
experiment's model) and its baseline (λ = 0), same initial weights and batch order, trained
with the paper's recipe (SGD lr 0.01 per 256 → scaled to the batch, momentum 0.9, wd 0.01,
30 % linear warm-up then cosine) on real handwritten digits (scikit-learn, three quarters of
the scans; no augmentation). Then, on the held-out quarter: accuracy; accuracy after zeroing
the fraction of output channels of lowest L2 weight norm in each topographic layer (no
retraining; the reference's ``LnStructured(n=2, dim=0)`` on every topographic layer, biases
masked too), 0–90 %; and a short run for every one of the six layouts, whose loss (task +
spatial, mean of the first vs the last ``log_every`` steps) must fall. Writes
``results.json``, ``results.md`` and ``pruning.png``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Finding, parser, write_results  # noqa: E402

FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.62, 0.7, 0.8, 0.9)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "reproduction_channel", batch_size=32)
    p.add_argument("--steps", type=int, default=300, help="SGD steps of the topographic model and its baseline")
    p.add_argument("--layout-steps", type=int, default=30, help="steps of each layout's short run (≥ 2)")
    p.add_argument("--retrain", action="store_true", help="train again even where a saved model exists")
    args = p.parse_args(argv)
    if args.steps < 1 or args.layout_steps < 2:
        p.error("--steps must be ≥ 1 and --layout-steps ≥ 2 (the loss is compared between the first and last steps)")
    # Loss averaged over this many steps at the start and at the end of each layout's run.
    layout_log = max(1, args.layout_steps // 6)
    t0 = time.perf_counter()

    from cortexsim.adapters.channel import CHANNEL_LAYOUTS
    from cortexsim.adapters.trainer import load_trained
    from cortexsim.analysis.robustness import accuracy, pruning_curve
    from cortexsim.study import scan_split, train_in_memory

    split = scan_split(seed=args.seed)
    x, y = split.tensors("train")
    xh, yh = split.tensors("heldout")
    over = {"batch_size": args.batch_size}

    def build(lam: float, layout: str = "grid2d") -> dict:
        return {"method": "channel", "arch": "resnet18", "num_classes": 10, "layout": layout, "lam": lam,
                "layers": None, "seed": args.seed, "image_size": 32, "kw": {}}

    def train(run: Path, spec: dict, steps: int, **kw) -> dict:
        """Train, or reuse the model and log an earlier run of the same settings saved in ``run``."""
        cfg = run / "config.json"
        if not args.retrain and (run / "model.pt").is_file() and cfg.is_file():
            old = json.loads(cfg.read_text())
            if old["build"] == spec and old["trainer"]["steps"] == steps and \
                    old["trainer"]["batch_size"] == args.batch_size and old["trainer"]["seed"] == args.seed:
                history = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
                return {**old["resolved"], "history": history}
        return train_in_memory(run, spec, x, y, steps=steps, seed=args.seed, recipe_overrides=over,
                               device=args.device, **kw)

    runs = {}
    for label, lam in (("topographic (grid2d, λ = 1)", 1.0), ("baseline (λ = 0)", 0.0)):
        runs[label] = train(args.out / "runs" / ("topo" if lam else "base"), build(lam), args.steps,
                            heldout=(xh, yh), desc=label)
    curves = {}
    for label, folder in zip(runs, ("topo", "base")):
        net = load_trained(args.out / "runs" / folder, map_location=args.device)
        layers = [f"net.{name}" for name in net.layer_names]
        c = pruning_curve(net, layers, FRACTIONS, lambda m: accuracy(m, (xh, yh), args.device))
        curves[label] = c["accuracy"].values.tolist()
    layouts = {}
    for layout in CHANNEL_LAYOUTS:
        r = train(args.out / "layouts" / layout, build(1.0, layout), args.layout_steps, log_every=layout_log,
                  desc=layout)
        h = r["history"]
        layouts[layout] = {"first_loss": h[0]["task_loss"] + h[0]["spatial_loss"],
                           "last_loss": h[-1]["task_loss"] + h[-1]["spatial_loss"],
                           "spatial_first": h[0]["spatial_loss"], "spatial_last": h[-1]["spatial_loss"],
                           "curve": [[e["step"], e["task_loss"], e["spatial_loss"]] for e in h]}
    _figure(curves, layouts, args.out / "pruning.png")

    (topo, base) = runs
    i62 = FRACTIONS.index(0.62)
    acc_t, acc_b = runs[topo]["heldout_accuracy"], runs[base]["heldout_accuracy"]
    trained = [k for k, v in layouts.items() if v["last_loss"] < v["first_loss"] and np.isfinite(v["last_loss"])]
    findings = [
        Finding("accuracy on par with the baseline", "91.9 % vs 92.45 % (CIFAR-10, ResNet-18, 2-D grid, λ = 1)",
                f"{acc_t:.3f} vs {acc_b:.3f} (held-out digits)", abs(acc_t - acc_b) < 0.03),
        Finding("more accuracy kept at 62 % of channels pruned (L2, no retraining)", "62.0 % vs 40.6 %",
                f"{curves[topo][i62]:.3f} vs {curves[base][i62]:.3f}", curves[topo][i62] > curves[base][i62]),
        Finding("pruning curve above the baseline's from 30 % on", "topographic above baseline as pruning grows",
                ", ".join(f"{f:.0%}: {a:.2f}/{b:.2f}" for f, a, b in zip(FRACTIONS, curves[topo], curves[base])
                          if f >= 0.3),
                all(a >= b for f, a, b in zip(FRACTIONS, curves[topo], curves[base]) if f >= 0.3)),
        Finding("all six layouts train (loss falls)", "all train, none better than the others",
                f"{len(trained)} of 6 ({', '.join(trained)}) in {args.layout_steps} steps", len(trained) == 6),
    ]
    numbers = {"accuracy": {k: {"heldout": v["heldout_accuracy"], "train": v["train_accuracy"],
                                "seconds": v["seconds"]} for k, v in runs.items()},
               "pruning": {"fractions": FRACTIONS, **curves}, "layouts": layouts}
    write_results(args.out, findings, numbers, vars(args) | {"out": str(args.out)}, time.perf_counter() - t0)
    return 0


def _figure(curves: dict, layouts: dict, path: Path) -> None:
    """Left: held-out accuracy vs fraction pruned; right: each layout's loss over its short run."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.6, 3.4), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    for label, acc in curves.items():
        ax.plot(FRACTIONS, acc, "-o", ms=3, label=label)
    ax.axvline(0.62, color="0.7", ls=":")
    ax.set(xlabel="fraction of channels pruned per topographic layer (L2)", ylabel="held-out accuracy",
           title="L2 structured pruning, no retraining")
    ax.legend(fontsize=8)
    for layout, v in layouts.items():
        c = np.asarray(v["curve"], dtype=float)
        bx.plot(c[:, 0], c[:, 1] + c[:, 2], "-o", ms=3, label=layout)
    bx.set(xlabel="step", ylabel="task + spatial loss (mean over the logged steps)", title="the six layouts (λ = 1)")
    bx.legend(fontsize=8)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
