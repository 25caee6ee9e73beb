"""Recording transformers: ViT token outputs, per-area transforms, outputs no layout can place."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

import cortexsim as cx
from cortexsim import LayoutError
from cortexsim.areas import Area, tokens_to_map


@pytest.fixture(scope="module")
def tiny_vit():
    torch.manual_seed(0)
    return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                             num_classes=3).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def _tokens(vit, x, block):
    """Output tokens (B, 1 + 16, 16) of encoder block ``block``, computed by calling the parts directly."""
    with torch.no_grad():
        h = vit._process_input(x)
        h = torch.cat([vit.class_token.expand(len(x), -1, -1), h], dim=1) + vit.encoder.pos_embedding
        for layer in vit.encoder.layers[: block + 1]:
            h = layer(h)
    return h


def test_vit_blocks_are_recorded_as_patch_maps(tiny_vit, images):
    areas = {"V4": "encoder.layers.encoder_layer_0", "IT": "encoder.layers.encoder_layer_1"}
    exact = {"jitter": 0.0, "jitter_mm": 0.0}  # no position noise: a patch's units sit at its RF centre
    cortex = cx.SimulatedCortex(tiny_vit, areas, layout_params={"V4": exact, "IT": exact})
    ds = cortex.record(images, batch_size=2, progress=False)
    assert cortex.shapes == {"V4": (16, 4, 4), "IT": (16, 4, 4)}  # D = 16 channels on the 4 × 4 patch grid
    assert ds.sizes == {"stimulus": 5, "unit": 2 * 16 * 16}
    it = ds.cortex.area("IT")
    tok = _tokens(tiny_vit, images, 1).numpy()
    # unit (d, i, j) is feature d of patch token 1 + 4 i + j (the class token 0 is dropped)
    d, i, j = it.channel.values, it.row.values, it.col.values
    np.testing.assert_allclose(it.responses.values, tok[:, 1 + 4 * i + j, d], rtol=1e-5, atol=1e-6)
    # retinotopic: a patch's units share its receptive-field centre; the patch grid spans the sheet in order
    x_of = {(r, c): set(np.round(it.x_mm.values[(i == r) & (j == c)], 9)) for r in range(4) for c in range(4)}
    assert all(len(v) == 1 for v in x_of.values())
    assert x_of[(0, 0)] == x_of[(3, 0)] and min(x_of[(0, 0)]) < min(x_of[(0, 3)])
    assert (it.y_mm.values[i == 3] > it.y_mm.values[i == 0].max()).all()


def test_token_transform_given_explicitly_and_for_other_prefixes(tiny_vit, images):
    explicit = cx.SimulatedCortex(tiny_vit, {"IT": Area("encoder.layers.encoder_layer_1", transform=tokens_to_map(1))})
    default = cx.SimulatedCortex(tiny_vit, {"IT": "encoder.layers.encoder_layer_1"})
    a = explicit.record(images, progress=False).responses.values
    np.testing.assert_array_equal(a, default.record(images, progress=False).responses.values)
    t = torch.arange(2 * 6 * 3.0).reshape(2, 6, 3)  # 2 register tokens + a 2 × 2 grid
    m = tokens_to_map(2)(t)
    assert m.shape == (2, 3, 2, 2) and m[1, 2, 1, 0] == t[1, 2 + 2 * 1 + 0, 2]
    with pytest.raises(LayoutError, match=r"16 tokens minus 1 class/register token\(s\) leave 15 patch tokens.*n_prefix"):
        tokens_to_map(1)(torch.zeros(1, 16, 4))  # 16 tokens = CLS + 15 patches: not a grid
    with pytest.raises(LayoutError, match="integer ≥ 0"):
        tokens_to_map(-1)


class ChannelsLast(nn.Module):
    """A conv net whose block outputs (B, H, W, C) maps and (B, N, D) sequences, outside any ViT."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=4)
        self.nhwc = nn.Identity()
        self.seq = nn.Identity()
        self.five = nn.Identity()

    def forward(self, x):
        h = self.conv(x)
        self.five(h[:, None])
        self.seq(h.flatten(2).transpose(1, 2))  # (B, 64, 4)
        return self.nhwc(h.permute(0, 2, 3, 1)).mean((1, 2))


def test_area_transform_and_clear_errors_for_unplaceable_outputs(images):
    torch.manual_seed(0)
    net = ChannelsLast().eval()
    ds = cx.SimulatedCortex(net, {"V1": Area("nhwc", transform=lambda y: y.permute(0, 3, 1, 2))}).record(
        images, progress=False)
    with torch.no_grad():
        np.testing.assert_allclose(ds.responses.values, net.conv(images).flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(LayoutError, match=r"'seq' outputs per-stimulus shape \(64, 4\).*transformer tokens.*tokens_to_map"):
        cx.SimulatedCortex(net, {"IT": "seq"}).record(images, progress=False)
    with pytest.raises(LayoutError, match=r"shape \(1, 4, 8, 8\); layouts place a \(C,\) vector.*Area\('five', transform=fn\)"):
        cx.SimulatedCortex(net, {"IT": "five"}).record(images, progress=False)
    with pytest.raises(LayoutError, match=r"transform returns per-stimulus shape \(4, 8\)"):
        cx.SimulatedCortex(net, {"IT": Area("conv", transform=lambda y: y[:, :, 0])}).record(images, progress=False)
    with pytest.raises(LayoutError, match="B = 5 first; it returned \\(4, 8, 8\\)"):
        cx.SimulatedCortex(net, {"IT": Area("conv", transform=lambda y: y[0])}).record(images, progress=False)
    with pytest.raises(LayoutError, match="must be callable"):
        Area("conv", transform="permute")
    # a channel layout places the D channels of a ViT map and averages over the patch grid
    ch = cx.SimulatedCortex(net, {"V1": Area("nhwc", transform=lambda y: y.permute(0, 3, 1, 2))}, layout="grid2d")
    assert ch.record(images, progress=False).sizes["unit"] == 4


@pytest.mark.slow
def test_vit_b_16_encoder_layer_11_just_works():
    torch.manual_seed(0)
    vit = torchvision.models.vit_b_16(weights=None, image_size=32).eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cortex = cx.SimulatedCortex(vit, {"IT": "encoder.layers.encoder_layer_11"})
    ds = cortex.record(x, progress=False)
    assert cortex.shapes["IT"] == (768, 2, 2) and ds.sizes["unit"] == 768 * 4  # (32 / 16)² patches, CLS dropped
    tok = _tokens(vit, x, 11).numpy()
    d, i, j = ds.channel.values, ds.row.values, ds.col.values
    np.testing.assert_allclose(ds.responses.values, tok[:, 1 + 2 * i + j, d], rtol=1e-4, atol=1e-5)
    assert ds.x_mm.max() <= 70.0  # IT's default (VTC) sheet


def test_brainscore_plugin_of_a_token_area_is_a_clear_error(tiny_vit, tmp_path):
    # Brain-Score flattens the raw (1 + 16, 16) tokens into 272 neuroids; the Sheet has 16·4·4 = 256 units
    from cortexsim.brainscore.plugin import write_plugin
    from cortexsim.errors import BrainScoreError

    cortex = cx.SimulatedCortex(tiny_vit, {"IT": "encoder.layers.encoder_layer_1"})
    with pytest.raises(BrainScoreError, match=r"raw per-stimulus output \(17, 16\) \(272 neuroids\).*\(16, 4, 4\)"):
        write_plugin(cortex, "cx-vit", tmp_path, image_size=32)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())  # nothing half-written
