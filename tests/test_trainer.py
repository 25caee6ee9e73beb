"""Trainer: bad configuration, bit-for-bit resume, logging, checkpoints, export (CPU, tiny model)."""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import test_trainer_tiny  # noqa: E402,F401  registers the "_tiny" method

from cortexsim.adapters.base import AdapterError  # noqa: E402
from cortexsim.errors import DatasetNotFoundError  # noqa: E402
from cortexsim.adapters.checkpoint import (  # noqa: E402
    latest_checkpoint, list_checkpoints, load_checkpoint, rng_state, save_checkpoint, set_rng_state)
from cortexsim.adapters.trainer import Trainer, load_trained, read_log  # noqa: E402

TINY = dict(method="_tiny", arch="tiny", device="cpu", progress=False)
LOSS_KEYS = ("step", "epoch", "lr", "loss", "task_loss", "spatial_loss", "spatial/net.conv1", "spatial/net.conv2")


def _state(tr: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tr._module.state_dict().items()}


def _losses(history):
    return [{k: r[k] for k in LOSS_KEYS} for r in history]


# ---------------------------------------------------------------- configuration errors
@pytest.mark.parametrize("kwargs, match", [
    (dict(method="nope"), "unknown method 'nope'; known methods: as, baseline, channel, reset, tdann, "),
    (dict(arch="big"), "unknown arch 'big'"),
    (dict(layers=["net.fc9"]), "unknown layer"),
    (dict(lam=-0.5), r"lam \(the spatial-loss weight λ\) must be a finite number ≥ 0; got -0.5"),
    (dict(lam=float("nan")), "lam .* finite"),
    (dict(steps=None), "give the training length: epochs=N and/or steps=N"),
    (dict(steps=0), "steps must be a positive integer; got 0"),
    (dict(epochs=1.5, steps=None), "epochs must be a positive integer; got 1.5"),
    (dict(batch_size=500), "batch_size=500 × 1 process.* larger than the 200 training images"),
    (dict(task="mae"), "task must be one of .*supervised.*simclr.*; got 'mae'"),
    (dict(optimizer="lbfgs"), "optimizer must be one of"),
    (dict(checkpoint_every=5), "checkpoint_every needs a run folder: pass out=RUN_DIR"),
    (dict(data="/nonexistent/cifar"), "put CIFAR-10 as torchvision lays it out: ROOT/cifar-10-batches-py/data_batch_1"),
    (dict(lr=-1.0), "lr must be a finite number > 0"),
    (dict(lr=float("inf")), "lr must be a finite number > 0; got inf"),
    (dict(lr=float("nan")), "lr must be a finite number > 0; got nan"),
    (dict(momentum=float("inf")), "momentum must be a finite number ≥ 0"),
    (dict(weight_decay=-1.0), "weight_decay must be a finite number ≥ 0"),
    (dict(temperature=float("nan")), "temperature must be a finite number > 0"),
])
def test_bad_configuration_raises_on_fit_with_a_clear_message(kwargs, match):
    cfg = {**TINY, "data": "lfw", "steps": 2, "batch_size": 4, **kwargs}
    tr = Trainer(**cfg)  # scikit-learn style: construction stores, fit validates
    for k, v in kwargs.items():
        assert getattr(tr, k) is v or getattr(tr, k) == v or (v != v)
    with pytest.raises((AdapterError, DatasetNotFoundError), match=match):  # missing data: DatasetNotFoundError
        tr.fit()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_device_without_cuda_is_an_error():
    with pytest.raises(AdapterError, match="CUDA is not available; use device='cpu'"):
        Trainer(**{**TINY, "device": "cuda"}, data="lfw", steps=1, batch_size=4).fit()


