"""TopoLoss (Deb, Deb & Murty, TopoNets): smooth maps in the regularised layers, accuracy kept, at CPU scale.

    python reproductions/topoloss/run.py --out runs/topoloss            # th_cifar, 30 epochs
    python reproductions/topoloss/run.py --out runs/topoloss --arch resnet18 --epochs 10 --device cuda

TopoLoss on every conv layer (factor 3, τ = 1, λ = 1, the package's defaults) against the same
network without it (same initial weights and batch order), trained on real handwritten digits
(three quarters of scikit-learn's scans) with the baseline recipe (SGD lr 0.1 per 256 →
scaled to the batch, momentum 0.9, wd 5e-4, cosine; no augmentation). On the held-out scans:
accuracy; for the last conv layer, the weight map's smoothness (mean cosine of the incoming
weights of sheet neighbours, against shuffled channels) and the channel-level digit
selectivity maps on TopoLoss's h × w sheet (channel responses averaged over space, d′ per
digit, Moran's I and Reset's clustering index against shuffled maps, from a Sheet).
Writes ``results.json``, ``results.md`` and ``maps.png``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import Finding, parser, write_results  # noqa: E402


def weight_smoothness(weight, seed: int = 0) -> tuple[float, float]:
    """(mean cosine of 4-neighbours' incoming weights on the sheet, the same with channels shuffled)."""
    import torch

    from cortexsim.layout import topoloss_sheet_shape

    h, w = topoloss_sheet_shape(weight.shape[0])
    v = torch.nn.functional.normalize(weight.detach().reshape(weight.shape[0], -1).float(), dim=1)

    def score(u):
        s = u.reshape(h, w, -1)
        right = (s[:, 1:] * s[:, :-1]).sum(-1)
        down = (s[1:] * s[:-1]).sum(-1)
        return float(torch.cat([right.ravel(), down.ravel()]).mean())

    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(v)))
    return score(v), score(v[perm])


def channel_sheet(net, layer: str, split, device: str):
    """A Sheet of ``layer``'s channels (responses averaged over space) on TopoLoss's sheet, held-out scans."""
    import torch

    import cortexsim as cx
    from cortexsim.layout import topoloss_sheet

    captured = []
    module = net.get_submodule(layer)
    handle = module.register_forward_hook(lambda m, i, o: captured.append(o.mean(dim=(2, 3)).cpu()))
    try:
        with torch.inference_mode():
            for batch in split.heldout.batches(256):
                net(batch.to(device))
    finally:
        handle.remove()
    resp = torch.cat(captured).numpy()
    pos = topoloss_sheet(resp.shape[1])
    meta = split.heldout.metadata
    return cx.make_sheet(resp.astype(np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1], area="IT", layer=layer,
                         stimuli={"stimulus_id": meta["stimulus_id"].to_numpy(),
                                  "numerosity": meta["numerosity"].to_numpy()})


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "reproduction_topoloss", batch_size=64)
    p.add_argument("--arch", default="th_cifar")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--n-perm", type=int, default=500)
    p.add_argument("--scale", type=float, default=1.0, help="τ of every layer (package default 1; TopoNets' "
                   "ResNet-18 checkpoints use 0.5–50)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()

    from cortexsim.adapters.trainer import load_trained
    from cortexsim.study import map_result, scan_split, train_in_memory
    from cortexsim.study.figures import preference_maps

    split = scan_split(seed=args.seed)
    x, y = split.tensors("train")
    xh, yh = split.tensors("heldout")
    steps = args.epochs * (len(x) // args.batch_size)
    numbers, results = {}, {}
    topo = f"TopoLoss (λ = 1, τ = {args.scale:g})"
    for label, lam in ((topo, 1.0), ("baseline (λ = 0)", 0.0)):
        build = {"method": "topoloss", "arch": args.arch, "num_classes": 10, "layout": None, "lam": lam,
                 "layers": None, "seed": args.seed, "image_size": 32, "kw": {"scale": args.scale} if lam else {}}
        run = args.out / "runs" / ("topo" if lam else "base")
        res = train_in_memory(run, build, x, y, steps=steps, seed=args.seed, heldout=(xh, yh), device=args.device,
                              recipe_overrides={"batch_size": args.batch_size}, desc=label)
        net = load_trained(run, map_location=args.device)
        last = f"net.{net.layer_names[-1]}"
        smooth, shuffled = weight_smoothness(net.get_submodule(last).weight, args.seed)
        results[label] = map_result(channel_sheet(net, last, split, args.device), label, by="numerosity",
                                    n_perm=args.n_perm, seed=args.seed)
        numbers[label] = {"heldout_accuracy": res["heldout_accuracy"], "train_accuracy": res["train_accuracy"],
                          "layer": last, "weight_neighbour_cosine": smooth, "weight_neighbour_cosine_shuffled": shuffled,
                          "seconds": res["seconds"], **results[label].row()}
        print(label, numbers[label], flush=True)
    preference_maps(results).savefig(args.out / "maps.png", dpi=110)

    t, b = numbers[topo], numbers["baseline (λ = 0)"]
    findings = [
        Finding("weights smooth on the sheet (cosine of neighbours' incoming weights)",
                "TopoLoss makes neighbouring units' weights alike",
                f"TopoLoss {t['weight_neighbour_cosine']:.2f} (shuffled {t['weight_neighbour_cosine_shuffled']:.2f}), "
                f"baseline {b['weight_neighbour_cosine']:.2f}",
                t["weight_neighbour_cosine"] > b["weight_neighbour_cosine"] + 0.05),
        Finding("selectivity maps emerge (Moran's I of channel d′ maps, mean over digits)", "smooth category maps",
                f"TopoLoss {t['morans_i_mean']:.2f} (max p {t['morans_p_max']:.3g}), baseline {b['morans_i_mean']:.2f}",
                t["morans_i_mean"] > b["morans_i_mean"] and t["morans_p_max"] < 0.05),
        Finding("category clusters (Reset clustering index)", "clustered category selectivity",
                f"TopoLoss {t['clustering_index']:.2f} (p {t['clustering_p_value']:.3g}), baseline "
                f"{b['clustering_index']:.2f}", t["clustering_index"] > b["clustering_index"]),
        Finding("accuracy close to the baseline's", "within about a point on ImageNet (ResNet-18)",
                f"{t['heldout_accuracy']:.3f} vs {b['heldout_accuracy']:.3f} (held-out digits)",
                abs(t["heldout_accuracy"] - b["heldout_accuracy"]) < 0.03),
    ]
    write_results(args.out, findings, numbers, vars(args) | {"out": str(args.out), "steps": steps},
                  time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
