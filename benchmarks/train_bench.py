"""Training-step cost of each topographic method relative to the plain network.

GPU (H100 class) defaults follow the issue: ResNet-18, batch 256, 32×32 inputs
(plus TDANN at 224×224, batch 128), bf16 autocast, channels_last, 10 warm-up
steps then the median of 50 steps timed with CUDA events; baseline and every
method in the same run, ratio = method / baseline for the same arch, size and
batch. The step is the trainer's own :class:`~cortexsim.adapters.trainer.TrainStep`
(forward, task + spatial loss, backward, SGD step) on a fixed synthetic batch
already on the device, so data loading is not timed.

    python benchmarks/train_bench.py                       # GPU defaults
    python benchmarks/train_bench.py --device cpu --batch 32 --size 32 --steps 10
    python benchmarks/train_bench.py --profile             # + torch.profiler top ops per method
    python benchmarks/train_bench.py --curves --curve-steps 300 --data digits   # loss curves, each method's defaults

Writes ``benchmarks/results/train_bench_<device>_<date>.json`` (and
``train_curves_<device>_<date>.json`` + one PNG per method with ``--curves``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from cortexsim import adapters
from cortexsim.adapters.trainer import Trainer, TrainModule, TrainStep
from cortexsim.plotting.training import plot_curves

RESULTS = Path(__file__).parent / "results"


def device_tag(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def pick_arch(method: str, arch: str | None) -> str:
    """``arch`` when the method trains it, else the method's default arch (its reference network)."""
    spec = adapters.get_method(method)
    if arch is not None and arch in spec.archs:
        return arch
    return spec.defaults.get("arch", spec.archs[0])


def stem_options(method: str, arch: str) -> tuple[tuple[str, Any], ...]:
    """Architecture options a method fixes, so its baseline runs the very same network.

    ``channel`` keeps ResNet's max-pool on 32 px inputs (as bootphon/topography does)
    while the other methods drop it; comparing against a max-pool-free baseline would
    time different compute, not the spatial term.
    """
    if method == "channel" and arch.startswith("resnet"):
        return (("maxpool", True),)
    return ()


