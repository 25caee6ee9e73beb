"""fLoc sets: offline set balance and labels, user-folder layout, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cortexsim import stimuli
from cortexsim.errors import StimulusError
from cortexsim.stimuli import DatasetNotFoundError


@pytest.fixture(scope="module")
def offline():
    return stimuli.floc_offline(image_size=32, n_per_category=6, seed=0)


def test_offline_is_balanced_and_correctly_labelled(offline):
    m = offline.metadata
    counts = m.groupby(["domain", "category"]).size()
    assert counts.to_dict() == {(d, c): 6 for d, cs in stimuli.OFFLINE_CATEGORIES.items() for c in cs}
    assert "faces" in set(m["domain"]) and "bodies" not in set(m["domain"])
    assert m["stimulus_id"].is_unique
    src = m.set_index("category")["source"]
    assert src["adult"].str.startswith("lfw_subset:").all()
    assert src["number"].str.startswith("load_digits:").all()
    assert src["texture"].isin(["skimage:brick", "skimage:grass", "skimage:gravel"]).all()
    x = offline.tensor()
    assert x.shape == (36, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    faces = x[torch.as_tensor(np.array(m["domain"] == "faces"))]
    assert torch.allclose(faces[:, 0], faces[:, 1])  # grey faces replicated to RGB
    chars = x[torch.as_tensor(np.array(m["domain"] == "characters"))]
    assert chars.mean() > 0.6  # dark ink on white paper


def test_offline_face_crops_match_lfw_pixels():
    """With no jitter the first face equals the lfw image resampled: compare with a direct reference."""
    import skimage.data

    s = stimuli.floc_offline(image_size=25, n_per_category=3, domains=["faces"], seed=1)
    m = s.metadata
    k = int(m["source"][0].split(":")[1])
    ref = torch.from_numpy(skimage.data.lfw_subset()[k].astype(np.float32))
    box = s.sets[0].boxes[0]
    img = s[0][0]
    if s.sets[0].flip[0]:
        img = img.flip(-1)
    # the crop is a sub-window of the face: the centre pixel of the output lies at the box centre
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    from scipy.ndimage import map_coordinates

    expect = map_coordinates(ref.numpy(), [[cy - 0.5], [cx - 0.5]], order=1)[0]
    assert float(img[12, 12]) == pytest.approx(float(expect), abs=0.05)


def test_offline_deterministic_and_demo_call():
    a = stimuli.floc_offline(image_size=16, n_per_category=3, seed=4)
    b = stimuli.floc_offline(image_size=16, n_per_category=3, seed=4)
    c = stimuli.floc_offline(image_size=16, n_per_category=3, seed=5)
    assert torch.equal(a.tensor(), b.tensor()) and not torch.equal(a.tensor(), c.tensor())
    assert torch.equal(torch.cat(list(a.batches(5))), a.tensor())
    demo = stimuli.floc_offline(image_size=64, n_per_category=20, seed=0)
    assert len(demo) == 120 and "faces" in demo.metadata["domain"].values


def test_offline_errors():
    with pytest.raises(StimulusError, match=r"not available in floc_offline.*floc\(path\)"):
        stimuli.floc_offline(domains=["bodies"])
    with pytest.raises(StimulusError, match="unknown domain"):
        stimuli.floc_offline(domains=["animals"])


def _write_floc(root, counts):
    rng = np.random.default_rng(0)
    for (dom, cat), n in counts.items():
        d = root / dom / cat
        d.mkdir(parents=True)
        for i in range(n):
            arr = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{cat}-{i}.png" if i % 2 else d / f"{cat}-{i}.jpg")


def test_folder_layout_balanced_lazy_reading(tmp_path):
    _write_floc(tmp_path, {("faces", "adult"): 3, ("faces", "child"): 5, ("places", "house"): 4})
    s = stimuli.floc(tmp_path, image_size=16, seed=0)
    m = s.metadata
    assert m.groupby(["domain", "category"]).size().to_dict() == {("faces", "adult"): 3, ("faces", "child"): 3, ("places", "house"): 3}
    assert all(p.split("/")[-2] == c for p, c in zip(m["path"], m["category"]))
    # pixels: compare one image with PIL's own resize+centre-crop
    from PIL import ImageOps

    with Image.open(m["path"][0]) as im:
        ref = np.asarray(ImageOps.fit(im.convert("RGB"), (16, 16), method=Image.Resampling.BILINEAR)) / 255.0
    np.testing.assert_allclose(s[0].permute(1, 2, 0).numpy(), ref, atol=1e-6)
    everything = stimuli.floc(tmp_path, image_size=8, balance=False, domains=["faces"])
    assert len(everything) == 8
    assert stimuli.floc(tmp_path, image_size=8, n_per_category=2).metadata.groupby("category").size().eq(2).all()


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="expected layout"):
        stimuli.floc(tmp_path / "missing")
    with pytest.raises(DatasetNotFoundError, match="no domain folders"):
        stimuli.floc(tmp_path)
    (tmp_path / "faces" / "adult").mkdir(parents=True)
    with pytest.raises(StimulusError, match="holds no images"):
        stimuli.floc(tmp_path)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "faces" / "stray.png")
    with pytest.raises(StimulusError, match="category sub-folders"):
        stimuli.floc(tmp_path)
    (tmp_path / "faces" / "stray.png").unlink()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "faces" / "adult" / "a.png")
    (tmp_path / "animals" / "cat").mkdir(parents=True)
    with pytest.raises(StimulusError, match="unknown domain folder"):
        stimuli.floc(tmp_path)
    (tmp_path / "animals" / "cat").rmdir()
    (tmp_path / "animals").rmdir()
    with pytest.raises(StimulusError, match="only 1 images"):
        stimuli.floc(tmp_path, n_per_category=2)
    with pytest.raises(StimulusError, match="unknown domain"):
        stimuli.floc(tmp_path, domains=["robots"])
