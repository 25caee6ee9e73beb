"""A self-contained HTML page: inline PNG figures (base64), tables, code blocks; no network.

Nothing here fetches a stylesheet, font or script: the page opens offline, and can be
mailed or archived as one file.
"""
from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em} th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:.6em;overflow-x:auto;font-size:.85em}
figure{margin:1em 0} figcaption{font-size:.9em;color:#444;margin-top:.3em} img{max-width:100%}
.lead{font-size:1.05em;background:#f7faff;border-left:4px solid #4a7fd4;padding:.6em .9em}
""".strip()


def esc(text: Any) -> str:
    """HTML-escaped ``str(text)``."""
    return html.escape(str(text), quote=True)


def png_data_uri(fig: Any, dpi: int = 110) -> str:
    """A matplotlib Figure as a ``data:image/png;base64,...`` URI (the figure is not saved anywhere)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure(uri: str, caption: str, alt: str = "") -> str:
    """An inline ``<figure>`` from a data URI."""
    return f'<figure><img src="{uri}" alt="{esc(alt or caption)}"><figcaption>{caption}</figcaption></figure>'


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
        return f'<td class="num">{esc(text)}</td>'
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{esc(value)}</td>"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; floats shown with 4 significant digits."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def code(text: str) -> str:
    """A ``<pre>`` block."""
    return f"<pre>{esc(text)}</pre>"


def page(title: str, body: Sequence[str]) -> str:
    """The whole document: inline style, ``body`` fragments in order."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
