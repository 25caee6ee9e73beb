"""Category localiser (fLoc-like) stimuli: faces, bodies, characters, places, objects.

``floc(path)`` reads a user folder laid out like the fLoc stimulus set
(Stigliani et al. 2015)::

    path/
      faces/       adult/  child/        *.png | *.jpg | *.jpeg | ...
      bodies/      body/   limb/
      characters/  word/   number/
      places/      corridor/  house/
      objects/     car/    instrument/
      scrambled/   scrambled/            (optional baseline)

Domains must be among those names; category folder names are free (fLoc's
are listed above) but every category folder must hold images, and images
must sit in category folders (not directly in a domain folder).

``floc_offline()`` needs no download; it is built only from data that ships
with installed packages. **What it really covers:**

=============  ==============  ==============================================
domain         category        source
=============  ==============  ==============================================
faces          adult           scikit-image ``lfw_subset()`` faces (100 adult
                               celebrity faces, 25×25 grey) — real faces
characters     word            lower-case English words rendered with the
                               DejaVu fonts of matplotlib — real characters
characters     number          scikit-learn ``load_digits()`` (8×8
                               handwritten digits, black on white)
objects        vehicle         crops of scikit-image photos ``stereo_motorcycle``
                               and ``rocket`` (stand-in for fLoc "car")
objects        object          crops of ``coffee`` (cup), ``clock``, ``coins``
                               (stand-in for fLoc "instrument")
places         texture         crops of ``brick`` (wall), ``grass``, ``gravel``
                               surfaces — NOT scenes: no layout or depth, only a
                               crude stand-in for corridors/houses
=============  ==============  ==============================================

There are **no bodies** (no body or limb photographs ship with these packages)
and no child faces; asking for them raises an error that points to ``floc(path)``.
Face-vs-rest and character-vs-rest contrasts are meaningful; object and place
selectivity measured with the offline set is only a rough proxy. Variety comes
from random crops, scales and mirror flips drawn from ``seed``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cortexsim.errors import StimulusError

from .bank import BankSet, jitter_boxes, pad_to_bank, render_texts
from .base import ConcatSet, DatasetNotFoundError, Normalize
from .files import FileSet, list_images

__all__ = ["DOMAINS", "FLOC_CATEGORIES", "OFFLINE_CATEGORIES", "floc", "floc_offline"]

FLOC_CATEGORIES: dict[str, tuple[str, ...]] = {
    "faces": ("adult", "child"),
    "bodies": ("body", "limb"),
    "characters": ("word", "number"),
    "places": ("corridor", "house"),
    "objects": ("car", "instrument"),
}
DOMAINS: tuple[str, ...] = (*FLOC_CATEGORIES, "scrambled")
OFFLINE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "faces": ("adult",),
    "characters": ("word", "number"),
    "objects": ("vehicle", "object"),
    "places": ("texture",),
}
_LAYOUT = (
    "expected layout: <root>/<domain>/<category>/*.png|jpg with domain in "
    f"{list(DOMAINS)} and fLoc categories {FLOC_CATEGORIES}"
)
_WORDS = (
    "house", "table", "water", "light", "green", "paper", "music", "river", "apple", "chair", "plant", "train",
    "cloud", "stone", "bread", "night", "smile", "horse", "glass", "field", "dream", "sound", "place", "story",
)
_WORD_FONTS = ("DejaVuSans", "DejaVuSerif", "DejaVuSansMono", "DejaVuSans-Bold")
_PHOTOS = {"vehicle": ("stereo_motorcycle", "rocket"), "object": ("coffee", "clock", "coins"), "texture": ("brick", "grass", "gravel")}


def _check_domains(domains: Sequence[str] | None, allowed: Sequence[str], where: str) -> list[str]:
    if domains is None:
        return list(allowed)
    domains = [domains] if isinstance(domains, str) else list(domains)
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        raise StimulusError(f"unknown domain(s) {unknown}; fLoc domains are {list(DOMAINS)}")
    missing = [d for d in domains if d not in allowed]
    if missing:
        raise StimulusError(f"domain(s) {missing} not available in {where} (it has {list(allowed)})")
    return domains


def _balanced_pick(groups: pd.Series, n_per: int | None, rng: np.random.Generator) -> np.ndarray:
    """Row indices with the same number per group: ``n_per`` (or the smallest group), random within a group."""
    sizes = groups.value_counts()
    n = int(sizes.min()) if n_per is None else int(n_per)
    if n > sizes.min():
        raise StimulusError(
            f"n_per_category={n} but category {sizes.idxmin()!r} has only {sizes.min()} images"
        )
    keys = rng.random(len(groups))
    order = np.lexsort((keys, groups.to_numpy()))  # grouped, random inside each group
    rank = pd.Series(groups.to_numpy()[order]).groupby(groups.to_numpy()[order]).cumcount().to_numpy()
    return np.sort(order[rank < n])


def floc(
    path: str | Path,
    *,
    domains: Sequence[str] | None = None,
    n_per_category: int | None = None,
    balance: bool = True,
    image_size: int | Sequence[int] = 224,
    channels: int = 3,
    normalize: Normalize = None,
    seed: int = 0,
) -> FileSet:
    """Category-localiser images from a user folder (layout in the module docstring).

    Parameters
    ----------
    path : folder ``<root>`` holding one folder per domain.
    domains : domains to keep (default: all found).
    n_per_category : images per category (random, from ``seed``); default the
        smallest category's count when ``balance`` (else all images).
    image_size, channels, normalize : see :class:`~cortexsim.stimuli.base.StimulusSet`.

    Metadata: ``domain``, ``category``, ``path``. Images are read lazily per batch.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"fLoc folder {root} does not exist; {_LAYOUT}")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [d for d in found if d not in DOMAINS]
    if unknown:
        raise StimulusError(f"unknown domain folder(s) {unknown} in {root}; {_LAYOUT}")
    if not found:
        raise DatasetNotFoundError(f"no domain folders in {root}; {_LAYOUT}")
    domains = _check_domains(domains, found, str(root))
    rows = []
    for dom in domains:  # a handful of folders
        dpath = root / dom
        stray = list_images(dpath)
        if stray:
            raise StimulusError(f"images found directly in {dpath} (e.g. {stray[0].name}); put them in category "
                                f"sub-folders such as {dpath / FLOC_CATEGORIES.get(dom, ('scrambled',))[0]}; {_LAYOUT}")
        cats = sorted(p for p in dpath.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not cats:
            raise StimulusError(f"domain folder {dpath} has no category sub-folders; {_LAYOUT}")
        for cat in cats:
            files = list_images(cat)
            if not files:
                raise StimulusError(f"category folder {cat} holds no images ({', '.join(('.png', '.jpg'))} ...); {_LAYOUT}")
            rows.append(pd.DataFrame({"domain": dom, "category": cat.name, "path": [str(f) for f in files]}))
    meta = pd.concat(rows, ignore_index=True)
    if balance or n_per_category is not None:
        meta = meta.iloc[_balanced_pick(meta["domain"] + "/" + meta["category"], n_per_category,
                                        np.random.default_rng(seed))].reset_index(drop=True)
    meta.insert(0, "stimulus_id", meta["domain"] + "/" + meta["category"] + "/" + meta["path"].map(lambda p: Path(p).name))
    return FileSet(meta, image_size=image_size, channels=channels, normalize=normalize)


def _photo(name: str, min_side: int = 192) -> np.ndarray:
    """A scikit-image sample photo as float (H, W, 3) in [0, 1], short side ``min_side`` px."""
    import skimage.data
    from skimage.transform import rescale

    img = getattr(skimage.data, name)()
    img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle returns (left, right, disparity)
    img = np.atleast_3d(img.astype(np.float32) / 255.0)
    img = rescale(img, min_side / min(img.shape[:2]), channel_axis=2, anti_aliasing=True)
    return np.clip(np.broadcast_to(img, (*img.shape[:2], 3)), 0, 1)


def _category_set(domain, category, sources, names, n, rng, *, scale, shift, ink=False, **opts) -> BankSet:
    bank, hw = pad_to_bank(sources)
    src = np.resize(rng.permutation(len(sources)), n)  # every source used about equally often
    boxes = jitter_boxes(rng, hw[src], scale=scale, shift=shift)
    flip = rng.random(n) < 0.5 if category not in ("word", "number") else np.zeros(n, bool)  # no mirror text
    meta = pd.DataFrame({
        "stimulus_id": [f"{domain}-{category}-{i:04d}" for i in range(n)],
        "domain": domain, "category": category, "source": np.asarray(names)[src],
    })
    return BankSet(bank, src, boxes, meta, flip=flip, ink=ink, **opts)


def floc_offline(
    n_per_category: int = 20,
    *,
    domains: Sequence[str] | None = None,
    image_size: int | Sequence[int] = 224,
    channels: int = 3,
    normalize: Normalize = None,
    seed: int = 0,
) -> ConcatSet:
    """An fLoc-like set from installed data only (what it covers: see the module docstring).

    Parameters
    ----------
    n_per_category : int
        Stimuli per category (balanced). Domains: faces (1 category),
        characters (2), objects (2), places (1).
    domains : subset of ``OFFLINE_CATEGORIES`` keys; 'bodies' raises.
    image_size, channels, normalize : see :class:`~cortexsim.stimuli.base.StimulusSet`.
    seed : int
        Seeds the crops, flips and source order.

    Metadata: ``domain``, ``category``, ``source``.
    """
    import skimage.data
    from sklearn.datasets import load_digits

    if n_per_category < 1:
        raise StimulusError(f"n_per_category must be >= 1, got {n_per_category}")
    try:
        domains = _check_domains(domains, list(OFFLINE_CATEGORIES), "floc_offline")
    except StimulusError as e:
        raise StimulusError(f"{e}; for bodies and the other real fLoc categories use floc(path)") from None
    rng = np.random.default_rng(seed)
    opts = dict(image_size=image_size, channels=channels)
    sets = []
    for dom in domains:
        for cat in OFFLINE_CATEGORIES[dom]:
            if cat == "adult":
                faces = skimage.data.lfw_subset()[:100]  # the first 100 of lfw_subset are faces
                src = list(faces.astype(np.float32))
                s = _category_set(dom, cat, src, [f"lfw_subset:{i}" for i in range(100)], n_per_category, rng,
                                  scale=(0.85, 1.0), shift=0.05, **opts)
            elif cat == "word":
                ink = render_texts(_WORDS, _WORD_FONTS, canvas=128, size_px=26)
                names = [f"{w}:{f}" for w in _WORDS for f in _WORD_FONTS]
                s = _category_set(dom, cat, list(ink), names, n_per_category, rng, scale=(0.8, 1.0), shift=0.08,
                                  ink=True, **opts)
            elif cat == "number":
                d = load_digits()
                keep = rng.permutation(len(d.images))[: max(n_per_category, 10)]
                ink = np.pad(d.images[keep] / 16.0, ((0, 0), (2, 2), (2, 2)))
                s = _category_set(dom, cat, list(ink.astype(np.float32)), [f"load_digits:{i}" for i in keep],
                                  n_per_category, rng, scale=(0.9, 1.0), shift=0.05, ink=True, **opts)
            else:
                names = _PHOTOS[cat]
                s = _category_set(dom, cat, [_photo(p) for p in names], [f"skimage:{p}" for p in names],
                                  n_per_category, rng, scale=(0.6, 1.0), shift=0.15, **opts)
            sets.append(s)
    return ConcatSet(sets, normalize=normalize)
