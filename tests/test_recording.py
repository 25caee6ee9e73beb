"""Recording with forward hooks on torchvision models."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import dask.array
import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
import xarray as xr

import cortexsim as cx
from cortexsim import LayerNotFoundError, LayoutError, StimulusError
from cortexsim.layout import place


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None, num_classes=10).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def manual_layer_outputs(m, x):
    """resnet18's layer2.0 and layer4.1 outputs, computed by calling the blocks directly."""
    with torch.no_grad():
        h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        h = m.layer1(h)
        v1 = m.layer2[0](h)
        h = m.layer4(m.layer3(m.layer2[1](v1)))
    return v1, h


@pytest.mark.slow  # > 5 s on the 2-core machine (pytest --durations)
def test_resnet18_unit_level(resnet, images):
    ds = cx.SimulatedCortex(resnet, {"V1": "layer2.0", "IT": "layer4.1"}).record(images, batch_size=4, progress=False)
    v1, it = manual_layer_outputs(resnet, images)
    assert v1.shape[1:] == (128, 4, 4) and it.shape[1:] == (512, 1, 1)
    assert ds.sizes == {"stimulus": 6, "unit": 128 * 16 + 512}
    got_v1 = ds.responses.values[:, ds.area.values == "V1"]
    np.testing.assert_allclose(got_v1, v1.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.responses.values[:, ds.area.values == "IT"], it.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    # units are in flatten order (c, h, w): unit 17 of V1 is channel 1, row 0, col 1
    v1ds = ds.cortex.area("V1")
    assert (int(v1ds.channel[17]), int(v1ds.row[17]), int(v1ds.col[17])) == (1, 0, 1)
    # default sheet sizes: TDANN's V1 36.75 mm, IT (VTC) 70 mm
    assert v1ds.x_mm.max() <= 36.75 and ds.cortex.area("IT").x_mm.max() <= 70.0
    assert len(np.unique(ds.unit_id)) == ds.sizes["unit"]
    assert '"V1": "retinotopic"' in ds.attrs["layout"]


@pytest.mark.slow  # > 5 s on the 2-core machine (pytest --durations)
def test_channel_layout_reduces_space(resnet, images):
    cortex = cx.SimulatedCortex(resnet, {"V1": "layer2.0"}, layout="grid2d")
    ds = cortex.record(images, batch_size=6, progress=False)
    v1, _ = manual_layer_outputs(resnet, images)
    np.testing.assert_allclose(ds.responses.values, v1.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.cortex.positions, place("grid2d", (128,)).positions)
    center = cx.SimulatedCortex(resnet, {"V1": "layer2.0"}, layout="grid2d", spatial="center").record(images, progress=False)
    np.testing.assert_allclose(center.responses.values, v1[:, :, 2, 2].numpy(), rtol=1e-5, atol=1e-6)


def test_3d_layout_and_dense_layer(resnet, images):
    ds = cx.SimulatedCortex(resnet, {"IT": "layer4.1", "out": "fc"}, layout={"IT": "sphere", "out": "square_grid"}).record(
        images, progress=False
    )
    assert "z_mm" in ds.coords and ds.sizes["unit"] == 512 + 10
    with torch.no_grad():
        logits = resnet(images)
    np.testing.assert_allclose(ds.responses.values[:, ds.area.values == "out"], logits.numpy(), rtol=1e-5, atol=1e-5)
    out = ds.cortex.area("out")
    assert out.row.values.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]


def test_unknown_layer_lists_close_matches(resnet):
    with pytest.raises(LayerNotFoundError, match=r"no module 'layer4\.2'.*Close matches: layer4\.1"):
        cx.SimulatedCortex(resnet, {"IT": "layer4.2"})
    assert issubclass(LayerNotFoundError, KeyError)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(2, 32, 32), "N×C×H×W"),
        (torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8), "floating point"),
        (torch.rand(2, 1, 32, 32), "expects 3 input channels; stimuli have 1"),
        (torch.full((2, 3, 32, 32), float("nan")), "NaN"),
        ([1, 2, 3], "tensor / array"),
    ],
)
def test_bad_stimuli(resnet, bad, match):
    with pytest.raises(StimulusError, match=match):
        cx.SimulatedCortex(resnet, {"IT": "layer4.1"}).record(bad, progress=False)


