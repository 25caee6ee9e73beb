"""``DIR/report.html`` + ``DIR/summary.json`` from saved Sheets (``cortexsim report SHEET ... --out DIR``).

Every figure and every number of the statistics table is recomputed from the Sheets given
(their responses, unit positions, stimulus labels and attributes — the training record the
study stores in each Sheet's ``study_training`` attribute included), so the report can be
regenerated from the Sheets alone. When ``DIR/manifest.json`` exists (the demo writes it:
the command lines it ran, the exported files, the map comparison, timings), its sections are
added; nothing else is read.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import html

#: Packages whose versions the report lists.
PACKAGES = ("cortexsim", "torch", "torchvision", "numpy", "scipy", "xarray", "h5py", "h5netcdf", "scikit-learn",
            "scikit-image", "nibabel", "nilearn", "brainspace", "matplotlib", "networkx", "pandas")


def environment() -> dict[str, Any]:
    """Package versions, Python, platform, CPU threads and the cortexsim git commit (if a checkout)."""
    from importlib import metadata

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    root = Path(__file__).resolve().parents[2]
    commit = "unknown (not a git checkout)"
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            commit = out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    load = None
    if hasattr(os, "getloadavg"):
        load = [round(v, 2) for v in os.getloadavg()]
    return {"versions": versions, "python": sys.version.split()[0], "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "loadavg": load, "commit": commit}


def _training(sheet: Any) -> dict[str, Any]:
    raw = sheet.attrs.get("study_training")
    return json.loads(raw) if isinstance(raw, str) else {}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if np.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def compute(sheets: Mapping[str, str | os.PathLike], *, by: str, area: str | None = None, n_perm: int = 200,
            seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Open each Sheet and compute its :class:`~cortexsim.study.stats.MapResult` (label -> result)."""
    from tqdm.auto import tqdm

    from ..io import open_sheet
    from .stats import map_result

    out = {}
    for label, path in tqdm(list(sheets.items()), desc="statistics", unit="sheet", disable=None if progress else True,
                            leave=False):
        ds = open_sheet(path)
        out[label] = map_result(ds, label, by=by, area=area, n_perm=n_perm, seed=seed)
        out[label].attrs["study_training"] = _training(ds)
    return out


def _best_category(results: Mapping[str, Any]) -> str:
    first = next(iter(results.values()))
    return max(first.counts, key=lambda c: (first.counts[c], c)) if first.counts else first.categories[0]


