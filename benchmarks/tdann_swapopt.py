"""TDANN with and without position pre-optimisation, in one run.

TDANN's recipe: train a network without the spatial loss, swap-optimise each
layer's unit positions on its responses, then train the TDANN from scratch with
those positions. This script does exactly that on a small scale and compares the
spatial loss (SL_Rel, per layer and summed) with the default retinotopic
positions:

1. ``baseline`` ResNet-18 trained ``--steps`` steps (the reference);
2. ``tdann`` trained ``--steps`` steps from retinotopic positions;
3. ``tdann`` with ``swapopt=--swap-rounds`` driven by the baseline's responses.

    python benchmarks/tdann_swapopt.py --device cpu --steps 200 --data digits
    python benchmarks/tdann_swapopt.py --device cuda --steps 2000 --data CIFAR_ROOT --batch 256

Writes ``benchmarks/results/tdann_swapopt_<device>_<date>.json`` and a PNG of the
spatial-loss curves.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

import torch

from cortexsim.adapters.trainer import Trainer

RESULTS = Path(__file__).parent / "results"


def _curve(history: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {"step": [h["step"] for h in history], "task_loss": [h["task_loss"] for h in history],
            "spatial_loss": [h["spatial_loss"] for h in history]}


def _mean(values: list[float], n: int) -> float:
    tail = values[-n:] if n else values
    return sum(tail) / len(tail)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--data", default="digits")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--swap-rounds", type=int, default=500)
    p.add_argument("--swap-images", type=int, default=512)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--results-dir", default=str(RESULTS))
    args = p.parse_args(argv)

    common = dict(data=args.data, steps=args.steps, batch_size=args.batch, device=args.device,
                  log_every=args.log_every, progress=True)
    with tempfile.TemporaryDirectory() as tmp:
        ref_dir = Path(tmp) / "baseline"
        Trainer(method="baseline", arch="resnet18", out=ref_dir, **common).fit()
        plain = Trainer(method="tdann", arch="resnet18", **common)
        h_plain = plain.fit()
        swapped = Trainer(method="tdann", arch="resnet18", swapopt=args.swap_rounds,
                          swapopt_images=args.swap_images, swapopt_reference=ref_dir, **common)
        h_swap = swapped.fit()
        report = swapped._resolved["swapopt_report"]
        device = str(swapped.device_)

    k = max(1, len(h_plain) // 5)  # average the last fifth of the logged intervals (the loss is noisy)
    result = {
        "benchmark": "tdann_swapopt", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else f"cpu ({platform.machine()}, "
        f"{torch.get_num_threads()} threads)", "torch": torch.__version__, "args": vars(args),
        "swapopt_report": report,
        "final_spatial_loss": {"retinotopic": _mean([h["spatial_loss"] for h in h_plain], k),
                               "swapopt": _mean([h["spatial_loss"] for h in h_swap], k)},
        "final_task_loss": {"retinotopic": _mean([h["task_loss"] for h in h_plain], k),
                            "swapopt": _mean([h["task_loss"] for h in h_swap], k)},
        "curves": {"retinotopic": _curve(h_plain), "swapopt": _curve(h_swap)},
    }
    tag = "cpu" if not device.startswith("cuda") else "cuda"
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"tdann_swapopt_{tag}_{dt.date.today().isoformat()}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, curve in result["curves"].items():
        ax[0].plot(curve["step"], curve["task_loss"], label=name)
        ax[1].plot(curve["step"], curve["spatial_loss"], label=name)
    ax[0].set(xlabel="step", ylabel="task loss")
    ax[1].set(xlabel="step", ylabel="spatial loss (α·Σ SL_Rel)")
    ax[1].legend()
    fig.suptitle(f"TDANN on {args.data}: retinotopic vs swap-optimised positions")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    plt.close(fig)

    print("layer      SL_Rel before swaps -> after (reference responses)")
    for layer, r in report.items():
        print(f"{layer:9s}  {r['loss_before']:.3f} -> {r['loss_after']:.3f}")
    for key in ("final_spatial_loss", "final_task_loss"):
        print(f"{key}: retinotopic {result[key]['retinotopic']:.4f}   swapopt {result[key]['swapopt']:.4f}")
    print(f"wrote {stem.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
