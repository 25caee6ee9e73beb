"""Brain-Score model plugins: written folders, their self-contained model.py, and the plugin run by brainscore-vision.

The Brain-Score side runs in the separate environment (created by `cortexsim brainscore setup`; CI does it),
inside a network namespace where the machine allows one.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cortexsim as cx
from cortexsim.brainscore import codegen
from cortexsim.brainscore.plugin import folder_name, plugin_cortex, write_plugin
from cortexsim.errors import BrainScoreError

FORBIDDEN = ("load_" "benchmark", "load_" "dataset", "load_" "stimulus_set", "check_" "models", "load_" "model(")


def tiny_cortex() -> cx.SimulatedCortex:
    """16-px conv net: V1 unit-level (retinotopic), V4 and IT channel-level (grid2d)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 5))
    return cx.SimulatedCortex(net, areas={"V1": "1", "V4": "4", "IT": "7"},
                              layout={"V1": "retinotopic", "V4": "grid2d", "IT": "grid2d"})


def png_stimuli(folder, n=3, size=16, seed=0):
    """n random RGB PNGs of size×size and the same images as an (n, 3, size, size) tensor in [0, 1]."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    paths = {}
    for i, img in enumerate(pixels):
        paths[f"img{i}"] = folder / f"img{i}.png"
        Image.fromarray(img).save(paths[f"img{i}"])
    return paths, torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255


def test_folder_layout_and_region_map(tmp_path):
    info = write_plugin(tiny_cortex(), "cx-tiny", tmp_path, image_size=16)
    folder = tmp_path / "models" / "cx_tiny"
    assert info.folder == folder
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["__init__.py", "cortexsim.json", "model.py", "positions.npz", "region_layer_map",
                     "requirements.txt", "test.py", "weights.pt"]
    init = (folder / "__init__.py").read_text()
    assert "model_registry['cx-tiny'] = lambda: ModelCommitment(identifier='cx-tiny'" in init
    assert "region_layer_map=" in init
    assert json.loads((folder / "region_layer_map" / "cx-tiny.json").read_text()) == {"V1": "1", "V4": "4", "IT": "7"}
    assert info.n_neuroids == {"1": 4 * 16 * 16, "4": 6 * 8 * 8, "7": 5}
    assert "no layer for V2" in info.messages[0]
    text = "".join(p.read_text() for p in folder.glob("*.py"))
    assert "cortexsim" not in (folder / "requirements.txt").read_text()
    assert "import cortexsim" not in text and "from cortexsim" not in text
    assert "weights_only=True" in text
    assert not [f for f in FORBIDDEN if f in text]
    state = torch.load(folder / "weights.pt", weights_only=True)
    assert set(state) == {"0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"}


def test_positions_file_is_the_sheet_in_flatten_order(tmp_path):
    info = write_plugin(tiny_cortex(), "cx-tiny", tmp_path, image_size=16)
    cortex, region_map, size, _ = plugin_cortex(tiny_cortex(), image_size=16)
    sheet = cortex.record(torch.rand(2, 3, size, size), progress=False)
    with np.load(info.folder / "positions.npz") as z:
        v1, v4 = z["layer0"], z["layer1"]
    s1, s4 = sheet.cortex.area("V1"), sheet.cortex.area("V4")
    np.testing.assert_array_equal(v1[:, 0], s1.x_mm.values)          # unit k = neuroid k
    np.testing.assert_array_equal(v1[:, 1], s1.y_mm.values)
    c, r, k = np.unravel_index(np.arange(4 * 16 * 16), (4, 16, 16))  # Brain-Score's (C, H, W) flatten
    assert (s1.channel.values == c).all() and (s1.row.values == r).all() and (s1.col.values == k).all()
    np.testing.assert_array_equal(v4[:, 0], np.repeat(s4.x_mm.values, 64))  # channel level: 8×8 per channel


@pytest.mark.slow
def test_model_py_rebuilds_method_architectures():
    """The generated architecture code reproduces the networks (Reset's tiling buffer, ResNet-20 blocks, th_*)."""
    from cortexsim.adapters import get_method

    for method, arch in [("ws", "th_mnist"), ("reset", "resnet20")]:
        net = get_method(method).build(arch, 10, image_size=32, **({"n": 1, "m": 8} if method == "reset" else {}))
        keep = list(net.areas.values())
        rebuilt = codegen.build_from_source(codegen.architecture_source(net, keep))
        rebuilt.load_state_dict(codegen.state_dict_for(rebuilt, net))
        codegen.verify(rebuilt, net, keep, torch.rand(2, 3, 32, 32))  # raises on a difference
        assert "import cortexsim" not in codegen.architecture_source(net, keep)


def test_verify_catches_a_wrong_rebuild():
    net = tiny_cortex().model
    rebuilt = codegen.build_from_source(codegen.architecture_source(net, ["1"]))
    state = codegen.state_dict_for(rebuilt, net)
    state["0.bias"] = state["0.bias"] + 1.0
    rebuilt.load_state_dict(state)
    with pytest.raises(BrainScoreError, match="differs"):
        codegen.verify(rebuilt, net, ["1"], torch.rand(2, 3, 16, 16))


def test_untraceable_forward_is_a_clear_error():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else -self.conv(x)  # data-dependent: fx cannot trace it

    with pytest.raises(BrainScoreError, match="torch.fx cannot trace"):
        codegen.architecture_source(Branchy(), ["conv"])


def test_bad_plugin_inputs(tmp_path):
    with pytest.raises(BrainScoreError, match="unknown region 'V3'"):
        write_plugin(tiny_cortex(), "x", tmp_path, image_size=16, regions={"V3": "1"})
    with pytest.raises(BrainScoreError, match="not modules"):
        write_plugin(tiny_cortex(), "x", tmp_path, image_size=16, regions={"V2": "nope"})
    with pytest.raises(BrainScoreError, match="identifier must be"):
        write_plugin(tiny_cortex(), "my model", tmp_path, image_size=16)
    with pytest.raises(BrainScoreError, match="image_size"):
        write_plugin(tiny_cortex(), "x", tmp_path)
    with pytest.raises(BrainScoreError, match="no run folder"):
        write_plugin(tmp_path / "nothing", "x", tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"trainer": {}, "build": {"method": "ws", "arch": "th_mnist",
                                                                          "num_classes": 10}}))
    with pytest.raises(BrainScoreError, match="missing weights"):
        write_plugin(run, "x", tmp_path)
    torch.save({"bogus": torch.zeros(1)}, run / "model.pt")
    with pytest.raises(BrainScoreError, match="does not fit"):
        write_plugin(run, "x", tmp_path)
    write_plugin(tiny_cortex(), "x", tmp_path, image_size=16)
    with pytest.raises(BrainScoreError, match="exists"):
        write_plugin(tiny_cortex(), "x", tmp_path, image_size=16)
    assert folder_name("2-model.v1") == "m_2_model_v1"


