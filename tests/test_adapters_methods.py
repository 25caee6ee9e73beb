"""Building every method's network: shapes, placements, gradients, training the spatial term, errors."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from cortexsim import adapters
from cortexsim.adapters import AdapterError, get_method
from cortexsim.adapters.archs import build_arch, count_parameters
from cortexsim.adapters.reset import PAPER_PARAMETERS
from cortexsim.layout import reset_tiling_rowcol

X = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
SMALL_TDANN = {"n_table": 32}

CONFIGS = [
    ("baseline", "resnet18", {"layout": "retinotopic"}),
    ("baseline", "resnet20", {"layout": "grid2d"}),
    ("baseline", "smallcnn", {}),
    ("tdann", "resnet18", SMALL_TDANN),
    ("channel", "resnet18", {"layout": "grid2d"}),
    ("channel", "vgg16", {"layout": "circle"}),
    ("channel", "densenet121", {"layout": "nested3d"}),
    ("ws", "smallcnn", {}),
    ("ws", "resnet18", {}),
    ("as", "smallcnn", {}),
    ("reset", "resnet20", {"n": 2}),
    ("topoloss", "resnet18", {"layers": ["layer1.0.conv1", "layer4.1.conv2", "fc"]}),
    ("ws", "th_cifar", {}),
    ("as", "th_mnist", {"in_channels": 3}),
]


def _capture(net, names):
    acts = {}
    hooks = [net.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: acts.__setitem__(n, o)) for n in names]
    return acts, hooks


def test_registry_lists_all_methods():
    assert adapters.methods() == ["as", "baseline", "channel", "reset", "tdann", "topoloss", "ws"]
    assert get_method("reset").defaults["lr"] == 1e-3 and get_method("reset").defaults["optimizer"] == "adam"
    assert get_method("tdann").defaults["lam"] == 0.25


@pytest.mark.parametrize("method,arch,kw", CONFIGS, ids=[f"{m}-{a}" for m, a, _ in CONFIGS])
def test_build_shapes_and_placements(method, arch, kw):
    net = get_method(method).build(arch, 10, seed=0, image_size=32, **kw)
    assert isinstance(net, adapters.TopographicNet)
    acts, hooks = _capture(net, list(net.placements))
    out = net(X)
    for h in hooks:
        h.remove()
    assert out.shape == (4, 10)
    assert net.features(X).ndim == 2 and net.features(X).shape[0] == 4
    total, per_layer = net.spatial_loss()
    assert total.ndim == 0 and torch.isfinite(total)
    assert all(v.ndim == 0 for v in per_layer.values())
    for name, p in net.placements.items():
        a = acts[name]
        n_units = math.prod(a.shape[1:]) if p.level == "unit" else a.shape[1]
        assert p.n_units == n_units, name
        assert p.positions.shape[0] == n_units
    modules = dict(net.named_modules())
    assert all(m in modules for m in net.areas.values())
    if method == "baseline" and "layout" not in kw:
        assert net.placements == {} and total.item() == 0.0
    else:
        assert net.layout is not None


def test_placements_are_the_regularised_layers():
    tdann = get_method("tdann").build("resnet18", 10, **SMALL_TDANN)
    assert list(tdann.placements) == [f"net.layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)]
    assert all(p.layout == "retinotopic" and p.level == "unit" for p in tdann.placements.values())
    assert tdann.placements["net.layer4.1"].params["size_mm"] == 70.0
    ch = get_method("channel").build("resnet18", 10)
    assert list(ch.placements) == ["net.conv1", "net.layer1.1.conv2", "net.layer2.1.conv2", "net.layer3.1.conv2", "net.layer4.1.conv2"]
    ws = get_method("ws").build("smallcnn", 10)
    assert ws.placements["net.topo"].positions.max() == 10.0  # 11 × 11 grid, 1 mm spacing


def test_buffers_follow_the_model_and_are_not_saved():
    from cortexsim.adapters.channel import inverse_distance

    net = get_method("channel").build("resnet18", 10)
    invd = dict(net.named_buffers())
    assert sorted(k for k in invd if k.startswith("invd_")) == [f"invd_{i}" for i in range(5)]  # one per layer
    np.testing.assert_array_equal(net.invd_0.numpy(), inverse_distance(net.placements["net.conv1"].positions))
    assert net.invd_0.shape == (64, 64) and net.invd_4.shape == (512, 512)
    ws = get_method("ws").build("smallcnn", 10)
    # 11 × 11 Moore grid: 2·11·10 row/column neighbours + 2·10·10 diagonal ones
    assert ws.pairs_0.shape == (420, 2) and ws.pairs_0.dtype == torch.long
    # rebuilt from the positions at build time, never saved (a checkpoint holds weights and positions only)
    for model, prefix in ((net, "invd_"), (ws, "pairs_")):
        assert [k for k in model.state_dict() if k.startswith(prefix)] == []
    tdann = get_method("tdann").build("resnet18", 10, **SMALL_TDANN)
    assert {b.device.type for b in tdann.buffers()} == {"cpu"}
    rows = tdann.neighbourhoods("layer4.1", torch.arange(3))
    assert rows.dtype == torch.long and rows.shape == (3, 500)
    # positions are saved; the windows are redrawn from them (no 20,000 × K table in the state dict)
    assert {k for k in tdann.state_dict() if k.startswith(("pos_", "win_", "nbr_"))} == {f"pos_{i}" for i in range(8)}


def test_seed_reproducible_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = get_method("tdann").build("resnet18", 10, seed=3, **SMALL_TDANN)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = get_method("tdann").build("resnet18", 10, seed=3, **SMALL_TDANN)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert torch.equal(a.neighbourhoods("layer2.0"), b.neighbourhoods("layer2.0"))
    assert np.array_equal(a.placements["net.layer2.0"].positions, b.placements["net.layer2.0"].positions)


def test_deepcopy_hooks_write_into_the_copy():
    net = get_method("as").build("smallcnn", 10)
    twin = copy.deepcopy(net)
    net(X)
    twin(X[:2])
    assert net.activation("topo").shape[0] == 4 and twin.activation("topo").shape[0] == 2


# --------------------------------------------------------------------------- gradients


def _grad_norm(module):
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    "method,arch,kw,reached,untouched",
    [
        ("tdann", "resnet18", SMALL_TDANN, "net.layer1.0.conv1", "net.fc"),
        ("channel", "resnet18", {}, "net.conv1", "net.fc"),
        ("ws", "smallcnn", {}, "net.topo", "net.features"),
        ("as", "smallcnn", {}, "net.features.0", "net.out"),
        ("reset", "resnet20", {"n": 1, "autoencoder": True}, "net.subnets.0.conv1", "net.final"),
    ],
)
def test_spatial_gradients_flow(method, arch, kw, reached, untouched):
    net = get_method(method).build(arch, 10, **kw)
    net(X)
    total, _ = net.spatial_loss()
    total.backward()
    assert _grad_norm(net.get_submodule(reached)) > 0
    assert _grad_norm(net.get_submodule(untouched)) == 0


@pytest.mark.parametrize(
    "method,arch,kw",
    [
        ("tdann", "resnet18", {**SMALL_TDANN, "layers": ["layer3.1", "layer4.1"], "neighbourhoods_per_step": 4}),
        ("tdann", "resnet18", {**SMALL_TDANN, "layers": ["layer4.0"], "variant": "abs"}),
        ("channel", "resnet18", {"layout": "sphere"}),
        ("ws", "smallcnn", {}),
        ("as", "smallcnn", {}),
        ("reset", "resnet20", {"n": 1, "autoencoder": True}),
    ],
)
def test_optimising_the_spatial_term_decreases_it(method, arch, kw):
    net = get_method(method).build(arch, 10, seed=0, **kw)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def loss():
        torch.manual_seed(7)  # same sampled neighbourhoods for the before/after comparison
        net(X)
        return net.spatial_loss()[0]

    start = loss().item()
    torch.manual_seed(0)  # training-step neighbourhoods must not depend on which tests ran before
    for _ in range(16):
        opt.zero_grad()
        net(X)
        net.spatial_loss()[0].backward()
        opt.step()
    assert loss().item() < 0.9 * start


# --------------------------------------------------------------------------- Reset


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_reset_parameter_counts_match_the_paper(n):
    # Table S3 is for 100-d number codes; with 10 classes both Linear heads of the final ResNet-20 shrink by 65·90.
    net = get_method("reset").build("resnet20", 100, n=n)
    assert count_parameters(net) == PAPER_PARAMETERS[f"Reset({n})"]
    assert count_parameters(get_method("reset").build("resnet20", 10, n=n)) == PAPER_PARAMETERS[f"Reset({n})"] - 5850


def test_resnet20_parameter_count():
    assert count_parameters(build_arch("resnet20", 100)) == PAPER_PARAMETERS["ResNet20"] == 275_572
    assert count_parameters(build_arch("resnet20", 10)) == 269_722  # He et al.'s 0.27 M


def test_reset_grid_tiling_follows_subnetwork_order():
    net = get_method("reset").build("resnet20", 10, n=2, m=4).eval()
    acts, _ = _capture(net, ["net.grid"])
    net(X)
    units = acts["net.grid"]  # (N, 16) in concatenation order: sub-network s owns units 4s .. 4s+3
    img = net.net.tile(units)
    row, col, sub = reset_tiling_rowcol(2, 4)
    assert torch.equal(img[:, 0, row, col], units)
    assert list(sub) == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert torch.equal(img[:, 0, :2, 2:].flatten(1), units[:, 4:8])  # sub-network 1 = top-right tile
    assert units.abs().max() <= 1  # tanh


def test_reset_bce_task_loss():
    net = get_method("reset").build("resnet20", 5, n=1)
    logits = torch.randn(3, 5)
    labels = torch.tensor([0, 4, 2])
    want = F.binary_cross_entropy(torch.sigmoid(logits), F.one_hot(labels, 5).float())
    assert net.task_loss(logits, labels).item() == pytest.approx(want.item(), rel=1e-5)
    soft = torch.rand(3, 5)
    assert net.task_loss(logits, soft).item() == pytest.approx(F.binary_cross_entropy(torch.sigmoid(logits), soft).item(), rel=1e-5)
    with pytest.raises(ValueError, match="do not match the outputs"):
        net.task_loss(logits, torch.rand(3, 4))
    assert net.spatial_loss()[0].item() == 0.0  # no autoencoder


# --------------------------------------------------------------------------- export


@pytest.mark.parametrize("method,kw", [("ws", {}), ("reset", {"n": 2}), ("channel", {"layout": "grid2d"})])
def test_export_cortex_records_in_the_trained_layout(method, kw):
    arch = {"ws": "smallcnn", "reset": "resnet20", "channel": "resnet18"}[method]
    net = get_method(method).build(arch, 10, **kw)
    sheet = net.export_cortex().record(X, batch_size=2, progress=False)
    for area, module in net.areas.items():
        part = sheet.cortex.area(area)
        np.testing.assert_allclose(part.x_mm.values, net.placements[module].positions[:, 0])
        np.testing.assert_allclose(part.y_mm.values, net.placements[module].positions[:, 1])
    assert sheet.responses.shape[0] == 4


# --------------------------------------------------------------------------- bad configuration


@pytest.mark.parametrize(
    "method,arch,kw,match",
    [
        ("channel", "alexnet", {}, "unknown architecture 'alexnet'.*Choose one of resnet18, vgg16, densenet121"),
        ("tdann", "vgg16", {}, "unsupported architecture 'vgg16' for this method.*Choose one of resnet18"),
        ("channel", "resnet18", {"layers": ["layer4.2.conv2"]}, "unknown layer 'layer4.2.conv2'.*Close matches"),
        ("channel", "resnet18", {"layers": ["bn1"]}, "is a BatchNorm2d; this method needs a Conv2d"),
        ("ws", "smallcnn", {"layers": ["out"]}, "10 units; a square grid needs a perfect square"),
        ("channel", "resnet18", {"lam": -1.0}, "lam must be a finite number ≥ 0"),
        ("ws", "smallcnn", {"lam": float("nan")}, "lam must be a finite number ≥ 0"),
        ("tdann", "resnet18", {"lam": -0.25}, "lam must be"),
        ("channel", "resnet18", {"layout": "retinotopic"}, "layout 'retinotopic' is incompatible with method 'channel'"),
        ("tdann", "resnet18", {"layout": "grid2d"}, "incompatible with method 'tdann'.*'retinotopic'"),
        ("as", "smallcnn", {"layout": "circle"}, "incompatible with method 'as'.*'square_grid'"),
        ("reset", "resnet20", {"layout": "grid2d"}, "incompatible with method 'reset'"),
        ("baseline", "resnet18", {"layout": "hexagon"}, "incompatible with method 'baseline'"),
        ("baseline", "smallcnn", {"layout": "retinotopic"}, "cannot place layer 'topo'"),
        ("reset", "resnet20", {"n": 3}, "m divisible by n"),
        ("tdann", "resnet18", {"variant": "relative"}, "variant must be one of"),
        ("tdann", "resnet18", {"layers": ["layer4.1"], "neighbourhood_mm": 1e-3}, "hold only .* units"),
        ("ws", "smallcnn", {"metric": "manhattan"}, "metric must be one of"),
    ],
)
def test_bad_config_raises_adapter_error(method, arch, kw, match):
    with pytest.raises(AdapterError, match=match):
        get_method(method).build(arch, 10, **kw)


def test_unknown_method():
    with pytest.raises(AdapterError, match="unknown method 'som'; known methods: as, baseline"):
        get_method("som")


def test_spatial_loss_before_forward_is_a_clear_error():
    net = get_method("as").build("smallcnn", 10)
    with pytest.raises(RuntimeError, match="call the model on a batch before spatial_loss"):
        net.spatial_loss()


# --------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method,kw", [("tdann", {**SMALL_TDANN, "neighbourhoods_per_step": 4}), ("channel", {}), ("as", {"arch": "resnet18"})])
def test_cuda_matches_cpu(method, kw):
    kw = dict(kw)
    arch = kw.pop("arch", "resnet18")
    net = get_method(method).build(arch, 10, **kw).eval()
    torch.manual_seed(0)
    net(X)
    cpu, _ = net.spatial_loss()
    net.cuda()
    assert all(b.is_cuda for b in net.buffers())
    torch.manual_seed(0)
    net(X.cuda())
    with torch.autocast("cuda", dtype=torch.bfloat16):
        net(X.cuda())
    gpu, _ = net.spatial_loss()
    assert gpu.is_cuda and torch.isfinite(gpu)
    if method != "tdann":  # tdann samples its neighbourhoods with the device RNG
        assert gpu.item() == pytest.approx(cpu.item(), rel=2e-2)


def test_unexpected_option_is_a_type_error():
    with pytest.raises(TypeError, match=r"channel.build got unexpected options \['lamda'\]"):
        get_method("channel").build("resnet18", 10, lamda=1.0)