def _figures(results: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    from . import figures

    cat = _best_category(results)
    histories = {label: [{"step": s, "task_loss": t} for s, t, *_ in r.attrs["study_training"].get("history", [])]
                 for label, r in results.items()}
    out = [
        ("preference_maps", figures.preference_maps(results),
         "Preferred category of each unit of the topographic layer (d′ of the best category vs the rest > 2; white: "
         "none), measured on held-out stimuli. Title: Reset clustering index (mean same-preference cluster size minus "
         "its mean over shuffled maps) and its permutation p-value."),
        ("dprime_maps", figures.dprime_maps(results, cat),
         f"d′ of category {cat} against the rest, on one colour scale, with Moran's I (8 nearest units)."),
        ("smoothness", figures.smoothness(results),
         "Response correlation (held-out stimuli) of unit pairs against their cortical distance; dashed: the same "
         "pairs with unit positions shuffled."),
        ("clustering_null", figures.nulls(results),
         "Clustering index: observed map (red) against maps with the preferences shuffled over units (grey)."),
    ]
    if all(h for h in histories.values()):
        out.append(("training", figures.training_curves(histories), "Training loss (task term) against step."))
    return out


def _table(results: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["model", "λ", "steps", "held-out acc.", "selective units", "clustering index", "null mean ± sd",
              "p", "Moran's I (mean d′ maps)", "max p", "r nearest (mm)", "r shuffled"]
    rows = []
    for label, r in results.items():
        t = r.attrs.get("study_training", {})
        c = r.clustering
        rows.append([label, t.get("lam", ""), t.get("steps", ""), t.get("heldout_accuracy", float("nan")),
                     f"{r.n_selective} / {r.n_units}", c["index"], f"{c['null_mean']:.3g} ± {c['null_std']:.2g}",
                     c["p_value"], r.moran["mean_I"], r.moran["max_p"],
                     f"{r.smoothness['near']:.3f} ({r.smoothness['near_mm']:.2g})", r.smoothness["near_shuffled"]])
    return header, rows


def _manifest_sections(manifest: Mapping[str, Any]) -> list[str]:
    body = []
    if manifest.get("compare"):
        cmp = manifest["compare"]
        body.append("<h2>Model map vs baseline map (cortexsim compare)</h2>")
        body.append(f"<p>{html.esc(cmp.get('what', ''))}</p>")
        body.append(html.table(["statistic", "value"], [[k, v] for k, v in cmp.get("table", {}).items()]))
    if manifest.get("files"):
        body.append("<h2>Files written</h2>")
        body.append(html.table(["file", "bytes", "what"], [[f["path"], f["bytes"], f.get("what", "")]
                                                           for f in manifest["files"]]))
        body.append("<p>and <code>report.html</code> (this page), <code>summary.json</code> (its numbers) and "
                    "<code>manifest.json</code> (commands, files, timings).</p>")
    if manifest.get("commands"):
        body.append("<h2>Command lines to rerun each step</h2>")
        body.append(html.code("\n".join(f"# {c['step']}\n{c['command']}" for c in manifest["commands"])))
    if manifest.get("timings"):
        body.append("<h2>Timings</h2>")
        body.append(html.table(["stage", "seconds"], [[k, v] for k, v in manifest["timings"].items()]))
    return body


def write_report(sheets: Mapping[str, str | os.PathLike], out: str | os.PathLike, *, by: str, area: str | None = None,
                 n_perm: int = 200, seed: int = 0, title: str = "cortexsim study", lead: str = "",
                 headline: Sequence[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """Write ``out/report.html`` and ``out/summary.json`` from ``sheets`` (label -> Sheet path).

    ``headline`` = (topographic label, control label): the summary's headline compares their
    clustering indices and Moran's I. Returns the summary dict.
    """
    from ..io import atomic_path

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = compute(sheets, by=by, area=area, n_perm=n_perm, seed=seed, progress=progress)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    env = environment()
    figs = _figures(results)
    header, rows = _table(results)
    body = [f"<h1>{html.esc(title)}</h1>"]
    if lead:
        body.append(f'<p class="lead">{lead}</p>')
    for name, fig, caption in figs:
        body.append(html.figure(html.png_data_uri(fig), caption, alt=name))
    body += ["<h2>Statistics (held-out stimuli)</h2>", html.table(header, rows),
             f"<p>Permutations per null: {n_perm}, seed {seed}. Sheets: "
             + ", ".join(f"<code>{html.esc(label)}</code> = {html.esc(p)}" for label, p in sheets.items()) + ".</p>"]
    body += _manifest_sections(manifest)
    body.append("<h2>Environment</h2>")
    body.append(html.table(["package", "version"], [[k, v] for k, v in env["versions"].items()]))
    body.append(html.table(["", ""], [["python", env["python"]], ["platform", env["platform"]],
                                      ["CPU threads", env["cpu_count"]], ["load average", env["loadavg"]],
                                      ["cortexsim commit", env["commit"]]]))
    summary: dict[str, Any] = {
        "title": title, "by": by, "n_perm": n_perm, "seed": seed,
        "sheets": {k: str(v) for k, v in sheets.items()},
        "models": {label: {**r.row(), "training": {k: v for k, v in r.attrs["study_training"].items() if k != "history"}}
                   for label, r in results.items()},
        "environment": env,
    }
    if headline:
        topo, ctrl = (summary["models"][k] for k in headline)
        summary["headline"] = {"topographic": headline[0], "control": headline[1],
                               "clustering_index": [topo["clustering_index"], ctrl["clustering_index"]],
                               "morans_i_mean": [topo["morans_i_mean"], ctrl["morans_i_mean"]],
                               "topographic_exceeds_control": bool(topo["clustering_index"] > ctrl["clustering_index"]
                                                                   and topo["morans_i_mean"] > ctrl["morans_i_mean"])}
    for key in ("compare", "files", "commands", "timings", "config"):
        if key in manifest:
            summary[key] = manifest[key]
    summary["report_seconds"] = round(time.perf_counter() - t0, 1)
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(html.page(title, body), encoding="utf-8")
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(_jsonable(summary), indent=2, allow_nan=False))
    return summary
