"""TopoLoss (Deb et al. 2025) as the seventh method: hand values, the package itself, positions, training."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cortexsim import adapters
from cortexsim.adapters import AdapterError, get_method
from cortexsim.adapters.topoloss import topoloss
from cortexsim.layout import place, topoloss_sheet, topoloss_sheet_shape

X = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_registered_as_the_seventh_method():
    assert "topoloss" in adapters.methods() and len(adapters.methods()) == 7


@pytest.mark.parametrize("n, shape", [(512, (16, 32)), (100, (10, 10)), (96, (8, 12)), (64, (8, 8)), (7, (1, 7)),
                                      (1000, (25, 40))])
def test_sheet_shape_is_the_largest_divisor_below_the_square_root(n, shape):
    assert topoloss_sheet_shape(n) == shape
    h, w = shape
    pos = topoloss_sheet(n, spacing_mm=2.0)
    k = np.arange(n)
    np.testing.assert_array_equal(pos, np.stack([k % w, k // w], axis=1) * 2.0)  # (x, y) = (col, row)·spacing
    p = place("topoloss", (n,))
    np.testing.assert_array_equal(p.row, k // w)
    assert (place("topoloss", (n, 4, 4)).row == -1).all()  # conv channels: no feature-map position


def test_hand_value_four_orthogonal_units():
    # 2 × 2 sheet, factor 2: bilinear down-sampling to 1 × 1 (source coordinate 0.5) averages the four
    # weight vectors; up-sampling copies the mean back. With w_k = e_k the mean is (1,1,1,1)/4, so
    # cos(e_k, mean) = (1/4) / (1 · 1/2) = 1/2 and the loss is 1 − 1/2.
    assert topoloss(torch.eye(4), 2.0, 2.0).item() == pytest.approx(0.5, abs=1e-6)
    # identical units are already smooth
    assert topoloss(torch.ones(16, 5), 2.0, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(AdapterError, match="must be in"):
        topoloss(torch.eye(4), 3.0, 3.0)


def test_positions_reach_the_sheet():
    net = get_method("topoloss").build("resnet18", 10, layers=["layer4.1.conv2", "fc"], spacing_mm=0.5)
    assert net.areas == {"IT": "net.layer4.1.conv2"}
    assert net.placements["net.layer4.1.conv2"].level == "channel" and net.placements["net.fc"].row.max() == 1
    assert net.placements["net.fc"].col.max() == 4  # 10 units: a 2 × 5 sheet
    ds = net.export_cortex(areas={"IT": "net.layer4.1.conv2"}).record(X[:2], batch_size=2, progress=False)
    np.testing.assert_allclose(np.c_[ds.x_mm, ds.y_mm], topoloss_sheet(512, 0.5))


def test_any_torchvision_classifier_and_errors():
    net = get_method("topoloss").build("mobilenet_v3_small", 10, image_size=32)
    assert all(isinstance(net.net.get_submodule(n), nn.Conv2d) for n in net.layer_names)
    net(X[:2])
    assert torch.isfinite(net.spatial_loss()[0])
    with pytest.raises(AdapterError, match="unknown architecture 'resnet19'"):
        get_method("topoloss").build("resnet19", 10)
    with pytest.raises(AdapterError, match="needs a Conv2d or Linear"):
        get_method("topoloss").build("resnet18", 10, layers=["bn1"])
    with pytest.raises(AdapterError, match="interpolation must be"):
        get_method("topoloss").build("resnet18", 10, interpolation="bicubic")
    with pytest.raises(AdapterError, match="factor must be"):
        get_method("topoloss").build("resnet18", 10, factor=0.0)


def test_training_the_spatial_term_lowers_it():
    net = get_method("topoloss").build("resnet18", 10, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    start = net.spatial_loss()[0].item()
    for _ in range(10):
        opt.zero_grad()
        net.spatial_loss()[0].backward()
        opt.step()
    assert net.spatial_loss()[0].item() < 0.9 * start


@pytest.mark.slow
def test_trainer_lowers_the_loss_with_the_method_defaults():
    # 20 SGD steps with topoloss's defaults (lr 0.1 per 256, λ 1, factor 3, every Conv2d of smallcnn):
    # the weights-only spatial term falls at every log and the total loss ends below where it started.
    from cortexsim.adapters.trainer import Trainer

    tr = Trainer(method="topoloss", arch="smallcnn", data="digits", steps=20, batch_size=32, log_every=5,
                 device="cpu", progress=False)
    hist = tr.fit()
    assert tr.model.layer_names == ["features.0", "features.4", "features.8"]
    spatial = [r["spatial_loss"] for r in hist]
    assert all(b < a for a, b in zip(spatial, spatial[1:])), spatial
    assert hist[-1]["loss"] < hist[0]["loss"]


def _package_loss(model, layers, factors, scales, interpolation):
    from topoloss import LaplacianPyramid, TopoLoss

    return TopoLoss(losses=[LaplacianPyramid(layer_name=n, factor_h=factors[n][0], factor_w=factors[n][1],
                                             scale=scales[n], interpolation=interpolation) for n in layers])


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_value_and_gradient_equal_the_topoloss_package(interpolation):
    pytest.importorskip("topoloss")
    layers = ["conv1", "layer2.0.downsample.0", "layer3.1.conv2", "layer4.1.conv1", "fc"]
    net = get_method("topoloss").build("resnet18", 10, layers=layers, interpolation=interpolation, seed=1,
                                       factor={"conv1": 2.0, "fc": 2.0}, scale={"layer3.1.conv2": 5.0, "fc": 0.5})
    capped = get_method("topoloss").build("resnet18", 10, layers=["fc"], factor=5.0)
    assert capped.factors["fc"] == (2.0, 5.0)  # fc has 10 units: the 2 × 5 sheet caps the factor per side
    ours, per_layer = net.spatial_loss()
    ref = _package_loss(net.net, layers, net.factors, net.scales, interpolation)
    theirs = ref.compute(net.net)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-5)
    unscaled = ref.compute(net.net, reduce_mean=False, do_scaling=False)
    for name in layers:
        assert per_layer[name].item() == pytest.approx(unscaled[name].item(), abs=1e-5), name
    weights = [net.net.get_submodule(n).weight for n in layers]
    g_ours = torch.autograd.grad(ours, weights)
    g_theirs = torch.autograd.grad(ref.compute(net.net), weights)
    for name, a, b in zip(layers, g_ours, g_theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7, msg=name)