# ---------------------------------------------------------------- resume
def test_resume_continues_bit_for_bit(tmp_path):
    # lfw: 200 images / batch 16 = 12 batches per epoch, so the run crosses an epoch boundary
    # and is interrupted mid-epoch, between log intervals (log 3, checkpoint 7).
    kw = dict(**TINY, data="lfw", steps=17, batch_size=16, log_every=3, checkpoint_every=7, seed=3)
    full = Trainer(out=tmp_path / "full", **kw)
    h_full = full.fit()
    assert [r["step"] for r in h_full] == [3, 6, 9, 12, 15, 17]
    assert [r["epoch"] for r in h_full] == [0, 0, 0, 0, 1, 1]

    Trainer(out=tmp_path / "cut", **kw).fit(stop_at=10)          # checkpoint at 7; log 9 is lost
    assert [r["step"] for r in read_log(tmp_path / "cut")] == [3, 6, 9]
    Trainer.resume(tmp_path / "cut").fit(stop_at=16)            # from 7; checkpoint 14 (epoch 1)
    resumed = Trainer.resume(tmp_path / "cut")                   # from 14
    assert resumed.model is not None and resumed.step_ == 14 and resumed.epoch_ == 1
    h_res = resumed.fit()

    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for ga, gb in zip(full._optim.state_dict()["state"].values(), resumed._optim.state_dict()["state"].values()):
        assert torch.equal(ga["momentum_buffer"], gb["momentum_buffer"])
    assert _losses(h_res) == _losses(h_full)
    assert _losses(read_log(tmp_path / "cut")) == _losses(read_log(tmp_path / "full"))
    csv_cut = pd.read_csv(tmp_path / "cut" / "metrics.csv")
    pd.testing.assert_frame_equal(csv_cut[list(LOSS_KEYS)], pd.read_csv(tmp_path / "full" / "metrics.csv")[list(LOSS_KEYS)])

    # The comparison is sensitive: another seed gives other weights.
    other = Trainer(**{**kw, "seed": 4, "checkpoint_every": None}, out=None)
    other.fit()
    assert not torch.equal(other._net.net.fc.weight, full._net.net.fc.weight)


def test_resume_refuses_changed_model_settings(tmp_path):
    kw = dict(**TINY, data="lfw", steps=4, batch_size=8, checkpoint_every=2)
    Trainer(out=tmp_path, **kw).fit(stop_at=2)
    with pytest.raises(AdapterError, match=r"cannot resume .*: lam differ .*lam=None"):
        Trainer.resume(tmp_path, lam=2.0).fit()
    with pytest.raises(AdapterError, match="has no config.json"):
        Trainer.resume(tmp_path / "elsewhere")


def _rewrite_checkpoint(state, path):
    """Edit a checkpoint on purpose: a new file (last.pt and the step file), with fresh SHA-256 files."""
    from cortexsim.adapters.checkpoint import save_checkpoint

    save_checkpoint(path.parent.parent, state, state["step"])


def test_runs_written_before_a_config_key_existed_still_resume(tmp_path):
    from cortexsim.adapters.checkpoint import latest_checkpoint

    kw = dict(**TINY, data="lfw", steps=4, batch_size=8, checkpoint_every=2)
    Trainer(out=tmp_path, **kw).fit(stop_at=2)
    path = latest_checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    for key in ("swapopt", "swapopt_images", "swapopt_reference"):  # added in a later version
        del state["config"][key]
    _rewrite_checkpoint(state, path)
    resumed = Trainer.resume(tmp_path)
    assert len(resumed.fit()) > 0 and resumed.step_ == 4
    path = latest_checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    assert state["config"]["swapopt_images"] == 512  # the resumed run wrote the key
    state["config"]["swapopt_images"] = 64  # a recorded, different value still refuses
    _rewrite_checkpoint(state, path)
    with pytest.raises(AdapterError, match="swapopt_images differ"):
        Trainer(out=tmp_path, resume=True, **{**kw, "steps": 6}).setup()


# ---------------------------------------------------------------- logging
def test_logged_values_are_means_over_the_interval(tmp_path):
    kw = dict(**TINY, data="lfw", steps=6, batch_size=8, seed=1)
    every1 = Trainer(**kw, log_every=1).fit()
    every3 = Trainer(**kw, log_every=3, out=tmp_path).fit()
    assert [r["step"] for r in every3] == [3, 6]
    for rec, chunk in zip(every3, (every1[:3], every1[3:])):
        for key in ("loss", "task_loss", "spatial_loss", "spatial/net.conv1", "spatial/net.conv2"):
            assert rec[key] == pytest.approx(np.mean([r[key] for r in chunk]), rel=1e-6)
        assert rec["steps_averaged"] == 3
    for r in every1:  # total = task + λ·Σ layers, λ = the method default 0.5
        assert r["loss"] == pytest.approx(r["task_loss"] + r["spatial_loss"], rel=1e-6)
        assert r["spatial_loss"] == pytest.approx(0.5 * (r["spatial/net.conv1"] + r["spatial/net.conv2"]), rel=1e-5)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == every3
    csv = pd.read_csv(tmp_path / "metrics.csv")
    assert list(csv["step"]) == [3, 6] and csv["task_loss"].tolist() == pytest.approx([r["task_loss"] for r in every3])
    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["trainer"]["lam"] is None and cfg["build"]["lam"] == 0.5 and cfg["resolved"]["lr"] == 0.05
    assert cfg["resolved"]["world_size"] == 1 and cfg["resolved"]["total_steps"] == 6


