"""The report of ``kcourse run all``: ``report.md`` and a self-contained ``report.html``.

One row per exercise: the course's target, our result, **reached / missed**, the wall time, and its
plots and GIFs inline (Markdown image links beside the table; images embedded in the HTML).
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from pathlib import Path

from keras_impl import files

IMAGE_SUFFIXES = (".png", ".gif", ".jpg")
MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg"}


def _images(row: dict) -> list[Path]:
    """The run's plots and GIFs: listed artifacts first, then any other image in the run folder."""
    run_dir = row.get("run_dir")
    if not run_dir or not Path(run_dir).is_dir():
        return []
    listed = [Path(run_dir) / a for a in row.get("artifacts", [])]
    found = sorted(p for p in Path(run_dir).rglob("*") if p.suffix in IMAGE_SUFFIXES)
    return list(dict.fromkeys(p for p in listed + found if p.is_file() and p.suffix in IMAGE_SUFFIXES))


def verdict(row: dict) -> str:
    """``reached``, ``missed``, ``n/a`` (no target), or the run's failure (``failed``, ``skipped``)."""
    if row.get("status") != "ok":
        return str(row.get("status", "?"))
    reached = row.get("reached")
    return "n/a" if reached is None else "reached" if reached else "missed"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(rows: list[dict], out_dir: Path, header: list[str]) -> str:
    lines = header + ["| exercise | course's target | reference (course / peer) | ours | reached? | time (s) |",
                      "|---|---|---|---|---|---:|"]
    for row in rows:
        lines.append(f"| {_cell(row['exercise'])} | {_cell(row.get('target', '') or '-')} | "
                     f"{_cell(row.get('reference', ''))} | {_cell(row.get('headline', ''))} | **{verdict(row)}** | "
                     f"{float(row.get('seconds', 0)):.1f} |")
    for row in rows:
        images = _images(row)
        if images:
            lines += ["", f"## {row['exercise']}", ""]
            lines += [f"![{p.name}]({os.path.relpath(p, out_dir)})" for p in images]
    return "\n".join(lines) + "\n"


def _html(rows: list[dict], stamp: str, header_html: str) -> str:
    parts = ["<!doctype html><meta charset='utf-8'><title>kcourse report</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}td,th{border:1px solid #ccc;"
             "padding:4px 8px;vertical-align:top}table{border-collapse:collapse}img{max-width:360px;margin:2px}"
             ".reached{color:#060;font-weight:bold}.missed,.failed,.interrupted{color:#a00;font-weight:bold}</style>",
             f"<h1>kcourse report ({html.escape(stamp)})</h1>{header_html}",
             "<table><tr><th>exercise</th><th>course's target</th><th>reference</th><th>ours</th><th>reached?</th>"
             "<th>time (s)</th><th>plots and GIFs</th></tr>"]
    for row in rows:
        # Images are embedded (the HTML stays self-contained); anything over 8 MiB is linked instead.
        cells = []
        for p in _images(row):
            if p.stat().st_size <= 8 * 1024 * 1024:
                data = base64.b64encode(p.read_bytes()).decode()
                cells.append(f"<img src='data:{MIME[p.suffix]};base64,{data}' title='{html.escape(p.name)}'>")
            else:
                cells.append(f"<a href='{html.escape(str(p))}'>{html.escape(p.name)}</a>")
        v = verdict(row)
        parts.append(f"<tr><td>{html.escape(row['exercise'])}</td><td>{html.escape(row.get('target', '') or '-')}</td>"
                     f"<td>{html.escape(str(row.get('reference', '')))}</td>"
                     f"<td>{html.escape(str(row.get('headline', '')))}</td><td class='{v}'>{v}</td>"
                     f"<td>{float(row.get('seconds', 0)):.1f}</td><td>{''.join(cells)}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


def write_report(rows: list[dict], out_dir: str | os.PathLike, total_seconds: float | None = None,
                 quick: bool = False) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` in ``out_dir`` and return their paths.

    Each row: exercise, target, reference, headline (ours), reached, seconds, status, run_dir, artifacts.
    """
    out_dir = Path(out_dir)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    # the runs' own device line: the parent of `run all` never imports TensorFlow
    devices = next((row["device"] for row in rows if row.get("device")), "device summary unavailable")
    counts = {v: sum(verdict(r) == v for r in rows)
              for v in ("reached", "missed", "n/a", "failed", "skipped", "interrupted")}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    budget = ("`--quick`: smoke-test budgets, the targets are not expected to be reached" if quick
              else "the course's budgets")
    header = [f"# kcourse report ({stamp})", "", f"Devices: {devices}", "",
              f"{len(rows)} exercises at {budget}: {summary}."
              + (f" Total wall time {total_seconds:.0f} s." if total_seconds is not None else ""), ""]
    md_path = files.atomic_write_bytes(out_dir / "report.md", _markdown(rows, out_dir, header).encode())
    header_html = "".join(f"<p>{html.escape(line.lstrip('# '))}</p>" for line in header[2:] if line)
    html_path = files.atomic_write_bytes(out_dir / "report.html", _html(rows, stamp, header_html).encode())
    return md_path, html_path
