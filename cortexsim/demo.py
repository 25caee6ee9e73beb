"""``cortexsim demo``: the whole pipeline on embedded data, on a CPU, in a few minutes.

1. train a small topographic ResNet-18 (channel-level topographic loss, Poli et
   al., 2-D grid) on offline faces vs non-faces (scikit-image ``lfw_subset``) —
   skipped with ``train_steps=0``;
2. record its V1-like (``layer2.1.conv2``) and IT-like (``layer4.1.conv2``)
   areas — the regularised convolutions, at their trained 2-D grid positions — on an offline category localiser (faces,
   digits/characters, objects, places from installed packages) into a Sheet (HDF5);
3. compute d′ face selectivity per unit and save it as a map on the sheet (PNG);
4. print where everything is.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _train(out: Path, steps: int, device: str, seed: int, image_size: int, lam: float):
    from .adapters.trainer import Trainer

    trainer = Trainer(
        method="channel", arch="resnet18", layout="grid2d", lam=lam, data="lfw", steps=steps, lr=0.01,
        batch_size=32, image_size=image_size, device=device, seed=seed, out=out / "run",
        checkpoint_every=max(50, steps), progress=True,
    )
    trainer.fit()
    return trainer.model


def run_demo(
    out: str | Path = "cortexsim_demo",
    *,
    device: str = "cpu",
    image_size: int = 64,
    train_steps: int = 100,
    lam: float = 5.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the demo and return a summary dict (paths and headline numbers).

    Parameters
    ----------
    out : folder for the run, the Sheet (``sheet.h5``), the map (``faces_dprime.png``)
        and ``summary.json``.
    device : torch device.
    image_size : stimulus size in pixels.
    train_steps : training steps of the topographic model (0: record an untrained one).
    lam : weight λ of the topographic loss (Poli et al.'s grid spans 1e-5 … 5; the
        demo uses the strong end so a map forms within a short CPU run).
    seed : seed of weights, layouts and stimuli.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torchvision

    from . import analysis, stimuli
    from .io import save_sheet
    from .recording import SimulatedCortex

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    t0 = time.perf_counter()

    if train_steps > 0:
        net = _train(out, train_steps, device, seed, image_size, lam)
        # Record the regularised convolutions themselves, at the positions they trained with.
        cortex = net.export_cortex(model_name="resnet18-channel-topographic")
    else:
        net = torchvision.models.resnet18(weights=None, num_classes=2)
        cortex = SimulatedCortex(
            net, {"V1": "layer2.0", "IT": "layer4.1"}, layout={"V1": "retinotopic", "IT": "grid2d"},
            model_name="resnet18-untrained", seed=seed,
        )

    stim = stimuli.floc_offline(image_size=image_size, seed=seed)
    sheet_path = out / "sheet.h5"
    ds = cortex.record(stim, batch_size=32, device=device)
    save_sheet(ds, sheet_path)

    dprime = analysis.dprime(ds, by="domain", target="faces", undefined="nan")  # dead ReLU units: NaN
    it = dprime.where(dprime.area == "IT", drop=True)
    image = ds.cortex.area("IT").cortex.map(it)
    lim = float(np.nanmax(np.abs(image.values))) or 1.0
    fig, ax = plt.subplots(figsize=(5, 4.4))
    mesh = ax.pcolormesh(image.x_mm, image.y_mm, image.values, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
    ax.set(aspect="equal", xlabel="x (mm)", ylabel="y (mm)", title="IT: face selectivity (d′, faces vs rest)")
    fig.colorbar(mesh, ax=ax, label="d′")
    fig.tight_layout()
    map_path = out / "faces_dprime.png"
    fig.savefig(map_path, dpi=120)
    plt.close(fig)

    # Spatial autocorrelation of the IT d′ map (4 nearest units on the sheet), with a
    # permutation null: the demo's one-number answer to "is selectivity topographic?".
    moran = analysis.morans_i(it, k=4, permutations=199, seed=seed)

    summary = {
        "sheet": str(sheet_path),
        "map": str(map_path),
        "stimuli": int(ds.sizes["stimulus"]),
        "units": {a: int(ds.cortex.area(a).sizes["unit"]) for a in ds.cortex.areas},
        "domains": sorted(set(np.asarray(ds.domain.values).astype(str))),
        "it_face_units_dprime_gt_1": int((it.values > 1).sum()),
        "it_max_face_dprime": float(np.nanmax(it.values)),
        "it_dprime_morans_i": round(float(moran["I"]), 4),
        "it_dprime_morans_p": round(float(moran["p_sim"]), 4),
        "trained_steps": train_steps,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Sheet ({summary['stimuli']} stimuli × {sum(summary['units'].values())} units): {sheet_path}")
    print(f"IT face-selectivity map (d′): {map_path}")
    print(f"{summary['it_face_units_dprime_gt_1']} IT units with face d′ > 1 (max {summary['it_max_face_dprime']:.2f})")
    print(f"Moran's I of the IT d′ map: {summary['it_dprime_morans_i']:.3f} (permutation p = {summary['it_dprime_morans_p']:.3f})")
    print(f"summary: {out / 'summary.json'}  — inspect with `cortexsim info {sheet_path}`")
    return summary
