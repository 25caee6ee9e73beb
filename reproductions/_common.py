"""Shared by the reproduction scripts: the findings table, results files, timing, environment.

Each ``reproductions/<paper>/run.py`` prints and writes ``results.json`` and ``results.md``
with the table ``finding | paper | cortexsim | same direction?``; the page ``README.md``
next to it explains what differs from the paper.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Finding:
    """One row: what the paper reports, what cortexsim measured, and whether the direction agrees.

    ``same`` is True / False, or None when the comparison cannot be made at this scale.
    """

    finding: str
    paper: str
    cortexsim: str
    same: bool | None

    def cells(self) -> list[str]:
        verdict = {True: "yes", False: "**no**", None: "n/a"}[self.same]
        return [self.finding, self.paper, self.cortexsim, verdict]


def parser(doc: str, default_out: str, *, batch_size: int | None = None) -> argparse.ArgumentParser:
    """The options every reproduction takes: ``--out``, ``--device``, ``--seed`` (and ``--batch-size``)."""
    from pathlib import Path as _Path

    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--out", type=_Path, default=_Path(default_out), help="output folder")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the nulls")
    if batch_size is not None:
        p.add_argument("--batch-size", type=int, default=batch_size)
    return p


def table(findings: Sequence[Finding]) -> str:
    """The findings as a Markdown table."""
    rows = [["finding", "paper", "cortexsim", "same direction?"], ["---"] * 4] + [f.cells() for f in findings]
    return "\n".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows)


def write_results(out: str | os.PathLike, findings: Sequence[Finding], numbers: dict[str, Any],
                  settings: dict[str, Any], seconds: float) -> Path:
    """Print the table and write ``out/results.json`` + ``out/results.md``; returns ``out``."""
    from cortexsim.study.report import environment

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    md = table(findings)
    print(md)
    (out / "results.md").write_text(md + "\n")
    payload = {"findings": [asdict(f) for f in findings], "numbers": numbers, "settings": settings,
               "seconds": round(seconds, 1), "environment": env,
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (out / "results.json").write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {out / 'results.json'} and {out / 'results.md'} ({seconds:.0f} s, load average {env['loadavg']})")
    return out
