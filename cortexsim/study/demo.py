"""``cortexsim demo``: a topographic model and its control, trained, recorded, compared and reported.

The study (Truong & Hasson's weight-similarity topography, at their own scale):

1. **data** — real handwritten digits (scikit-learn's 1,797 scans), a seeded quarter held
   out by scan index (:mod:`.data`); nothing is downloaded;
2. **train** — three twins of Truong & Hasson's CIFAR network (``th_cifar``: four conv blocks,
   global average pooling, a 121-unit dense layer on an 11 × 11 grid, 1 mm apart), same
   initial weights and batch order, their recipe (Adam, lr 1e-3, batch 64, no augmentation):
   ``WS`` (weight-similarity loss, λ = 1, the value their scripts run), ``AS``
   (activation-similarity loss, λ = 1) and the ``control`` (λ = 0);
3. **record** — the dense layer of each on the held-out scans, into Sheets (HDF5);
4. **report** — from the Sheets alone: digit-preference maps (d′ > 2), Reset's clustering
   index with its permutation null, Moran's I of the d′ maps, response correlation against
   cortical distance vs shuffled positions (:mod:`.stats`, :mod:`.figures`);
5. **export** — d′ and preference maps as NIfTI and GIFTI (``cortexsim export``);
6. **compare** — the WS map against the control's as a stand-in target (``cortexsim compare``);
7. ``DIR/report.html`` (self-contained) and ``DIR/summary.json``.

Why this study: at CPU scale (minutes, 2 cores) it is the one we measured that reproduces
honestly. A TDANN ResNet-18 at 32 px after 100 steps had no orientation map (median circular
variance 0.80; neighbouring units' preferred orientations 36.8° apart against 38.1° shuffled,
swap pre-optimisation included; ``reproductions/tdann``), and a Reset(4) number grid (16 px)
after 150 steps had 19 of 1,024 units selective. WS gives a category map at the paper's own
network size in a few minutes per model.
"""
from __future__ import annotations

import contextlib
import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Models of the study: label -> (method, λ).
MODELS: dict[str, tuple[str, float]] = {"WS": ("ws", 1.0), "AS": ("as", 1.0), "control": ("ws", 0.0)}
TOPOGRAPHIC, CONTROL = "WS", "control"
STAGES = ("train", "record", "report", "export", "compare")
BY = "numerosity"  # the digit shown (the stimulus coord of cortexsim.stimuli.digits)


@dataclass
class DemoConfig:
    """Everything that decides the demo's numbers (saved in ``manifest.json``)."""

    quick: bool = False
    seed: int = 0
    arch: str = "th_cifar"
    image_size: int = 32
    epochs: int = 30  # Truong & Hasson's CIFAR-10 script: 30 epochs
    n_perm: int = 1000
    device: str = "cpu"
    models: dict[str, tuple[str, float]] = field(default_factory=lambda: dict(MODELS))

    @classmethod
    def make(cls, quick: bool = False, seed: int = 0, epochs: int | None = None, lam: float | None = None,
             device: str = "cpu") -> DemoConfig:
        """The full demo, or ``quick``: 3 epochs and 200 permutations (the CI check).

        ``epochs`` / ``lam`` (of WS and AS; the control stays at 0) override the defaults.
        """
        cfg = cls(quick=True, seed=seed, epochs=3, n_perm=200) if quick else cls(seed=seed)
        cfg.device = device
        if epochs is not None:
            cfg.epochs = int(epochs)
        if lam is not None:
            cfg.models = {k: (m, float(lam) if v else 0.0) for k, (m, v) in cfg.models.items()}
        return cfg


def _paths(out: Path) -> dict[str, Path]:
    return {"runs": out / "runs", "sheets": out / "sheets", "export": out / "export", "compare": out / "compare"}


