"""DDP path on CPU: ``torch.distributed.run`` with 2 processes and the gloo backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent

SCRIPT = f"""
import os, sys, torch
sys.path.insert(0, {str(HERE)!r})
import test_trainer_tiny
from cortexsim.adapters.trainer import Trainer
run = sys.argv[1]
tr = Trainer(method="_tiny", arch="tiny", data="lfw", steps=4, batch_size=8, log_every=2, device="cpu",
             checkpoint_every=2, seed=1, progress=False, out=run)
init = {{k: v.clone() for k, v in tr.model.state_dict().items()}}
tr.fit()
torch.save({{"init": init, "final": tr.model.state_dict(), "world_size": tr.world_size_, "rank": tr.rank_,
            "n_batches": tr.batches_per_epoch_}}, os.path.join(run, f"rank{{tr.rank_}}.pt"))
"""


def test_ddp_gloo_two_processes_end_identical(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    run = tmp_path / "run"
    run.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                           str(script), str(run)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(run / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert (r0["rank"], r1["rank"]) == (0, 1) and r0["world_size"] == r1["world_size"] == 2
    assert r0["n_batches"] == 200 // 2 // 8
    for k in r0["final"]:
        assert torch.equal(r0["final"][k], r1["final"][k]), k
    # Training moved the weights (the two ranks saw different shards but agree through all-reduce).
    assert not torch.equal(r0["final"]["net.fc.weight"], r0["init"]["net.fc.weight"])
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["resolved"]["world_size"] == 2 and cfg["resolved"]["global_batch_size"] == 16
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]          # rank 0 alone writes: no duplicate records
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(ckpt["model"][k], r0["final"][k]) for k in r0["final"])
