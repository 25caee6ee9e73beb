"""TDANN position pre-optimisation wired into the adapter and the trainer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cortexsim.adapters import AdapterError, get_method
from cortexsim.adapters.hooks import PREFIX
from cortexsim.adapters.trainer import Trainer, load_trained

LAYERS = ["layer3.1", "layer4.1"]
X = torch.rand(48, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def _tdann(seed: int = 0, **kw):
    # swap_steps 100 (TDANN: 500) keeps TDANN's sequential swap rule fast enough for a unit test
    kw = {"layers": LAYERS, "swap_steps": 100, **kw}
    return get_method("tdann").build("resnet18", 10, seed=seed, image_size=32, n_table=48, **kw)


def _state(net):
    return {n: (getattr(net, f"pos_{i}").clone(), getattr(net, f"win_{i}").clone()) for i, n in enumerate(net.layer_names)}


# TDANN's rule is sequential inside a square: on IT (squares of 31.8 mm on a 70 mm sheet) every square
# overlaps the others, so only V4 (2.5 mm squares on 22.4 mm, ~40 at once) is swapped with it here.
@pytest.mark.parametrize("algorithm, layers, iterations", [("tdann", ["layer3.1"], 200), ("cortexsim", LAYERS, 60)])
def test_swaps_lower_the_spatial_loss_and_permute_units_over_the_same_slots(algorithm, layers, iterations):
    net = _tdann(swap_algorithm=algorithm, layers=layers)
    assert get_method("tdann").build("resnet18", 10, layers=["layer4.1"]).swap_algorithm == "cortexsim"  # default
    before = _state(net)
    report = net.optimize_positions(X, iterations=iterations, seed=0)
    after = _state(net)
    for i, name in enumerate(layers):
        assert report[name]["loss_after"] < report[name]["loss_before"] - 0.005
        (p0, t0), (p1, t1) = before[name], after[name]
        assert not torch.equal(p0, p1)  # something moved
        # Same slots, reassigned: the sorted set of positions is unchanged.
        key = lambda p: p[np.lexsort(p.numpy().T[::-1])]  # noqa: E731
        torch.testing.assert_close(key(p0), key(p1), rtol=0, atol=0)
        # The windows are redrawn on the same slots (same extent, same seed): the same squares, now
        # holding the units swapped into them.
        torch.testing.assert_close(t0, t1, rtol=0, atol=0)
        rows = net.neighbourhoods(name)
        r = net.windows[name].radius
        assert ((p1[rows] - t1[:, None, :]).abs().amax(-1) <= r + 1e-6).all()
        # The placement (what export_cortex records) follows the buffers; row/col/channel do not move.
        pl = net.placements[PREFIX + name]
        np.testing.assert_allclose(pl.positions, p1.numpy(), atol=1e-6)


def test_swapped_positions_survive_a_state_dict_round_trip_and_reach_the_sheet():
    net = _tdann()
    net.optimize_positions(X, iterations=30, algorithm="cortexsim")
    fresh = _tdann()
    assert not torch.equal(fresh.pos_0, net.pos_0)
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh.pos_0, net.pos_0, rtol=0, atol=0)
    torch.testing.assert_close(fresh.neighbourhoods("layer4.1"), net.neighbourhoods("layer4.1"), rtol=0, atol=0)
    ds = fresh.export_cortex(areas={"IT": PREFIX + "layer4.1"}).record(X[:4], batch_size=4)
    np.testing.assert_allclose(np.c_[ds.x_mm, ds.y_mm], net.pos_1.numpy(), atol=1e-5)


def test_reference_network_drives_the_swaps_and_must_match_unit_counts():
    import torchvision

    net = _tdann()
    ref = get_method("baseline").build("resnet18", 10, seed=5)  # same CIFAR stem: same unit counts
    report = net.optimize_positions(X, reference=ref, iterations=30, algorithm="cortexsim")
    assert set(report) == set(LAYERS)
    with pytest.raises(AdapterError, match="has 1024 units; this network has 16384"):
        _tdann().optimize_positions(X, reference=torchvision.models.resnet18(num_classes=10), iterations=2)
    with pytest.raises(AdapterError, match="float"):
        net.optimize_positions(torch.zeros(8, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(AdapterError, match="swap algorithm must be"):
        net.optimize_positions(X, algorithm="greedy")
    with pytest.raises(AdapterError, match="swap_steps"):
        _tdann(swap_steps=0)


def test_trainer_swapopt_runs_once_and_positions_reach_model_pt(tmp_path):
    kw = dict(method="tdann", arch="resnet18", data="digits", steps=2, batch_size=8, device="cpu", progress=False,
              layers=LAYERS, method_kwargs={"n_table": 32}, swapopt=20, swapopt_images=32)
    untouched = Trainer(**{**kw, "swapopt": 0}).model
    tr = Trainer(**kw, out=tmp_path / "run", checkpoint_every=1)
    tr.fit()
    assert not torch.equal(tr.model.pos_0, untouched.pos_0)
    assert tr._resolved["swapopt_report"]["layer3.1"]["loss_after"] < tr._resolved["swapopt_report"]["layer3.1"]["loss_before"]
    trained = load_trained(tmp_path / "run")
    torch.testing.assert_close(trained.pos_0, tr.model.pos_0, rtol=0, atol=0)
    # Resuming keeps the checkpoint's positions rather than swapping again.
    resumed = Trainer.resume(tmp_path / "run", steps=3)
    resumed.setup()
    torch.testing.assert_close(resumed.model.pos_0, tr.model.pos_0, rtol=0, atol=0)


def test_swapopt_is_refused_for_methods_without_unit_positions():
    with pytest.raises(AdapterError, match="swapopt"):
        Trainer(method="channel", data="digits", steps=1, swapopt=5).setup()
    with pytest.raises(AdapterError, match="swapopt"):
        Trainer(method="tdann", data="digits", steps=1, swapopt=-1).setup()