@pytest.mark.slow
def test_weights_url_moves_weights_out_and_large_zip_is_reported(tmp_path):
    info = write_plugin(tiny_cortex(), "cx-url", tmp_path, image_size=16, weights_url="https://example.org/w.pt")
    assert not (info.folder / "weights.pt").exists()
    assert info.weights == tmp_path / "cx_url.weights.pt" and info.weights.is_file()  # outside models/
    model_py = (info.folder / "model.py").read_text()
    assert "WEIGHTS_URL = 'https://example.org/w.pt'" in model_py
    assert "download_url_to_file" in model_py and "hash_prefix=WEIGHTS_SHA256" in model_py
    big = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 20_000))  # 15.4 M weights: ~61 MB
    cortex = cx.SimulatedCortex(big, areas={"IT": "1"}, layout="grid2d")
    with pytest.warns(UserWarning, match="50 MB"):
        info = write_plugin(cortex, "cx-big", tmp_path, image_size=16)
    assert info.zip_mb > 50 and "--weights-url" in info.messages[-1]


@pytest.mark.slow
def test_plugin_in_brainscore_lines_up_with_the_sheet(tmp_path):
    """brainscore-vision builds the commitment from the folder; look_at = Sheet responses, tissue_x/y = positions."""
    from cortexsim.brainscore.lookat import look_at
    from cortexsim.brainscore.testing import require_env

    require_env()
    info = write_plugin(tiny_cortex(), "cx-tiny", tmp_path / "plugins", image_size=16)
    paths, images = png_stimuli(tmp_path)
    acts, meta = look_at(info.folder, paths, run_plugin_tests=True, workdir=tmp_path / "work")
    assert meta["tests"] == {"test_commitment": "passed", "test_look_at_has_positions": "passed"}
    assert meta["region_layer_map"] == {"V1": "1", "V4": "4", "IT": "7"}
    cortex, _, _, _ = plugin_cortex(tiny_cortex(), image_size=16)
    sheet = cortex.record(images, progress=False)
    for region, n in (("V1", 1024), ("V4", 384), ("IT", 5)):
        act, area = acts[region], sheet.cortex.area(region)
        assert act.shape == (3, n)
        assert list(act.stimulus_id.values) == ["img0", "img1", "img2"]
        per_channel = n // area.sizes["unit"]
        np.testing.assert_array_equal(act.tissue_x.values, np.repeat(area.x_mm.values, per_channel))
        np.testing.assert_array_equal(act.tissue_y.values, np.repeat(area.y_mm.values, per_channel))
        got = act.values.reshape(3, area.sizes["unit"], per_channel).mean(-1)  # channel level: Sheet = map mean
        np.testing.assert_allclose(got, area.responses.values, rtol=1e-4, atol=1e-5)
    v1 = sheet.cortex.area("V1")  # Brain-Score's channel / channel_x / channel_y = the Sheet's channel / row / col
    np.testing.assert_array_equal(acts["V1"].channel.values, v1.channel.values)
    np.testing.assert_array_equal(acts["V1"].channel_x.values, v1.row.values)
    np.testing.assert_array_equal(acts["V1"].channel_y.values, v1.col.values)


