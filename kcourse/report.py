"""The report of ``kcourse run all``: ``report.md`` and a self-contained ``report.html``."""
from __future__ import annotations

import base64
import datetime as _dt
import html
import os
from pathlib import Path

from keras_impl import files

IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".svg")


def _artifacts(row: dict) -> list[Path]:
    run_dir = row.get("run_dir")
    if not run_dir or not Path(run_dir).is_dir():
        return []
    listed = [Path(run_dir) / a for a in row.get("artifacts", [])]
    found = sorted(p for p in Path(run_dir).rglob("*") if p.suffix in IMAGE_SUFFIXES and p.is_file())
    seen, out = set(), []
    for p in listed + found:
        if p.is_file() and p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _embedded(path: Path) -> bool:
    """Images that ``report.html`` embeds (PNG, GIF, JPEG up to 8 MiB)."""
    return path.suffix in (".png", ".gif", ".jpg") and path.stat().st_size <= 8 * 1024 * 1024


def _figure_id(row: int, artifact: int) -> str:
    return f"fig-{row}-{artifact}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(rows: list[dict], out_dir: str | os.PathLike, total_seconds: float | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` in ``out_dir`` and return their paths.

    Each row: exercise, reference, headline (ours), seconds, status, run_dir, artifacts.
    """
    out_dir = Path(out_dir)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    # the runs' own device line: the parent of `run all` never imports TensorFlow
    devices = next((row["device"] for row in rows if row.get("device")), "device summary unavailable")
    lines = [f"# kcourse report ({stamp})", "", f"Devices: {devices}", ""]
    if total_seconds is not None:
        lines += [f"Total time: {total_seconds:.0f} s for {len(rows)} exercises.", ""]
    lines += ["| exercise | reference (course / peer) | ours | time (s) | status | plots |",
              "|---|---|---|---:|---|---|"]
    for row in rows:
        links = " ".join(f"[{p.name}]({os.path.relpath(p, out_dir)})" for p in _artifacts(row))
        lines.append(f"| {_cell(row['exercise'])} | {_cell(row.get('reference', ''))} | {_cell(row.get('headline', ''))} "
                     f"| {float(row.get('seconds', 0)):.1f} | {row.get('status', '?')} | {links} |")
    md_path = files.atomic_write_bytes(out_dir / "report.md", ("\n".join(lines) + "\n").encode())

    parts = ["<!doctype html><meta charset='utf-8'><title>kcourse report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{border:1px solid #ccc;"
             "padding:4px 8px;vertical-align:top}table{border-collapse:collapse}img{max-width:480px}</style>",
             f"<h1>kcourse report ({html.escape(stamp)})</h1><p>Devices: {html.escape(devices)}</p>",
             "<table><tr><th>exercise</th><th>reference</th><th>ours</th><th>time (s)</th><th>status</th>"
             "<th>plots and GIFs</th></tr>"]
    for i, row in enumerate(rows):
        # Images link to their copy embedded below (the HTML stays self-contained); other files by path.
        links = " ".join(
            f"<a href='#{_figure_id(i, j)}'>{html.escape(p.name)}</a>" if _embedded(p)
            else f"<a href='{html.escape(os.path.relpath(p, out_dir))}'>{html.escape(p.name)}</a>"
            for j, p in enumerate(_artifacts(row)))
        parts.append(f"<tr><td>{html.escape(row['exercise'])}</td><td>{html.escape(str(row.get('reference', '')))}</td>"
                     f"<td>{html.escape(str(row.get('headline', '')))}</td><td>{float(row.get('seconds', 0)):.1f}</td>"
                     f"<td>{html.escape(str(row.get('status', '?')))}</td><td>{links}</td></tr>")
    parts.append("</table>")
    for i, row in enumerate(rows):
        images = [(j, p) for j, p in enumerate(_artifacts(row)) if _embedded(p)]
        if not images:
            continue
        parts.append(f"<h2>{html.escape(row['exercise'])}</h2>")
        for j, p in images:
            mime = "image/png" if p.suffix == ".png" else "image/gif" if p.suffix == ".gif" else "image/jpeg"
            data = base64.b64encode(p.read_bytes()).decode()
            parts.append(f"<figure id='{_figure_id(i, j)}'><img src='data:{mime};base64,{data}'>"
                         f"<figcaption>{html.escape(p.name)}</figcaption></figure>")
    html_path = files.atomic_write_bytes(out_dir / "report.html", "\n".join(parts).encode())
    return md_path, html_path
