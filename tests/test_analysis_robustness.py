"""Robustness analyses with a tiny CNN trained on synthetic, perfectly separable images."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from cortexsim.analysis.robustness import (
    accuracy,
    input_noise_robustness,
    l2_channel_mask,
    prune_channels,
    pruning_curve,
    weight_noise_robustness,
)
from cortexsim.errors import LayerNotFoundError


def make_data(n_per_class=32, seed=0):
    """4 classes: a bright 4×4 quadrant (class index) on a dim noisy 8×8 image, values in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = 0.2 * torch.rand((4 * n_per_class, 1, 8, 8), generator=g)
    y = torch.arange(4).repeat_interleave(n_per_class)
    for c in range(4):
        r, q = divmod(c, 2)
        x[y == c, :, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] += 0.7
    return x.clamp(0, 1), y


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x, y = make_data()
    model = Tiny()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    xt, yt = make_data(seed=1)
    assert accuracy(model, (xt, yt)) == 1.0
    return model, xt, yt


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_pruning_curve_endpoints_and_monotone(trained):
    model, x, y = trained
    before = state(model)
    curve = pruning_curve(model, ["conv"], [0.0, 0.25, 0.5, 1.0], lambda m: accuracy(m, (x, y)))
    assert float(curve["accuracy"][0]) == accuracy(model, (x, y))
    assert float(curve["accuracy"][-1]) == pytest.approx(0.25)  # constant output: chance on 4 balanced classes
    assert curve["n_pruned"].values.tolist() == [0, 2, 4, 8]
    assert_unchanged(model, before)


def test_pruned_channels_are_the_lowest_l2_and_exactly_zero(trained):
    model, *_ = trained
    pruned = prune_channels(model, ["conv"], 0.5)
    w = pruned.conv.weight.detach()
    zero = (w.reshape(8, -1) == 0).all(dim=1)
    norms = model.conv.weight.detach().reshape(8, -1).norm(dim=1)
    assert zero.sum() == 4 and torch.equal(zero, norms <= norms.sort().values[3])
    assert torch.all(pruned.conv.bias[zero] == 0) and torch.all(pruned.conv.bias[~zero] == model.conv.bias[~zero])
    ref = copy.deepcopy(model)  # torch's own L2 structured pruning picks the same channels
    prune.ln_structured(ref.conv, "weight", amount=0.5, n=2, dim=0)
    torch_keep = ref.conv.weight_mask.reshape(8, -1).any(dim=1)
    assert torch.equal(torch_keep, l2_channel_mask(model.conv.weight, 0.5))


def test_weight_noise_zero_is_exact_and_degrades(trained):
    model, x, y = trained
    before = state(model)
    out = weight_noise_robustness(model, "fc", (x, y), levels=[0.0, 0.5, 2.0, 8.0], n_repeats=3, seed=0)
    assert np.all(out["rsm_similarity"].sel(level=0.0).values == 1.0)
    assert np.all(out["accuracy"].sel(level=0.0).values == out.attrs["clean_accuracy"])
    sim = out["rsm_similarity"].mean("repeat").values
    acc = out["accuracy"].mean("repeat").values
    assert np.all(np.diff(sim) < 0) and sim[-1] < 0.9
    assert acc[-1] < acc[0] and np.all(np.diff(acc) <= 0.05)
    assert_unchanged(model, before)
    again = weight_noise_robustness(model, "fc", (x, y), levels=[0.5], n_repeats=2, seed=0)
    np.testing.assert_array_equal(again["rsm_similarity"].values[0], out["rsm_similarity"].values[1, :2])
    everywhere = weight_noise_robustness(model, "fc", (x, y), levels=[0.0, 4.0], n_repeats=2, scope="all",
                                         similarity="correlation")
    assert float(everywhere["accuracy"].sel(level=4.0).mean()) < out.attrs["clean_accuracy"]


def test_input_noise_robustness(trained):
    model, x, y = trained
    out = input_noise_robustness(model, x, y, kinds=("white", "salt_pepper"), levels=(0.0, 0.1, 1.0))
    assert "corruptions" in out.attrs["noise_source"]  # the stimuli package's noise is used
    np.testing.assert_allclose(out["accuracy"].sel(level=0.0).values, out.attrs["clean_accuracy"])
    sp = out["accuracy"].sel(kind="salt_pepper").values
    assert sp[-1] < 0.5 < sp[0]  # every pixel replaced: no class information left
    assert float(out["accuracy_drop"].sel(kind="white", level=1.0)) > 0


def test_input_noise_uses_the_stimuli_corruptions_at_their_levels():
    """The one noise implementation (cortexsim.stimuli.corruptions; the copy kept as a fallback is gone)."""
    from cortexsim.stimuli.corruptions import apply_noise

    x = torch.full((4, 1, 64, 64), 0.5)
    items = np.arange(4)
    white = apply_noise(x, "white", 0.1, items, 0)
    assert float((white - x).std()) == pytest.approx(0.1, rel=0.05)
    pink = apply_noise(x, "pink", 0.1, items, 0)
    assert float((pink - x).std()) == pytest.approx(0.1, rel=0.1)
    sp = apply_noise(x, "salt_pepper", 0.2, items, 0)
    assert float((sp != 0.5).float().mean()) == pytest.approx(0.2, abs=0.02)
    with pytest.raises(ValueError, match="blue"):
        apply_noise(x, "blue", 0.1, items, 0)


def test_robustness_bad_input(trained):
    model, x, y = trained
    with pytest.raises(LayerNotFoundError, match="no module 'head'"):
        weight_noise_robustness(model, "head", (x, y))
    with pytest.raises(ValueError, match="scope"):
        weight_noise_robustness(model, "fc", (x, y), scope="some")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pruning_curve(model, ["conv"], [1.5], lambda m: 0.0)
    with pytest.raises(ValueError, match="at least one layer"):
        pruning_curve(model, [], [0.5], lambda m: 0.0)
    with pytest.raises(ValueError, match="no \\(out, in"):
        prune_channels(model, ["pool"], 0.5)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        input_noise_robustness(model, x * 3, y)
    with pytest.raises(ValueError, match="labels"):
        input_noise_robustness(model, x, y[:-1])
    with pytest.raises(ValueError, match="differ in length"):
        accuracy(model, (x, y[:-1]))


def test_robustness_figures_plot_the_measured_curves(trained, tmp_path):
    import xml.etree.ElementTree as ET

    from cortexsim.analysis import plot_robustness

    model, x, y = trained
    weight = weight_noise_robustness(model, "fc", (x, y), levels=[0.0, 1.0, 4.0], n_repeats=2, seed=0)
    inputs = input_noise_robustness(model, x, y, kinds=("white", "salt_pepper"), levels=(0.0, 0.5, 1.0))
    pruned = pruning_curve(model, ["conv"], [0.0, 0.5, 1.0], lambda m: accuracy(m, (x, y)))
    for name, result, must in (("w", weight, ["RSM similarity to clean", "noise level"]),
                               ("i", inputs, ["white", "salt_pepper", "clean"]),
                               ("p", pruned, ["fraction of channels pruned"])):
        png, svg = plot_robustness(result, tmp_path / name)
        text = " ".join(ET.parse(svg).getroot().itertext())
        assert all(m in text for m in must), (name, must)
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
    with pytest.raises(ValueError, match="accuracy"):
        plot_robustness(weight.drop_vars("accuracy"), tmp_path / "bad")
