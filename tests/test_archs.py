"""The architecture registry (adapters.archs.register_arch): lookup, close-match errors, a new arch
trained by every method that takes registered archs, 1-channel inputs and non-square images."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from cortexsim.adapters import AdapterError, archs, get_method
from cortexsim.adapters.archs import ArchOptions, build_arch, get_arch, input_channels, register_arch


def _grey_net(num_classes: int, opts: ArchOptions) -> nn.Module:
    # 1 grey channel whatever in_channels says: the probes must ask the network, not assume 3
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(1, 4, 3, padding=1), relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(2), flat=nn.Flatten(),
        fc=nn.Linear(16, num_classes)))


@pytest.fixture(scope="module")
def grey_arch():
    name = "_test_grey"
    if name not in archs.arch_names():
        register_arch(name, head="fc", default_areas={"IT": "conv"}, layers=("conv",),
                      layer_areas={"IT": "conv"})(_grey_net)
    yield name
    archs._ARCHS.pop(name, None)  # keep the registry as the rest of the suite expects it


def test_builtin_registry_keeps_the_old_tables():
    assert archs.ARCHS == ("resnet18", "vgg16", "densenet121", "resnet20", "smallcnn", "th_mnist", "th_cifar")
    assert archs.HEAD["vgg16"] == "classifier.6" and archs.DEFAULT_AREAS["resnet20"] == {"V1": "layer2.0", "IT": "layer3.2"}
    assert get_arch("vgg16_bn").name == "vgg16"  # alias
    assert archs.topo_layer("th_mnist") == "fc1" and archs.topo_layer("resnet18") == "fc.topo"
    assert archs.head_name("resnet18", 121) == "fc.out" and archs.head_name("smallcnn", 121) == "out"


def test_unknown_arch_names_close_matches():
    with pytest.raises(AdapterError, match=r"unknown architecture 'resnet19'\. Did you mean 'resnet18', 'resnet20'"):
        get_arch("resnet19")
    with pytest.raises(AdapterError, match="unsupported architecture 'vgg16' for this method.*Choose one of resnet18"):
        get_arch("vgg16", ("resnet18",))
    with pytest.raises(AdapterError, match="already registered"):
        register_arch("resnet18", head="fc", default_areas={})


def test_seeded_build_is_reproducible_and_leaves_the_rng():
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a, b = build_arch("resnet20", 10, seed=3), build_arch("resnet20", 10, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(AdapterError, match="in_channels must be a positive integer"):
        build_arch("resnet20", 10, in_channels=0)


def test_registered_arch_trains_with_every_registry_method(grey_arch):
    x = torch.rand(2, 1, 12, 12)
    base = get_method("baseline").build(grey_arch, 3, layout="grid2d")
    assert input_channels(base.net) == 1
    # probe with the net's own channel count: (1, 1, 32, 32) gives conv (4, 32, 32); a 3-channel zero image would fail
    assert base.placements["net.conv"].n_units == 4 and base.areas == {"IT": "net.conv"}
    ch = get_method("channel").build(grey_arch, 3, layout="grid2d")
    assert list(ch.placements) == ["net.conv"] and ch.invd_0.shape == (4, 4)
    ch(x)
    total, per_layer = ch.spatial_loss()
    assert total.item() > 0 and set(per_layer) == {"conv"}
    ws = get_method("ws").build(grey_arch, 3, grid_side=3)  # head fc replaced by topo(9) → act → out
    assert ws.net.fc.topo.out_features == 9 and ws(x).shape == (2, 3)
    tl = get_method("topoloss").build(grey_arch, 3)
    assert tl.areas == {"IT": "net.conv"}


def test_probe_shapes_of_a_non_square_input():
    net = get_method("baseline").build("resnet20", 10, layout="grid2d")
    # resnet20: stride 1 then 2 at layer2.0 and 2 at layer3: a 16 × 24 image gives 8 × 12 maps at layer2.0
    assert net.probe_shapes((16, 24)) == {"layer2.0": (32, 8, 12), "layer3.2": (64, 4, 6)}
    assert net.probe_shapes(16) == {"layer2.0": (32, 8, 8), "layer3.2": (64, 4, 4)}


def test_trainer_feature_dim_probes_with_the_nets_own_channels_and_shape(grey_arch):
    # the SimCLR projection head's width: features of a 1-channel net at (H, W); a 3-channel probe would fail
    from cortexsim.adapters import Trainer

    tr = Trainer("baseline", arch=grey_arch, layout="grid2d", steps=1, device="cpu", progress=False)
    tr._net = get_method("baseline").build(grey_arch, 3, layout="grid2d")
    tr.device_ = torch.device("cpu")
    tr._net.train()
    # features() stops before the head: conv (4) → pool 2 × 2 → flatten = 16, whatever the image size
    assert tr._feature_dim(12) == 16 and tr._feature_dim((12, 20)) == 16
    assert tr._net.training  # the probe restored train mode
