"""Recording throughput vs the bare forward pass of the same model, in one run.

ResNet-18 at 224 px, areas V1 = layer2.0 (retinotopic, 100,352 units) and
IT = layer4.1 (25,088 units). For each configuration we time:

* ``forward``: ``model(x)`` under ``inference_mode`` (+ bf16 autocast on GPU), the floor;
* ``record_memory``: ``SimulatedCortex.record`` into memory (hooks, reduction, host copy);
* ``record_disk``: the same, streamed to HDF5 (per compression filter).

Ratios are reported against ``forward`` measured in the same run (goal: ≤ 1.3× on
GPU, ≤ 1.5× on CPU). Images are generated on the host like a real stimulus set,
so the host→device copy is part of every configuration. Results go to
``benchmarks/results/record_bench_<device>_<date>.json``.

    python benchmarks/record_bench.py                 # CPU defaults (small)
    python benchmarks/record_bench.py --device cuda --n 2048 --batch 256
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

import cortexsim as cx


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_forward(model, images, batch, device, amp) -> float:
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if (amp and device.type == "cuda") else torch.autocast("cpu", enabled=False)
    sync(device)
    t = time.perf_counter()
    with torch.inference_mode(), ctx:
        for i in range(0, len(images), batch):
            model(images[i : i + batch].to(device, non_blocking=True))
    sync(device)
    return time.perf_counter() - t


def bench_record(cortex, images, batch, device, amp, out=None, compression=None) -> float:
    sync(device)
    t = time.perf_counter()
    cortex.record(images, batch_size=batch, device=device, amp=amp, out=out, compression=compression, progress=False)
    sync(device)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=None, help="stimuli per timing (default 2048 GPU / 64 CPU)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default 256 GPU / 16 CPU)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3, help="timings per configuration (median reported)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    n = args.n or (2048 if gpu else 64)
    batch = args.batch or (256 if gpu else 16)
    amp = gpu
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval().to(device)
    if gpu:
        model = model.to(memory_format=torch.channels_last)
    images = torch.rand(n, 3, args.size, args.size)
    if gpu:
        images = images.pin_memory()
    cortex = cx.SimulatedCortex(model, {"V1": "layer2.0", "IT": "layer4.1"}, layout="retinotopic")
    cortex.record(images[:batch], batch_size=batch, device=device, amp=amp, progress=False)  # warm-up
    bench_forward(model, images[: 2 * batch], batch, device, amp)
    n_units = sum(p.n_units for p in cortex.placements.values())
    mb = n * n_units * 4 / 2**20

    timings: dict[str, list[float]] = {"forward": [], "record_memory": []}
    filters = ["none", "lzf", "gzip"]
    for f in filters:
        timings[f"record_disk_{f}"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved so drift hits every configuration alike
            timings["forward"].append(bench_forward(model, images, batch, device, amp))
            timings["record_memory"].append(bench_record(cortex, images, batch, device, amp))
            for f in filters:
                path = Path(tmp) / f"s_{f}.h5"
                timings[f"record_disk_{f}"].append(
                    bench_record(cortex, images, batch, device, amp, out=path, compression=None if f == "none" else f)
                )
                size = path.stat().st_size
                path.unlink()
                timings.setdefault(f"file_mb_{f}", []).append(size / 2**20)

    forward = float(np.median(timings["forward"]))
    rows = {}
    for key, vals in timings.items():
        if key.startswith("file_mb"):
            continue
        sec = float(np.median(vals))
        rows[key] = {
            "seconds": round(sec, 4),
            "stimuli_per_s": round(n / sec, 1),
            "ratio_to_forward": round(sec / forward, 3),
            **({"mb_written_per_s": round(mb / sec, 1)} if key.startswith("record_disk") else {}),
            **({"file_mb": round(float(np.median(timings[key.replace("record_disk", "file_mb")])), 1)} if key.startswith("record_disk") else {}),
        }
    result = {
        "benchmark": "record_bench",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "cortexsim": cx.__version__,
        "threads": torch.get_num_threads(),
        "model": "resnet18",
        "areas": {"V1": "layer2.0", "IT": "layer4.1"},
        "image_size": args.size,
        "n_stimuli": n,
        "batch": batch,
        "amp_bf16": amp,
        "units": n_units,
        "responses_mb": round(mb, 1),
        "goal_ratio": 1.3 if gpu else 1.5,
        "results": rows,
    }
    print(f"{result['device']} · resnet18 {args.size}px · {n} stimuli × {n_units} units ({mb:.0f} MB float32) · batch {batch}")
    print(f"{'configuration':<22}{'s':>9}{'stim/s':>10}{'MB/s':>9}{'× forward':>11}")
    for key, r in rows.items():
        print(f"{key:<22}{r['seconds']:>9.3f}{r['stimuli_per_s']:>10.1f}{r.get('mb_written_per_s', float('nan')):>9.1f}{r['ratio_to_forward']:>11.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    tag = "cuda" if gpu else "cpu"
    path = args.out / f"record_bench_{tag}_{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