def test_positions_must_match_units(resnet, images):
    wrong = place("grid2d", (64,))
    with pytest.raises(LayoutError, match="cover 64 units.*Positions must match"):
        cx.SimulatedCortex(resnet, {"IT": "layer4.1"}, placements={"layer4.1": wrong}).record(images, progress=False)
    right = place("circle", (512,))
    ds = cx.SimulatedCortex(resnet, {"IT": "layer4.1"}, placements={"layer4.1": right}).record(images, progress=False)
    np.testing.assert_allclose(ds.cortex.positions, right.positions)


class TinySet:
    """Minimal StimulusSet: the protocol SimulatedCortex.record accepts."""

    def __init__(self, n):
        self.images = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(2))
        self.metadata = pd.DataFrame({"stimulus_id": [f"img{i}" for i in range(n)], "domain": ["faces", "places"] * (n // 2)})

    def __len__(self):
        return len(self.images)

    def batches(self, batch_size):
        for i in range(0, len(self), batch_size):
            yield self.images[i : i + batch_size]


def test_stimulus_set_metadata_becomes_coords(resnet):
    s = TinySet(6)
    ds = cx.record(resnet, s, {"IT": "layer4.1"}, batch_size=4, progress=False)
    assert list(ds.stimulus_id.values) == [f"img{i}" for i in range(6)]
    assert list(ds.domain.values) == ["faces", "places"] * 3
    assert ds.groupby("domain").mean().sizes["domain"] == 2


@pytest.mark.slow  # > 5 s on the 2-core machine (pytest --durations)
def test_streaming_equals_in_memory(resnet, images, tmp_path):
    cortex = cx.SimulatedCortex(resnet, {"V1": "layer2.0", "IT": "layer4.1"})
    mem = cortex.record(images, batch_size=4, progress=False)
    disk = cortex.record(images, batch_size=4, out=tmp_path / "s.h5", progress=False)
    assert isinstance(disk.responses.data, dask.array.Array) and disk.responses.shape == (6, 128 * 16 + 512)  # lazy
    xr.testing.assert_equal(mem.drop_attrs(), disk.load().drop_attrs())
    with xr.open_dataset(tmp_path / "s.h5") as plain:
        np.testing.assert_array_equal(plain.responses.values, mem.responses.values)


def test_failed_recording_leaves_no_file(resnet, tmp_path):
    class Broken(TinySet):
        def batches(self, batch_size):
            yield self.images[:2]
            raise RuntimeError("camera unplugged")

    with pytest.raises(RuntimeError, match="camera unplugged"):
        cx.record(resnet, Broken(4), {"IT": "layer4.1"}, batch_size=2, out=tmp_path / "s.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_model_left_in_training_mode_is_restored(images):
    m = torchvision.models.resnet18(weights=None, num_classes=10).train()
    before = m.bn1.running_mean.clone()
    cx.record(m, images, {"IT": "layer4.1"}, progress=False)
    assert m.training and torch.equal(m.bn1.running_mean, before)  # eval during recording: BN stats untouched


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_matches_cpu(resnet, images):
    cpu = cx.record(resnet, images, {"IT": "layer4.1"}, progress=False)
    gpu = cx.record(resnet, images, {"IT": "layer4.1"}, device="cuda", amp=True, progress=False)
    resnet.cpu()
    np.testing.assert_allclose(gpu.responses.values, cpu.responses.values, rtol=0.05, atol=0.05)


@pytest.mark.slow  # > 5 s on the 2-core machine (pytest --durations)
def test_streaming_memory_is_bounded(tmp_path):
    """Recording 512 MB of responses in 6.4 MB batches must not grow RSS by more than 150 MB."""
    script = textwrap.dedent(f"""
        import resource, torch, numpy as np, pandas as pd, cortexsim as cx
        torch.set_num_threads(2)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1)).eval()  # 65,536 units / image
        class Lazy:  # generates images batch by batch: nothing big is held
            metadata = pd.DataFrame({{"stimulus_id": [f"s{{i}}" for i in range(2048)]}})
            def __len__(self): return 2048
            def batches(self, b):
                g = torch.Generator().manual_seed(0)
                for i in range(0, 2048, b):
                    yield torch.rand(min(b, 2048 - i), 3, 32, 32, generator=g)
        cortex = cx.SimulatedCortex(model, {{"V1": "0"}}, layout="retinotopic")
        cortex.record(torch.rand(2, 3, 32, 32), progress=False)  # warm-up: allocator, placements
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ds = cortex.record(Lazy(), batch_size=25, out={str(tmp_path / "big.h5")!r}, compression=None, progress=False)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        total = ds.responses.size * 4
        print(total, (peak - base) * 1024)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    total, growth = map(int, res.stdout.split())
    assert total == 2048 * 65536 * 4
    assert growth < 150 * 2**20, f"RSS grew by {growth / 2**20:.0f} MB while streaming {total / 2**20:.0f} MB"


@pytest.mark.parametrize(
    "name, areas",
    [
        ("mobilenet_v3_small", {"V4": "features.3", "IT": "features.12"}),
        ("efficientnet_b0", {"V1": "features.2", "IT": "features.7.0"}),
    ],
)
@pytest.mark.slow  # > 5 s on the 2-core machine (pytest --durations)
def test_other_torchvision_models(name, areas):
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, num_classes=3).eval()
    x = torch.rand(2, 3, 32, 32)
    outputs = {}
    hooks = [dict(model.named_modules())[m].register_forward_hook(lambda _m, _i, o, a=a: outputs.__setitem__(a, o))
             for a, m in areas.items()]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    ds = cx.record(model, x, areas, progress=False)
    assert ds.sizes["unit"] == sum(o[0].numel() for o in outputs.values())
    for area in areas:
        np.testing.assert_allclose(ds.cortex.area(area).responses.values, outputs[area].flatten(1).numpy(), rtol=1e-5, atol=1e-6)


def test_record_twice_at_different_image_sizes(resnet):
    cortex = cx.SimulatedCortex(resnet, {"V1": "layer2.0", "IT": "layer4.1"}, layout={"V1": "retinotopic", "IT": "grid2d"})
    small = cortex.record(torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3)), progress=False)
    large = cortex.record(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4)), progress=False)
    assert cortex.shapes == {"V1": (128, 8, 8), "IT": (512, 2, 2)}  # the last recording's output shapes
    assert small.sizes["unit"] == 128 * 4 * 4 + 512 and large.sizes["unit"] == 128 * 8 * 8 + 512
    # V1 gets each map size's sheet (same extent, finer grid); the channel layout of IT is the same
    assert int(large.cortex.area("V1").row.max()) == 7 and int(small.cortex.area("V1").row.max()) == 3
    np.testing.assert_array_equal(small.cortex.area("IT").x_mm, large.cortex.area("IT").x_mm)
    again = cortex.record(torch.rand(1, 3, 32, 32), progress=False)  # back to 32 px: the same sheet as before
    np.testing.assert_array_equal(again.x_mm.values, small.x_mm.values)
    # positions fixed for one map size say which size they were made for
    fixed = cx.SimulatedCortex(resnet, {"V1": "layer2.0"}, placements={"layer2.0": place("retinotopic", (128, 4, 4))})
    with pytest.raises(LayoutError, match=r"cover 2048 units.*outputs \(128, 8, 8\).*image size they were made for"):
        fixed.record(torch.rand(1, 3, 64, 64), progress=False)


class _MixedSizes:
    """A stimulus set whose second batch has another image size."""

    metadata = None

    def __len__(self) -> int:
        return 2

    def batches(self, batch_size):
        yield torch.rand(1, 3, 32, 32)
        yield torch.rand(1, 3, 64, 64)


def test_one_recording_refuses_stimuli_of_two_sizes(resnet):
    with pytest.raises(StimulusError, match=r"area 'V1': stimuli from index 1 give outputs \(128, 8, 8\), earlier ones "
                                            r"\(128, 4, 4\); all stimuli of one recording must have one size"):
        cx.SimulatedCortex(resnet, {"V1": "layer2.0"}).record(_MixedSizes(), progress=False)
