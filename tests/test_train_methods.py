"""The real registered methods through the trainer (CPU, 2 steps, small archs)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cortexsim import adapters
from cortexsim.adapters.trainer import Trainer, load_trained

SMALL = {"baseline": ("smallcnn", {}), "ws": ("smallcnn", {}), "as": ("smallcnn", {}),
         "channel": ("resnet18", {}), "tdann": ("resnet18", {}), "reset": ("resnet20", {"n": 1}),
         "topoloss": ("resnet18", {})}
SPATIAL = {"ws", "as", "channel", "tdann", "topoloss"}


def _need(method: str) -> None:
    if method not in adapters.methods():
        pytest.skip(f"method {method!r} is not registered yet")


@pytest.mark.parametrize("method", sorted(SMALL))
def test_each_method_trains_and_logs_its_spatial_terms(method, tmp_path):
    _need(method)
    arch, kw = SMALL[method]
    tr = Trainer(method=method, arch=arch, data="lfw", steps=2, batch_size=4, log_every=1, device="cpu",
                 progress=False, method_kwargs=kw, out=tmp_path)
    before = {k: v.clone() for k, v in tr.model.state_dict().items() if v.is_floating_point()}
    hist = tr.fit()
    assert [r["step"] for r in hist] == [1, 2]
    for r in hist:
        assert np.isfinite(r["loss"]) and r["loss"] == pytest.approx(r["task_loss"] + r["spatial_loss"], rel=1e-5)
        layers = [k for k in r if k.startswith("spatial/")]
        if method in SPATIAL:
            assert layers and r["spatial_loss"] > 0
        else:
            assert r["spatial_loss"] == 0
    after = tr.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the weights moved
    net = load_trained(tmp_path)
    for k, v in net.state_dict().items():
        assert torch.equal(v, after[k].cpu()), k


def test_tdann_resume_is_bit_for_bit(tmp_path):
    # TDANN samples neighbourhoods at random: equality needs its RNG restored too.
    _need("tdann")
    kw = dict(method="tdann", arch="resnet18", data="lfw", steps=3, batch_size=2, log_every=1, device="cpu",
              progress=False, checkpoint_every=2)
    full = Trainer(out=tmp_path / "a", **kw)
    h_full = full.fit()
    Trainer(out=tmp_path / "b", **kw).fit(stop_at=3)  # checkpoint at 2, step 3 redone
    res = Trainer.resume(tmp_path / "b")
    h_res = res.fit()
    for (k, a), b in zip(full.model.state_dict().items(), res.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert [r["loss"] for r in h_res] == [r["loss"] for r in h_full]


def test_tdann_simclr_and_export_in_the_trained_layout():
    _need("tdann")
    tr = Trainer(method="tdann", arch="resnet18", data="lfw", task="simclr", steps=1, batch_size=4, log_every=1,
                 device="cpu", progress=False)
    h = tr.fit()
    assert np.isfinite(h[0]["task_loss"]) and h[0]["spatial_loss"] > 0
    name = next(iter(tr.model.areas.values()))
    area = next(iter(tr.model.areas))
    ds = tr.export_cortex().record(torch.rand(2, 3, 32, 32), batch_size=2)
    sub = ds.cortex.area(area)
    np.testing.assert_allclose(np.c_[sub.x_mm, sub.y_mm], tr.model.placements[name].positions[:, :2], rtol=1e-6)
