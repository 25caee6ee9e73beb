"""TDANN (Margalit et al.): V1-like orientation maps and IT-like face patches, at CPU scale.

    python reproductions/tdann/run.py --out runs/tdann                 # 100 steps per network
    python reproductions/tdann/run.py --out runs/tdann --steps 2000 --device cuda   # what a GPU allows

TDANN's recipe at toy scale (cortexsim's Trainer with TDANN's defaults: SGD Nesterov, lr 0.3
per 256, wd 1e-6, α = 0.25 on every residual block, TDANN's sheets, windows and jitter):
a baseline ResNet-18 (supervised, no spatial loss) on scikit-image's LFW faces vs non-faces;
a TDANN ResNet-18 with positions swap-pre-optimised on the baseline's responses to training
images (TDANN's swap algorithm) then trained with the spatial loss. Both, and the baseline's
weights at the swapped positions, are recorded on gratings (held out by construction) in the
V1-like ``layer2.0`` and on the offline localiser in the IT-like ``layer4.1``. Deviations: 32 px
(TDANN: 224), a max-pool in the stem to make CPU training affordable, ~100 steps (TDANN: 200
epochs of ImageNet), supervised faces vs non-faces instead of ImageNet categorisation or SimCLR;
the localiser's faces are LFW faces that were also training images (not held out).
"""
from __future__ import annotations

import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Finding, parser, write_results  # noqa: E402

AREAS = {"V1": "net.layer2.0", "IT": "net.layer4.1"}


def _measure(model, gratings, localizer, device):
    from cortexsim import analysis

    cortex = model.export_cortex(areas=AREAS)
    g = cortex.record(gratings, batch_size=80, device=device, progress=False).cortex.area("V1")
    loc = cortex.record(localizer, batch_size=80, device=device, progress=False).cortex.area("IT")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        om = analysis.orientation_map(g)
        theta = om["preferred_orientation_deg"]
        sm = analysis.smoothness(theta, bins=np.array([0.0, 1.0, 2.0, 4.0, 8.0, 16.0]), seed=0)
        rc = analysis.smoothness(g, bins=np.array([0.0, 1.0, 2.0, 4.0, 8.0, 16.0]), seed=0)
        try:
            pw = analysis.pinwheels(om)
            pinwheel = {"density": float(pw["density"]), "count": int(pw["count"]),
                        "column_spacing_mm": float(pw["column_spacing_mm"])}
        except ValueError as exc:
            pinwheel = {"density": float("nan"), "error": str(exc)}
        t = analysis.tstat(loc, by="domain", target="faces", undefined="nan")
        p = analysis.patches(t, threshold=4.0, sigma_mm=2.4, min_area_mm2=10.0)
        moran = analysis.morans_i(t, k=8, n_perm=199, seed=0)
    first = lambda ds, var: float(ds[var].values[0])  # noqa: E731 - the 0–1 mm bin
    return {"median_circular_variance": float(np.nanmedian(om["circular_variance"].values)),
            "neighbour_dtheta_deg": first(sm, "similarity"), "neighbour_dtheta_shuffled_deg": first(sm, "similarity_shuffled"),
            "neighbour_r": first(rc, "similarity"), "neighbour_r_shuffled": first(rc, "similarity_shuffled"),
            "pinwheels": pinwheel, "face_patches": int(p["count"]), "face_patch_area_mm2": float(p["total_area_mm2"]),
            "face_t_morans_i": float(moran["I"]), "face_t_morans_p": float(moran["p_value"]),
            "max_face_t": float(np.nanmax(t.values))}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "reproduction_tdann", batch_size=32)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--swapopt", type=int, default=1000, help="swap rounds per layer (TDANN's algorithm)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    from cortexsim import stimuli
    from cortexsim.adapters.trainer import Trainer

    common = dict(arch="resnet18", layout="retinotopic", data="lfw", steps=args.steps, batch_size=args.batch_size,
                  image_size=32, device=args.device, seed=args.seed, method_kwargs={"maxpool": True},
                  progress=False)  # the swap bars are not tty-aware (they would fill a log)
    base = Trainer(method="baseline", out=args.out / "baseline", optimizer="sgd", nesterov=True, weight_decay=1e-6,
                   lr=0.3 * args.batch_size / 256, momentum=0.9, **common)
    base.fit()
    tdann = Trainer(method="tdann", out=args.out / "tdann", swapopt=args.swapopt,
                    swapopt_reference=args.out / "baseline", **common)
    tdann.setup()
    swapped = copy.deepcopy(tdann.model)  # the swapped positions with the baseline's weights
    swapped.load_state_dict({k: v for k, v in base.model.state_dict().items() if not k.startswith("pos_")},
                            strict=False)
    tdann.fit()
    gratings = stimuli.gratings((0, 22.5, 45, 67.5, 90, 112.5, 135, 157.5), (0.32, 0.48, 0.72, 1.08, 1.3),
                                image_size=32, fov_deg=8.2)
    localizer = stimuli.floc_offline(20, image_size=32, seed=args.seed)
    numbers = {label: _measure(m.eval(), gratings, localizer, args.device)
               for label, m in (("baseline", base.model), ("baseline at swapped positions", swapped),
                                ("TDANN", tdann.model))}
    for label, row in numbers.items():
        print(label, row, flush=True)
    b, s, t = numbers["baseline"], numbers["baseline at swapped positions"], numbers["TDANN"]
    findings = [
        Finding("V1: smooth orientation map (neighbours' preferred orientations closer than shuffled, 0–1 mm)",
                "smooth maps with pinwheels (random pairs: 45°)",
                f"TDANN {t['neighbour_dtheta_deg']:.1f}° vs {t['neighbour_dtheta_shuffled_deg']:.1f}° shuffled; "
                f"baseline {b['neighbour_dtheta_deg']:.1f}° vs {b['neighbour_dtheta_shuffled_deg']:.1f}°; median "
                f"circular variance {t['median_circular_variance']:.2f}",
                t["neighbour_dtheta_shuffled_deg"] - t["neighbour_dtheta_deg"] > 5.0),
        Finding("V1: pinwheel density per Λ²", "≈ π (as cat / primate V1)",
                f"TDANN {t['pinwheels']['density']:.1f}, baseline {b['pinwheels']['density']:.1f}",
                bool(abs(t["pinwheels"]["density"] - np.pi) < 1.0) if np.isfinite(t["pinwheels"]["density"]) else None),
        Finding("V1: response correlation falls with distance, above the shuffled sheet (0–1 mm)",
                "yes, more than the untrained / non-spatial model",
                f"TDANN r {t['neighbour_r']:.2f} vs {t['neighbour_r_shuffled']:.2f} shuffled; baseline "
                f"{b['neighbour_r']:.2f} vs {b['neighbour_r_shuffled']:.2f}",
                t["neighbour_r"] - t["neighbour_r_shuffled"] > b["neighbour_r"] - b["neighbour_r_shuffled"]),
        Finding("IT: face patches (t > 4 after 2.4 mm smoothing, ≥ 10 mm²)", "several face patches",
                f"TDANN {t['face_patches']} ({t['face_patch_area_mm2']:.0f} mm²), baseline {b['face_patches']} "
                f"({b['face_patch_area_mm2']:.0f} mm²); Moran's I of face t: TDANN {t['face_t_morans_i']:.2f}, "
                f"swapped baseline {s['face_t_morans_i']:.2f}, baseline {b['face_t_morans_i']:.2f}",
                t["face_patches"] > b["face_patches"]),
    ]
    write_results(args.out, findings, numbers, vars(args) | {"out": str(args.out)}, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
