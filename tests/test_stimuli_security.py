"""Hostile dataset folders (issue 13, point 7): CIFAR pickles asking for huge allocations, links out of a folder."""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from test_stimuli_datasets import _write_cifar10_py  # noqa: E402

from cortexsim import stimuli  # noqa: E402
from cortexsim.errors import StimulusError  # noqa: E402

TIB4 = 2**42


def _glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _long(n: int) -> bytes:  # pickle LONG1 of a 6-byte integer
    return b"\x8a\x06" + n.to_bytes(6, "little")


#: Hand-written pickles (protocol 2) that only use the globals a CIFAR batch needs, but allocate 4 TiB+.
HOSTILE = {
    "bytearray": b"\x80\x02" + _glob("builtins", "bytearray") + _long(TIB4) + b"\x85R.",
    "ndarray": b"\x80\x02" + _glob("numpy", "ndarray") + _long(TIB4) + b"\x85\x85R.",
    "_reconstruct": b"\x80\x02" + _glob("numpy.core.multiarray", "_reconstruct") + _glob("numpy", "ndarray")
    + _long(TIB4) + b"\x85C\x01b\x87R.",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_pickle_asking_for_terabytes_is_refused_before_allocating(tmp_path, kind):
    _write_cifar10_py(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(HOSTILE[kind])
    with pytest.raises(StimulusError, match=r"asks for an? (bytearray|array) of [\d,]+ bytes, more than the file"):
        stimuli.cifar10(tmp_path)


def test_an_array_state_larger_than_its_data_is_a_stimulus_error(tmp_path):
    _write_cifar10_py(tmp_path)
    good = pickle.dumps(np.zeros(3, np.uint8), protocol=2)
    bad = good.replace(b"K\x01K\x03\x85", b"K\x01" + _long(TIB4) + b"\x85")
    assert bad != good
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(bad)
    with pytest.raises(StimulusError, match="not a readable CIFAR batch"):
        stimuli.cifar10(tmp_path)


def test_real_batches_still_load_under_the_cap(tmp_path):
    data = _write_cifar10_py(tmp_path, n=50)
    x, _ = data["test_batch"]
    s = stimuli.cifar10(tmp_path)
    np.testing.assert_array_equal((s.tensor().numpy() * 255).round().astype(np.uint8), x.reshape(50, 3, 32, 32))


def _class_folder(folder: Path, n: int, value: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(folder / f"{i}.png")
    return folder


def test_linked_class_folders_are_followed_by_default_and_refused_on_request(tmp_path):
    root = tmp_path / "root"
    _class_folder(root / "cats", 2, 10)
    outside = _class_folder(tmp_path / "elsewhere" / "dogs", 3, 200)
    (root / "dogs").symlink_to(outside, target_is_directory=True)
    s = stimuli.imagefolder(root, image_size=8)
    assert len(s) == 5 and sorted(set(s.metadata["label_name"])) == ["cats", "dogs"]
    assert float(s.load([4]).mean()) == pytest.approx(200 / 255, abs=1e-6)  # read through the link
    with pytest.raises(StimulusError, match=r"dogs is a link to .*elsewhere/dogs, outside the image folder"):
        stimuli.imagefolder(root, image_size=8, links="refuse")
    (root / "dogs").unlink()
    (root / "cats" / "x.png").symlink_to(outside / "0.png")  # a single linked image
    with pytest.raises(StimulusError, match=r"x.png is a link to"):
        stimuli.imagefolder(root, image_size=8, links="refuse")
    (root / "cats" / "x.png").unlink()
    (root / "cats" / "y.png").symlink_to(root / "cats" / "0.png")  # a link that stays inside root is fine
    assert len(stimuli.imagefolder(root, image_size=8, links="refuse")) == 3