def test_epochs_define_the_length_and_steps_cap_it():
    tr = Trainer(**TINY, data="lfw", epochs=2, batch_size=64, log_every=100)
    h = tr.fit()
    assert tr.total_steps_ == 6 and tr.step_ == 6 and h[-1]["epoch"] == 1   # 200 // 64 = 3 batches/epoch
    assert Trainer(**TINY, data="lfw", epochs=2, steps=4, batch_size=64)._validate() is not None
    tr = Trainer(**TINY, data="lfw", epochs=2, steps=4, batch_size=64)
    tr.fit()
    assert tr.step_ == 4


# ---------------------------------------------------------------- checkpoints
def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(5); np.random.seed(5); random.seed(5)
    np.random.randn()  # leaves a cached Gaussian in the legacy numpy state
    random.gauss(0, 1)
    save_checkpoint(tmp_path, {"rng": rng_state(), "step": 1}, 1)
    expect = (torch.rand(3), np.random.randn(3), [random.random(), random.gauss(0, 1)])
    torch.manual_seed(0); np.random.seed(0); random.seed(0)
    set_rng_state(load_checkpoint(latest_checkpoint(tmp_path))["rng"])
    got = (torch.rand(3), np.random.randn(3), [random.random(), random.gauss(0, 1)])
    assert torch.equal(expect[0], got[0]) and np.array_equal(expect[1], got[1]) and expect[2] == got[2]


def test_keep_last_k_and_corrupt_checkpoint(tmp_path):
    for step in range(1, 6):
        save_checkpoint(tmp_path, {"w": torch.full((2,), float(step)), "step": step}, step, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000004.pt", "step_00000005.pt"]
    last = torch.load(latest_checkpoint(tmp_path), weights_only=True)
    assert last["step"] == 5 and torch.equal(last["w"], torch.tensor([5.0, 5.0]))
    assert not list(tmp_path.glob("checkpoints/.*.tmp"))  # no temporaries left
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(AdapterError, match="could not load checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(AdapterError, match="does not exist; train with out=RUN_DIR"):
        load_checkpoint(tmp_path / "missing.pt")


def test_training_checkpoint_loads_weights_only(tmp_path):
    Trainer(**TINY, data="lfw", steps=4, batch_size=8, checkpoint_every=2, keep_last=1, out=tmp_path).fit()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000004.pt"]
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 4 and state["epoch"] == 0 and state["batch_in_epoch"] == 4
    assert set(state["rng"]) >= {"torch", "numpy_keys", "python_state"}
    assert state["scheduler"]["last_epoch"] == 4 and state["config"]["method"] == "_tiny"


# ---------------------------------------------------------------- export / reload / SimCLR
def test_export_and_load_trained_give_the_trained_model(tmp_path):
    tr = Trainer(**TINY, data="digits", steps=3, batch_size=8, layout="circle", out=tmp_path)
    tr.fit()
    net = load_trained(tmp_path)
    x = torch.rand(5, 3, 32, 32)
    tr.model.eval()
    with torch.no_grad():
        assert torch.equal(net(x), tr.model(x))
    assert net.layout == "circle"
    cortex = tr.export_cortex()
    ds = cortex.record(x, batch_size=5)
    a0 = ds.cortex.area("A0")
    np.testing.assert_allclose(np.c_[a0.x_mm, a0.y_mm], tr.model.placements["net.conv1"].positions, rtol=1e-6)
    assert ds.sizes["stimulus"] == 5
    with pytest.raises(AdapterError, match="needs config.json and model.pt"):
        load_trained(tmp_path / "nothing")


def test_simclr_trains_with_a_checkpointed_projection_head(tmp_path):
    tr = Trainer(**TINY, data="lfw", task="simclr", steps=3, batch_size=8, log_every=1, checkpoint_every=3,
                 out=tmp_path)
    h = tr.fit()
    # NT-Xent over 2·8 views is at most ~log(15) ≈ 2.71 for random projections; it is finite and positive.
    assert all(0 < r["task_loss"] < 4 and np.isfinite(r["loss"]) for r in h)
    head = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["head"]
    assert head["mlp.0.weight"].shape == (512, 6)   # in_dim = TinyNet width
    assert torch.equal(head["mlp.0.weight"], tr._module.head.mlp[0].weight.detach())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_step():
    tr = Trainer(**{**TINY, "device": "cuda"}, data="lfw", steps=2, batch_size=8, log_every=1)
    h = tr.fit()
    assert tr._stepper.amp and tr._stepper.channels_last and all(np.isfinite(r["loss"]) for r in h)
    assert next(tr.model.parameters()).is_cuda