def _cli(argv: list[str]) -> str:
    """Run ``cortexsim ARGV`` in this process (as the user would type it); its output, or an error."""
    from ..cli import main
    from ..errors import CortexsimError

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = main(argv)
    if code != 0:
        raise CortexsimError(f"`cortexsim {' '.join(argv)}` failed (exit {code}): {buf.getvalue().strip()[-500:]}")
    return buf.getvalue()


def _quote(args: list[str]) -> str:
    import shlex

    return "cortexsim " + " ".join(shlex.quote(a) for a in args)


def _train_and_record(cfg: DemoConfig, out: Path, stages: set[str], progress: bool) -> dict[str, Any]:
    """Train the models (stage ``train``) and record their dense layer on the held-out scans (``record``)."""
    import numpy as np
    import torch

    from ..adapters.trainer import load_trained
    from .data import scan_split
    from .train import train_in_memory

    split = scan_split(image_size=cfg.image_size, seed=cfg.seed)
    x, y = split.tensors("train")
    xh, yh = split.tensors("heldout")
    p = _paths(out)
    info: dict[str, Any] = {"n_train": int(len(x)), "n_heldout": int(len(xh)),
                            "heldout_scans": split.heldout_scans.tolist()}
    steps = cfg.epochs * (len(x) // 64)
    for label, (method, lam) in cfg.models.items():
        run = p["runs"] / label
        build = {"method": method, "arch": cfg.arch, "num_classes": 10, "layout": None, "lam": lam, "layers": None,
                 "seed": cfg.seed, "image_size": cfg.image_size, "kw": {}}
        if "train" in stages:
            res = train_in_memory(run, build, x, y, steps=steps, seed=cfg.seed, heldout=(xh, yh), progress=progress,
                                  desc=f"train {label}", device=cfg.device)
            training = {"method": method, "lam": lam, "arch": cfg.arch, "steps": steps, "epochs": cfg.epochs,
                        "seed": cfg.seed, "recipe": res["recipe"], "train_accuracy": res["train_accuracy"],
                        "heldout_accuracy": res["heldout_accuracy"], "seconds": res["seconds"],
                        "history": [[h["step"], h["task_loss"], h["spatial_loss"]] for h in res["history"]]}
            (run / "study_training.json").write_text(json.dumps(training))
        if "record" in stages:
            training = json.loads((run / "study_training.json").read_text())
            net = load_trained(run, map_location=cfg.device)
            cortex = net.export_cortex(model_name=f"{cfg.arch}-{label}-digits")
            with torch.inference_mode():
                cortex.record(split.heldout, batch_size=256, device=cfg.device, out=p["sheets"] / f"{label}.h5",
                              progress=progress,
                              attrs={"study": "cortexsim demo", "study_label": label,
                                     "study_training": json.dumps(training),
                                     "heldout_accuracy": training["heldout_accuracy"],
                                     "train_accuracy": training["train_accuracy"]})
            info.setdefault("heldout_accuracy", {})[label] = float(np.round(training["heldout_accuracy"], 4))
    return info


def _export(cfg: DemoConfig, out: Path) -> list[dict[str, str]]:
    p = _paths(out)
    cmds = []
    for label in cfg.models:
        args = ["export", str(p["sheets"] / f"{label}.h5"), "--what", "dprime,preference", "--by", BY, "--area", "IT",
                "--out", str(p["export"] / label)] + (["--no-png"] if cfg.quick else [])
        _cli(args)
        cmds.append({"step": f"export {label}'s d′ and preference maps (NIfTI + GIFTI)", "command": _quote(args)})
    return cmds


def _compare(cfg: DemoConfig, out: Path, category: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    p = _paths(out)
    args = ["compare", str(p["sheets"] / f"{TOPOGRAPHIC}.h5"), str(p["sheets"] / f"{CONTROL}.h5"), "--area", "IT",
            "--what", "dprime", "--by", BY, "--target", category, "--n-perm", str(cfg.n_perm),
            "--seed", str(cfg.seed), "--out", str(p["compare"])]
    _cli(args)
    row = json.loads((p["compare"] / "comparison.json").read_text())["rows"][0]
    keep = {k: v for k, v in row.items() if isinstance(v, (int, float, str)) and v is not None}
    what = (f"d′ map of digit {category} of {TOPOGRAPHIC} (model) against the {CONTROL}'s (stand-in target), "
            f"Moran spectral-randomisation null ({cfg.n_perm} surrogates). The twins start from the same weights, so "
            f"unit k of one resembles unit k of the other: r measures how much of the control's unit-by-unit map "
            f"survives in WS's smooth one; p tests r against maps with WS's spatial autocorrelation.")
    return [{"step": f"compare {TOPOGRAPHIC}'s d′ map with the {CONTROL}'s", "command": _quote(args)}], \
        {"what": what, "table": keep}


def _files(out: Path) -> list[dict[str, Any]]:
    kinds = {".h5": "Sheet (HDF5)", ".pt": "model weights (the run's one checkpoint)", ".nii.gz": "NIfTI volume",
             ".gii": "GIFTI", ".png": "figure", ".json": "JSON", ".csv": "table", ".txt": "label table",
             ".jsonl": "training log", ".html": "report"}
    rows = []
    for f in sorted(out.rglob("*")):
        if f.is_file():
            name = f.name
            what = next((v for k, v in kinds.items() if name.endswith(k)), "")
            rows.append({"path": str(f.relative_to(out)), "bytes": f.stat().st_size, "what": what})
    return rows


def run_demo(out: str | Path = "cortexsim_demo", *, quick: bool = False, seed: int = 0, epochs: int | None = None,
             lam: float | None = None, device: str = "cpu", only: str | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Run the study into folder ``out`` and return ``summary.json``'s content.

    Parameters
    ----------
    out : output folder (``runs/``, ``sheets/``, ``export/``, ``compare/``, ``report.html``, ``summary.json``,
        ``manifest.json``).
    quick : 3 epochs instead of 30 and 200 permutations instead of 1000 (about a minute; the CI test).
    seed : seed of the split, the weights (shared by the three models), the batch order and the nulls.
    epochs : training epochs of each model (default 30, quick 3); lam : λ of WS and AS (default 1).
    device : torch device of training and recording.
    only : comma-separated stages among :data:`STAGES` to rerun from the files already in ``out``
        (default: all).
    progress : progress bars (one per stage; shown only when stderr is a terminal).
    """
    from ..errors import CortexsimError
    from .report import write_report

    cfg = DemoConfig.make(quick, seed, epochs, lam, device)
    stages = set(STAGES) if not only else {s.strip() for s in only.split(",") if s.strip()}
    unknown = sorted(stages - set(STAGES))
    if unknown:
        raise CortexsimError(f"--only {only!r}: unknown stage(s) {unknown}; choose among {', '.join(STAGES)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest: dict[str, Any] = json.loads(manifest_path.read_text()) if (only and manifest_path.is_file()) else {}
    manifest["config"] = {**asdict(cfg), "models": {k: list(v) for k, v in cfg.models.items()}}
    timings: dict[str, float] = dict(manifest.get("timings", {}))
    t_all, cpu_all = time.perf_counter(), time.process_time()
    t = time.perf_counter()
    if stages & {"train", "record"}:
        manifest["data"] = _train_and_record(cfg, out, stages, progress)
        timings["train + record"] = round(time.perf_counter() - t, 1)
    sheets = {label: _paths(out)["sheets"] / f"{label}.h5" for label in cfg.models}
    missing = [str(s) for s in sheets.values() if not s.is_file()]
    if missing:
        raise CortexsimError(f"missing Sheets {missing}; run the train and record stages first (drop --only).")
    flags = (["--quick"] if quick else []) + ["--seed", str(seed)]
    flags += (["--epochs", str(epochs)] if epochs is not None else []) + (["--lam", f"{lam:g}"] if lam is not None else [])
    flags += ["--device", device] if device != "cpu" else []
    commands = [{"step": "the whole study", "command": _quote(["demo", "--out", str(out), *flags])},
                {"step": "train the three models and record them on the held-out scans",
                 "command": _quote(["demo", "--out", str(out), *flags, "--only", "train,record"])}]
    report_args = ["report", *[str(s) for s in sheets.values()], "--labels", ",".join(sheets), "--by", BY,
                   "--n-perm", str(cfg.n_perm), "--seed", str(seed), "--headline", f"{TOPOGRAPHIC},{CONTROL}",
                   "--out", str(out)]
    if "export" in stages:
        t = time.perf_counter()
        commands += _export(cfg, out)
        timings["export"] = round(time.perf_counter() - t, 1)
    if "compare" in stages:
        t = time.perf_counter()
        category = _compare_category(sheets[TOPOGRAPHIC])
        cmds, manifest["compare"] = _compare(cfg, out, category)
        commands += cmds
        timings["compare"] = round(time.perf_counter() - t, 1)
    commands.append({"step": "statistics, figures, report.html and summary.json from the Sheets alone",
                     "command": _quote(report_args)})
    commands.append({"step": "inspect a Sheet", "command": _quote(["info", str(sheets[TOPOGRAPHIC])])})
    manifest["commands"] = commands
    timings["total (before the report)"] = round(time.perf_counter() - t_all, 1)
    manifest["timings"] = timings
    manifest["files"] = _files(out)
    manifest_path.write_text(json.dumps(manifest, indent=2))
    summary = write_report(sheets, out, by=BY, n_perm=cfg.n_perm, seed=seed, title=TITLE, lead=LEAD,
                           headline=(TOPOGRAPHIC, CONTROL), progress=progress)
    summary["seconds"] = round(time.perf_counter() - t_all, 1)
    # CPU time (all threads of this process): on shared cores the wall time is not the idle-machine time.
    summary["cpu_seconds"] = round(time.process_time() - cpu_all, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    _print_summary(out, summary)
    return summary


def _compare_category(sheet_path: Path) -> str:
    """The digit whose d′ map the comparison uses: the one most WS units prefer (from the Sheet)."""
    import numpy as np

    from .. import analysis
    from ..io import open_sheet

    pref = analysis.preference_map(open_sheet(sheet_path), by=BY, threshold=2.0)
    labels, counts = np.unique(np.asarray(pref.values).astype(str), return_counts=True)
    ok = labels != "none"
    return str(labels[ok][np.argmax(counts[ok])]) if ok.any() else "0"


TITLE = "cortexsim demo — category maps in a dense 'IT' layer: weight similarity (WS) vs activation similarity vs control"
LEAD = ("Three twins of Truong &amp; Hasson's CIFAR network (same initial weights and batch order) learn real handwritten "
        "digits (scikit-learn, a quarter of the scans held out): with the weight-similarity loss (WS, λ = 1), the "
        "activation-similarity loss (AS, λ = 1) or no spatial term (control). Their 121-unit dense layer, laid on an "
        "11 × 11 grid, is recorded on the held-out scans. Every panel and number below is computed from those Sheets.")


def _print_summary(out: Path, summary: dict[str, Any]) -> None:
    models = summary["models"]
    print(f"cortexsim demo: wrote {out}/ in {summary['seconds']:.0f} s (CPU {summary['cpu_seconds']:.0f} s)")
    for label, row in models.items():
        print(f"  {label:8s} held-out accuracy {row.get('heldout_accuracy', float('nan')):.3f}  "
              f"clustering index {row['clustering_index']:7.2f} (p = {row['clustering_p_value']:.3g})  "
              f"Moran's I of d′ {row['morans_i_mean']:.2f}")
    total = sum(f["bytes"] for f in summary.get("files", []))
    print(f"  report   {out / 'report.html'}")
    print(f"  summary  {out / 'summary.json'}")
    print(f"  Sheets   {out / 'sheets'}/  exports {out / 'export'}/  comparison {out / 'compare'}/  "
          f"({len(summary.get('files', []))} files, {total / 1e6:.1f} MB)")
