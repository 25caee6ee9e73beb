"""Time `cortexsim demo` (full or --quick): wall and CPU seconds per stage, disk written, load average.

    python benchmarks/demo_bench.py --quick
    python benchmarks/demo_bench.py            # the full demo (target: ≤ 10 min on 2 idle cores)

Writes ``benchmarks/results/demo_bench_<device>_<date>.json``. The load average is recorded
before and after: on shared cores the wall time is not the idle-machine time (and more torch
threads than free cores make small kernels far slower; compare ``--threads 1``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", default=str(RESULTS))
    args = p.parse_args(argv)

    import torch

    from cortexsim.study import run_demo

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        summary = run_demo(Path(tmp) / "demo", quick=args.quick, seed=args.seed, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        disk = sum(f.stat().st_size for f in (Path(tmp) / "demo").rglob("*") if f.is_file())
    result = {
        "benchmark": "demo_bench", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": f"cpu ({platform.machine()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs)",
        "torch": torch.__version__, "quick": args.quick, "seed": args.seed,
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "stages_s": summary.get("timings", {}),
        "report_s": summary.get("report_seconds"), "disk_bytes": disk,
        "loadavg_before": [round(v, 2) for v in load_before], "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "headline": summary.get("headline"),
        "heldout_accuracy": {k: v.get("heldout_accuracy") for k, v in summary["models"].items()},
    }
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"demo_bench_cpu_{dt.date.today().isoformat()}{'_quick' if args.quick else ''}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