@pytest.mark.slow
def test_plugin_from_a_training_run(tmp_path):
    """A real run folder (ws on th_mnist, 1 step) -> plugin; Brain-Score records IT (trained grid) and a mapped V1."""
    from cortexsim.adapters.trainer import Trainer
    from cortexsim.brainscore.lookat import look_at
    from cortexsim.brainscore.testing import require_env

    require_env()
    Trainer(method="ws", arch="th_mnist", data="digits", steps=1, batch_size=8, device="cpu", progress=False,
            out=tmp_path / "run").fit()
    info = write_plugin(tmp_path / "run", "cx-ws", tmp_path / "plugins", regions={"V1": "net.conv2"})
    assert info.region_layer_map == {"V1": "net.conv2", "IT": "net.fc1"}
    assert info.n_neuroids == {"net.conv2": 64 * 16 * 16, "net.fc1": 121}
    paths, images = png_stimuli(tmp_path, n=2, size=32)
    acts, _ = look_at(info.folder, paths, workdir=tmp_path / "work")
    cortex, _, _, _ = plugin_cortex(tmp_path / "run", {"V1": "net.conv2"})
    sheet = cortex.record(images, progress=False)
    it = sheet.cortex.area("IT")
    np.testing.assert_array_equal(acts["IT"].tissue_x.values, it.x_mm.values)  # the trained 11×11 grid
    np.testing.assert_allclose(acts["IT"].values, it.responses.values, rtol=1e-4, atol=1e-5)
    assert acts["V1"].shape == (2, 16384)
