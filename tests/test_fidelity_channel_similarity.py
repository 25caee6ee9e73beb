"""Poli et al.'s channel loss (bootphon/topography @f4cc1d6) and Truong & Hasson's WS/AS
(tlmnhut/weight_vs_act_toponet @a493841): defaults vs the reference code, numbers derived by hand (issue 12)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from cortexsim.adapters import get_method
from cortexsim.adapters.archs import build_arch, count_parameters
from cortexsim.adapters.channel import LAMBDA_GRID as CHANNEL_LAMBDAS
from cortexsim.adapters.similarity import lambda_grid, weight_similarity_loss, grid_pairs
from cortexsim.layout import square_grid

X = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))

# --------------------------------------------------------------------------- channel


def test_channel_loss_is_lambda_times_the_sum_over_layers():
    ref = get_method("channel").build("resnet18", 10, lam=0.5)
    ref(X)
    total, per_layer = ref.spatial_loss()
    assert len(per_layer) == 5
    assert total.item() == pytest.approx(0.5 * sum(v.item() for v in per_layer.values()), rel=1e-6)
    # cortexsim's earlier mean: the paper's λ = 1 needs λ = 5 there (ResNet-18 has 5 regularised layers)
    old = get_method("channel").build("resnet18", 10, lam=5.0, reduction="mean")
    old.load_state_dict(ref.state_dict())
    old(X)
    assert old.spatial_loss()[0].item() == pytest.approx(total.item() / 0.5, rel=1e-6)


def test_channel_positions_are_the_reference_hypercube():
    net = get_method("channel").build("resnet18", 10)
    k = np.arange(64)
    want = np.stack([k % 8, k // 8], axis=1) / 7  # hypercube(64, 2): linspace(0, 1, 8) per axis
    np.testing.assert_allclose(net.placements["net.conv1"].positions, want)
    np.testing.assert_allclose(net.invd_0.numpy(), 1 / (cdist(want, want) + 1), rtol=1e-6)
    sph = get_method("channel").build("resnet18", 10, layout="sphere").placements["net.conv1"].positions
    np.testing.assert_allclose(np.linalg.norm(sph, axis=1), 0.5)


def test_conv1_keeps_pytorch_default_init_as_the_reference():
    # nn.Conv2d's default: Kaiming uniform with a = √5 -> U(−1/√fan_in, 1/√fan_in), fan_in = 3·3·3 = 27:
    # bound 0.19245, s.d. bound/√3 = 0.1111. torchvision's fan-out Kaiming normal would give √(2/576) = 0.0589.
    w = get_method("channel").build("resnet18", 10).net.conv1.weight.detach()
    bound = 1 / math.sqrt(27)
    assert w.abs().max() <= bound and w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
    old = get_method("channel").build("resnet18", 10, preset="cortexsim").net.conv1.weight.detach()
    assert old.std().item() == pytest.approx(math.sqrt(2 / 576), rel=0.1)
    # DenseNet-121's replaced conv0: kaiming_normal_ (fan-in, gain √2): s.d. √(2/27) = 0.272
    d = build_arch("densenet121", 10, stem_init="fan_in", seed=0).features.conv0.weight.detach()
    assert d.std().item() == pytest.approx(math.sqrt(2 / 27), rel=0.1)


def test_nested_grid_distances_vs_the_reference_float32_cdist():
    # 128 nested channels: 16 squares of side 2^-k (k = 0..15), all 128 positions distinct, so every
    # off-diagonal 1/(d + 1) is < 1 in float64. The reference's float32 torch.cdist (|x|² + |y|² − 2x·y above
    # 25 points) has a d² error of a few float32 ulps of |x|² + |y|² ≤ 2, i.e. d errors up to
    # √(2 · 2 · 2^-23) ≈ 6.9e-4, so the smallest distances (the inner squares, 2^-15 mm and up) can come out as 0.
    from cortexsim.adapters.channel import inverse_distance
    from cortexsim.layout import nested_grid

    pos = nested_grid(128).astype(np.float32)
    off = ~np.eye(128, dtype=bool)
    ours = inverse_distance(pos)
    assert len(np.unique(pos, axis=0)) == 128 and (ours[off] < 1).all()
    t = torch.as_tensor(pos)
    ref = (1 / (torch.cdist(t, t) + 1)).numpy()
    assert (ref[off] == 1).sum() > 0  # the reference's d = 0 for distinct channels
    bound = math.sqrt(2 * 2 * 2.0**-23)
    assert np.abs(ours - ref).max() < bound  # |Δ 1/(d + 1)| ≤ |Δd|


def test_channel_lambda_grid_is_create_jobs():
    assert CHANNEL_LAMBDAS == (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0)


# --------------------------------------------------------------------------- WS / AS


def _reference_ws(weights: np.ndarray, metric: str) -> float:
    """utils.spatial_loss written out: each unit of the 11 × 11 grid against each of its in-grid 8 neighbours
    (every pair twice), averaged over those ordered pairs."""
    g = weights.reshape(11, 11, -1)
    total, count = 0.0, 0
    for i in range(11):
        for j in range(11):
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    ni, nj = i + di, j + dj
                    if (di, dj) == (0, 0) or not (0 <= ni < 11 and 0 <= nj < 11):
                        continue
                    x, y = g[i, j], g[ni, nj]
                    if metric == "euclidean":
                        d = np.linalg.norm(x - y)
                    elif metric == "cosine":
                        d = 1 - (x @ y) / (np.sqrt((x**2).sum()) * np.sqrt((y**2).sum()) + 1e-8)
                    else:
                        xc, yc = x - x.mean(), y - y.mean()
                        d = 1 - (xc @ yc) / (np.sqrt((xc**2).sum()) * np.sqrt((yc**2).sum()) + 1e-8)
                    total, count = total + d, count + 1
    return total / count


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean"])
def test_ws_equals_the_reference_double_loop(metric):
    w = np.random.default_rng(1).normal(size=(121, 64))
    pairs = torch.as_tensor(grid_pairs(square_grid(121)))
    got = weight_similarity_loss(torch.tensor(w, dtype=torch.float32), pairs, metric)
    assert got.item() == pytest.approx(_reference_ws(w, metric), rel=1e-5)


def test_ws_correlation_hand_value():
    # 11 × 11 grid, every unit's weights u except the corner unit 0 with −u: correlation distance 2 on the
    # corner's 3 pairs, 0 on the other pairs; 420 pairs in all (220 edges + 200 diagonals) -> 6 / 420
    u = torch.tensor([1.0, 2.0, 4.0])
    w = u.repeat(121, 1)
    w[0] = -u
    pairs = torch.as_tensor(grid_pairs(square_grid(121)))
    assert len(pairs) == 420
    assert weight_similarity_loss(w, pairs, "correlation").item() == pytest.approx(6 / 420, rel=1e-5)


def test_reference_networks_and_defaults():
    # parameters by hand: MNIST 1→32 conv (320) + 32→64 conv (18,496) + fc1 64→121 (7,865) + fc2 121→10 (1,220)
    assert count_parameters(build_arch("th_mnist", 10, in_channels=1)) == 320 + 18_496 + 7_865 + 1_220 == 27_901
    # CIFAR: convs 896 + 18,496 + 73,856 + 295,168, BNs 64 + 128 + 256 + 512, fc1 256→121 (31,097), fc2 1,220
    assert count_parameters(build_arch("th_cifar", 10)) == 421_693
    net = build_arch("th_cifar", 10)
    names = [n for n, _ in net.named_children()]
    assert names[-6:] == ["gap", "flatten", "fc1", "relu", "dropout", "fc2"]
    assert net.dropout.p == 0.5 and net.gap.output_size == 1
    for kind in ("ws", "as"):
        spec = get_method(kind)
        assert (spec.defaults["arch"], spec.defaults["batch_size"], spec.defaults["optimizer"], spec.defaults["lr"]) == (
            "th_cifar", 64, "adam", 1e-3)
    assert get_method("ws").build().metric == "cosine"  # train_cifar.py
    assert get_method("ws").build("th_mnist").metric == "correlation"  # train_mnist.py
    assert lambda_grid() == (0.1, 0.3, 0.5, 1.0, 2.0, 3.0) and lambda_grid(include_control=True)[0] == 0.0


def test_as_uses_pre_relu_activations_of_fc1():
    net = get_method("as").build("th_cifar", 10)
    assert net.layer_names == ["fc1"] and net.placements["net.fc1"].positions.max() == 10.0
    net(X)
    a = net.activation("fc1")
    assert a.shape == (4, 121) and (a < 0).any()  # the Linear output, before the ReLU


# --------------------------------------------------------------------------- input normalisation


def test_input_norm_inside_the_network_is_the_references_transform(tmp_path):
    import copy

    from cortexsim.adapters.archs import INPUT_NORMS
    from cortexsim.adapters.trainer import Trainer, load_trained

    mean, std = INPUT_NORMS["cifar10_topography"]  # bootphon/topography's transforms.Normalize
    net = get_method("channel").build("resnet18", 10, input_norm="cifar10_topography")
    plain = get_method("channel").build("resnet18", 10)
    assert net.state_dict().keys() == plain.state_dict().keys()  # the constants are not weights
    twin = copy.deepcopy(net)
    net(X)
    want = net.net.conv1((X - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None])
    torch.testing.assert_close(net.activation("conv1"), want)  # the hooked conv1 saw normalised images
    twin.net.input_std.fill_(1.0)
    twin.net.input_mean.zero_()
    twin(X)
    torch.testing.assert_close(twin.activation("conv1"), net.net.conv1(X))  # the copy uses its own constants
    grey = build_arch("th_mnist", 10, in_channels=1, input_norm="mnist")
    assert grey.input_mean.shape == (1, 1, 1, 1) and grey.input_std.item() == pytest.approx(0.3081)
    with pytest.raises(Exception, match="input_norm 'svhn' is unknown"):
        build_arch("th_cifar", 10, input_norm="svhn")
    with pytest.raises(Exception, match="s.d. > 0"):
        build_arch("th_cifar", 10, input_norm=((0.5, 0.5, 0.5), (0.0, 1.0, 1.0)))
    reset = get_method("reset").build(n=1, input_norm="cifar100", seed=0).eval()
    reset_plain = get_method("reset").build(n=1, seed=0).eval()
    m, sd = (torch.tensor(v)[:, None, None] for v in INPUT_NORMS["cifar100"])
    torch.testing.assert_close(reset(X), reset_plain((X - m) / sd))  # the notebooks' CIFAR-100 transform
    # it travels with the run's build options: the reloaded model normalises as the trained one
    tr = Trainer(method="ws", data="digits", steps=1, batch_size=8, device="cpu", progress=False,
                 method_kwargs={"input_norm": "cifar10"}, out=tmp_path / "run")
    tr.fit()
    back = load_trained(tmp_path / "run").eval()
    torch.testing.assert_close(back(X), tr.model.eval()(X))
    torch.testing.assert_close(back.net.input_mean.flatten(), torch.tensor(INPUT_NORMS["cifar10"][0]))