def build(method: str, arch: str, size: int, device: torch.device, num_classes: int = 10,
          options: tuple[tuple[str, Any], ...] = ()):
    spec = adapters.get_method(method)
    net = spec.build(arch, num_classes, image_size=size, seed=0, **dict(options))
    net.to(device, memory_format=torch.channels_last if device.type == "cuda" else torch.preserve_format)
    net.train()
    module = TrainModule(net)
    opt = torch.optim.SGD([p for p in module.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    return net, TrainStep(module, net, opt, None, amp=True, device=device, channels_last=device.type == "cuda")


def time_steps(step: TrainStep, x: torch.Tensor, y: torch.Tensor, steps: int, warmup: int) -> list[float]:
    """Milliseconds of each of ``steps`` steps after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step(x, y)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(steps)]
        for start, end in events:
            start.record()
            step(x, y)
            end.record()
        torch.cuda.synchronize(x.device)
        return [s.elapsed_time(e) for s, e in events]
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(x, y)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def profile_table(step: TrainStep, x: torch.Tensor, y: torch.Tensor, rows: int = 15) -> str:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if x.device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(5):
            step(x, y)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
    key = "self_cuda_time_total" if x.device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def bench(methods: list[str], arch: str, configs: list[tuple[int, int]], device: torch.device, steps: int,
          warmup: int, profile: bool, tdann_large: tuple[int, int] | None) -> list[dict[str, Any]]:
    """Median ms/step of baseline and each method for every (size, batch); ratio to the baseline."""
    plan: list[tuple[str, str, int, int, tuple]] = []
    for size, batch in configs:
        for m in methods:
            a = pick_arch(m, arch)
            plan.append((m, a, size, batch, stem_options(m, a)))
    if tdann_large and "tdann" in methods:
        a = pick_arch("tdann", arch)
        plan.append(("tdann", a, *tdann_large, stem_options("tdann", a)))
    # Every (arch, size, batch, stem) gets its own baseline, measured in this run.
    for m, a, s, b, o in list(plan):
        if ("baseline", a, s, b, o) not in plan:
            plan.insert(0, ("baseline", a, s, b, o))
    rows, base = [], {}
    for m, a, s, b, o in sorted(plan, key=lambda p: (p[0] != "baseline", p[2], p[3], p[0], p[4])):
        torch.manual_seed(0)
        net, step = build(m, a, s, device, options=o)
        x = torch.rand(b, 3, s, s, device=device)
        y = torch.randint(0, 10, (b,), device=device)
        ms = time_steps(step, x, y, steps, warmup)
        med = statistics.median(ms)
        row = {"method": m, "arch": a, "size": s, "batch": b, "options": dict(o), "median_ms": round(med, 3),
               "p10_ms": round(sorted(ms)[len(ms) // 10], 3), "p90_ms": round(sorted(ms)[(9 * len(ms)) // 10], 3),
               "steps": steps, "warmup": warmup,
               "spatial_layers": len(step.layer_names or [])}
        if m == "baseline":
            base[(a, s, b, o)] = med
        ref = base.get((a, s, b, o))
        row["ratio_vs_baseline"] = round(med / ref, 3) if ref else None
        row["overhead_pct"] = round(100 * (med / ref - 1), 1) if ref else None
        if profile:
            row["profile"] = profile_table(step, x, y)
            print(f"--- {m} {a} {s}px batch {b}\n{row['profile']}")
        rows.append(row)
        print(f"{m:9s} {a:10s} {s:4d}px b{b:<4d} {med:9.2f} ms/step  ×{row['ratio_vs_baseline']}", flush=True)
        del net, step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def curves(methods: list[str], arch: str, data: str, steps: int, batch: int, device: str,
           log_every: int, out: Path, tag: str, lr: float | None = None) -> dict[str, Any]:
    """Train each method ``steps`` steps on ``data``; task and spatial loss curves (JSON + PNG per method)."""
    result = {}
    for m in methods:
        a = pick_arch(m, arch)
        tr = Trainer(method=m, arch=a, data=data, steps=steps, batch_size=batch, device=device,
                     log_every=log_every, progress=True, lr=lr)
        hist = tr.fit()
        result[m] = {"arch": a, "resolved": {**tr._resolved, **tr._resolved_opt}, "history": hist}
        plot_curves(hist, out / f"train_curves_{tag}_{m}.png", title=f"{m} / {a} on {data}")
        first, last = hist[0], hist[-1]
        print(f"{m:9s} task {first['task_loss']:.4g} -> {last['task_loss']:.4g}   "
              f"spatial {first['spatial_loss']:.4g} -> {last['spatial_loss']:.4g}", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--methods", nargs="+", default=None, help="default: all registered")
    p.add_argument("--arch", default=None,
                   help="arch (default: resnet18 for timing, each method's default — its reference network — for "
                        "--curves; methods lacking it use their default)")
    p.add_argument("--batch", type=int, default=None, help="default 256 on GPU, 32 on CPU")
    p.add_argument("--size", type=int, default=32, help="input side in px")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 50 on GPU, 10 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 10 on GPU, 2 on CPU)")
    p.add_argument("--no-tdann-large", dest="tdann_large", action="store_false",
                   help="skip TDANN at 224 px batch 128 (always skipped on CPU)")
    p.add_argument("--profile", action="store_true", help="torch.profiler top ops per method")
    p.add_argument("--curves", action="store_true", help="train each method and record loss curves instead")
    p.add_argument("--curve-steps", type=int, default=300)
    p.add_argument("--data", default="digits", help="data for --curves (digits | lfw | CIFAR folder)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--lr", type=float, default=None,
                   help="--curves: one lr for every method (default: each method's, scaled to the batch)")
    p.add_argument("--note", default=None, help="--curves: a note stored in the JSON (what changed since the last run)")
    p.add_argument("--results-dir", default=str(RESULTS))
    args = p.parse_args(argv)

    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    methods = args.methods or adapters.methods()
    batch = args.batch or (256 if cuda else 32)
    tag, date = device_tag(dev), dt.date.today().isoformat()
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"device": torch.cuda.get_device_name(dev) if cuda else f"cpu ({platform.processor() or platform.machine()},"
                      f" {torch.get_num_threads()} threads)",
            "torch": torch.__version__, "date": dt.datetime.now().isoformat(timespec="seconds"),
            "python": sys.version.split()[0], "amp_bf16": cuda, "channels_last": cuda}
    if args.curves:
        name = f"{tag}_{date}" + ("" if args.lr is None else f"_lr{args.lr:g}")
        res = curves(methods, args.arch, args.data, args.curve_steps, batch, str(dev), args.log_every, out,
                     name, args.lr)
        path = out / f"train_curves_{name}.json"
        path.write_text(json.dumps({**meta, "data": args.data, "steps": args.curve_steps, "batch": batch,
                                    "lr": args.lr, **({"note": args.note} if args.note else {}), "methods": res},
                                   indent=1))
        print(f"wrote {path}")
        return 0
    steps = args.steps or (50 if cuda else 10)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    rows = bench(methods, args.arch or "resnet18", [(args.size, batch)], dev, steps, warmup, args.profile,
                 (224, 128) if cuda and args.tdann_large else None)
    path = out / f"train_bench_{tag}_{date}.json"
    path.write_text(json.dumps({**meta, "timing": "CUDA events" if cuda else "perf_counter", "results": rows},
                               indent=1))
    print(f"\n{'method':9s} {'arch':10s} {'px':>4s} {'batch':>5s} {'ms/step':>9s} {'×base':>6s} {'overhead':>8s}")
    for r in rows:
        ov = "" if r["overhead_pct"] is None else f"{r['overhead_pct']:+.1f}%"
        print(f"{r['method']:9s} {r['arch']:10s} {r['size']:4d} {r['batch']:5d} {r['median_ms']:9.2f} "
              f"{r['ratio_vs_baseline'] or float('nan'):6.2f} {ov:>8s}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
