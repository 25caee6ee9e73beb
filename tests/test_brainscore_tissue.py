"""The tissue-correlation benchmark: correlation vs cortical distance, without Brain-Score and as Brain-Score plugins."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.ndimage import gaussian_filter

import cortexsim as cx
from cortexsim.brainscore import tissue_core as core
from cortexsim.brainscore.exchange import load_neural
from cortexsim.brainscore.tissue import tissue_correlation
from cortexsim.errors import BrainScoreError

FIELD_MM, GRID = 4.0, 64


def smooth_world(n_stim=40, seed=0):
    """One smooth random map per stimulus over a 4 mm patch (σ ≈ 0.4 mm): responses of a unit at p = map(p)."""
    rng = np.random.default_rng(seed)
    maps = np.stack([gaussian_filter(rng.normal(size=(GRID, GRID)), 6, mode="wrap") for _ in range(n_stim)])
    maps /= maps.std()

    def sample(pos):
        ij = np.clip((pos / FIELD_MM * GRID).astype(int), 0, GRID - 1)
        return maps[:, ij[:, 0], ij[:, 1]]
    return sample, [f"s{i}" for i in range(n_stim)], rng


def model_and_recording(n_units=300, n_sites=50, n_reps=4):
    sample, ids, rng = smooth_world()
    pos = rng.uniform(0, FIELD_MM, (n_units, 2))
    sheet = cx.make_sheet((sample(pos) + 0.3 * rng.normal(size=(len(ids), n_units))).astype(np.float32),
                          x_mm=pos[:, 0], y_mm=pos[:, 1], area="IT", stimuli={"stimulus_id": ids})
    sites = rng.uniform(0.5, 3.5, (n_sites, 2))
    signal = sample(sites)
    reps = np.stack([signal + 0.5 * rng.normal(size=signal.shape) for _ in range(n_reps)])
    neural = xr.DataArray(reps, dims=("repetition", "presentation", "neuroid"),
                          coords={"stimulus_id": ("presentation", ids),
                                  "neuroid_id": ("neuroid", [f"e{i}" for i in range(n_sites)]),
                                  "tissue_x": ("neuroid", sites[:, 0]), "tissue_y": ("neuroid", sites[:, 1]),
                                  "region": ("neuroid", ["IT"] * n_sites)})
    return sheet, neural, rng


def test_same_map_scores_high_and_shuffled_positions_low():
    sheet, neural, rng = model_and_recording()
    same = tissue_correlation(sheet, neural)
    perm = rng.permutation(sheet.sizes["unit"])
    shuffled_sheet = sheet.assign_coords(x_mm=("unit", sheet.x_mm.values[perm]), y_mm=("unit", sheet.y_mm.values[perm]))
    shuffled = tissue_correlation(shuffled_sheet, neural)
    for r in (same, shuffled):
        assert 0 <= r.raw <= 1 and 0 <= r.score <= 1 and 0 < r.ceiling <= 1
    assert same.score > 0.85 and same.normalized > 0.6
    assert shuffled.raw < same.raw - 0.15 and shuffled.normalized < 0.15
    assert same.shuffled_raw == pytest.approx(shuffled.raw, abs=0.05)  # the built-in control = a shuffled Sheet
    assert same.data_mean_r[0] > 0.5 > abs(same.data_mean_r[-3])  # correlations fall off with distance
    assert same.ceiling == shuffled.ceiling and same.n_sites == 50 and same.n_units == 300
    ds = same.to_dataset()
    assert ds.sizes["distance_mm"] == 10 and ds.attrs["raw"] == same.raw


def test_ks_similarity_and_pair_sampling_by_hand():
    a = np.array([0.1, 0.2, 0.3, 0.4])
    assert core.ks_similarity(a, a) == 1.0
    assert core.ks_similarity(a, a + 1.0) == 0.0
    assert core.ks_similarity(a, np.array([0.15, 0.25, 0.35, 5.0])) == pytest.approx(0.75)  # max CDF gap 1/4
    i, j = core.sample_pairs(5)
    assert len(i) == 10 and (i < j).all()
    i, j = core.sample_pairs(3000, max_pairs=5000, seed=1)
    assert len(set(zip(i.tolist(), j.tolist()))) == len(i) > 4500 and (i < j).all() and j.max() < 3000
    z = core.zscore(np.array([[1.0, 2.0, 5.0], [2.0, 4.0, 5.0], [3.0, 7.0, 5.0]]))
    r = core.pair_correlations(z, np.array([0, 0]), np.array([1, 2]))
    assert r[0] == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1]) and r[1] == 0.0  # a constant unit: 0


def test_bad_inputs():
    sheet, neural, _ = model_and_recording(n_units=40, n_sites=10, n_reps=2)
    with pytest.raises(BrainScoreError, match="no recording-site positions"):
        tissue_correlation(sheet, neural.drop_vars(["tissue_x", "tissue_y"]))
    with pytest.raises(BrainScoreError, match="≥ 3 stimuli"):
        tissue_correlation(sheet, neural.isel(presentation=[0, 1]))
    with pytest.raises(BrainScoreError, match="bins must be increasing"):
        tissue_correlation(sheet, neural, bins=[0, 2, 1])
    in_um = neural.assign_coords(tissue_x=neural.tissue_x * 1000, tissue_y=neural.tissue_y * 1000)
    with pytest.raises(BrainScoreError, match="both are in mm"):
        tissue_correlation(sheet, in_um)  # sites in µm: no bin holds model pairs
    with pytest.raises(BrainScoreError, match="missing"):
        tissue_correlation(sheet, load_neural(neural).isel(presentation=slice(1, None)))  # repetition 0 lacks s0


def test_benchmark_plugin_folders(tmp_path):
    from PIL import Image

    from cortexsim.brainscore.benchplugin import write_tissue_benchmark

    _, neural, rng = model_and_recording(n_units=10, n_sites=30, n_reps=2)
    stimuli = {}
    for sid in neural.stimulus_id.values[:40]:
        stimuli[sid] = tmp_path / f"{sid}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(stimuli[sid])
    info = write_tissue_benchmark(neural, stimuli, "lab.IT-tissue", tmp_path / "out")
    assert (info.benchmark / "__init__.py").read_text().count("benchmark_registry['lab.IT-tissue']") == 1
    assert "metric_registry['lab.IT-tissue']" in (info.metric / "__init__.py").read_text()
    assert (info.metric / "tissue_core.py").read_text() == open(core.__file__).read()
    assert len(list((info.benchmark / "stimuli").iterdir())) == 40
    assert info.region == "IT" and 0 < info.ceiling <= 1
    with pytest.raises(BrainScoreError, match="have no image"):
        write_tissue_benchmark(neural, dict(list(stimuli.items())[:5]), "x", tmp_path / "o2")
    with pytest.raises(BrainScoreError, match="exists"):
        write_tissue_benchmark(neural, stimuli, "lab.IT-tissue", tmp_path / "out")


@pytest.mark.slow
def test_benchmark_plugin_scores_a_model_plugin_in_brainscore(tmp_path):
    """Brain-Score runs the written benchmark on a written model plugin: same raw score as tissue_correlation."""
    import torch
    from PIL import Image
    from torch import nn

    from cortexsim.brainscore.benchplugin import score_benchmark, write_tissue_benchmark
    from cortexsim.brainscore.plugin import plugin_cortex, write_plugin
    from cortexsim.brainscore.testing import require_env

    require_env()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64, 3))
    cortex = cx.SimulatedCortex(net, areas={"V1": "1"}, layout="retinotopic")
    model = write_plugin(cortex, "cx-tissue", tmp_path / "plugins", image_size=16)
    rng = np.random.default_rng(0)
    smooth = gaussian_filter(rng.normal(size=(40, 16, 16, 3)), (0, 1.5, 1.5, 0))
    pixels = np.clip(128 + 60 * smooth / smooth.std(), 0, 255).astype(np.uint8)
    files = {}
    for k, img in enumerate(pixels):
        files[f"s{k}"] = tmp_path / f"s{k}.png"
        Image.fromarray(img).save(files[f"s{k}"])
    sheet = plugin_cortex(cortex, image_size=16)[0].record(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255,
                                                          progress=False)
    sheet = sheet.assign_coords(stimulus_id=("stimulus", list(files)))
    v1 = sheet.cortex.area("V1")
    sites = rng.choice(v1.sizes["unit"], 60, replace=False)  # a "recording" of 60 of the model's own units
    resp = v1.responses.values[:, sites]
    reps = np.stack([resp + 0.2 * resp.std() * rng.normal(size=resp.shape) for _ in range(2)])
    neural = xr.DataArray(reps, dims=("repetition", "presentation", "neuroid"),
                          coords={"stimulus_id": ("presentation", list(files)),
                                  "neuroid_id": ("neuroid", [f"e{i}" for i in range(60)]),
                                  "tissue_x": ("neuroid", v1.x_mm.values[sites]),
                                  "tissue_y": ("neuroid", v1.y_mm.values[sites])})
    bench = write_tissue_benchmark(neural, files, "cx.V1-tissue", tmp_path / "bench", region="V1", n_bins=6)
    local = tissue_correlation(sheet, neural, region="V1", bins=bench.edges_mm)
    result = score_benchmark(model.folder, bench, workdir=tmp_path / "work")
    assert result["attrs"]["raw"] == pytest.approx(local.raw, abs=0.02)
    assert result["ceiling"] == pytest.approx(bench.ceiling) == pytest.approx(local.ceiling)
    assert result["score"] == pytest.approx(min(1, result["attrs"]["raw"] / bench.ceiling))
    assert 0 <= result["score"] <= 1 and len(result["attrs"]["similarity_per_bin"]) == 6
