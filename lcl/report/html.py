"""HTML: the page, its tables, figures-as-data-URIs and the stylesheet (no computation)."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lcl.report.analysis import top_confusions
from lcl.report.figures import run_colour
from lcl.report.loading import RunData


@dataclass
class Image:
    """One PNG of the report: written as ``filename`` beside report.html and embedded in it."""

    filename: str
    data: bytes
    caption: str = ""
    alt: str = ""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt_pct(value: Any) -> str:
    try:
        return f"{float(value) * 100:.2f}%"
    except (TypeError, ValueError):
        return "–"


def _fmt_float(value: Any, digits: int = 3) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "–"


def _fmt_runtime(value: Any) -> str:
    try:
        secs = float(value)
    except (TypeError, ValueError):
        return "–"
    if secs < 60:
        return f"{secs:.1f} s"
    mins, secs = divmod(int(round(secs)), 60)
    if mins < 60:
        return f"{mins} min {secs:02d} s"
    hours, mins = divmod(mins, 60)
    return f"{hours} h {mins:02d} min"


def _fmt_delta_pp(a: Any, b: Any) -> str:
    try:
        d = (float(b) - float(a)) * 100
    except (TypeError, ValueError):
        return "–"
    return f"{d:+.2f} pp"


HEADLINE = (
    ("test", "accuracy", "Test accuracy", "pct"),
    ("test", "macro_f1", "Test macro-F1", "pct"),
    ("test", "weighted_f1", "Test weighted-F1", "pct"),
    ("test", "mean_entropy", "Test mean entropy", "float"),
    ("validation", "accuracy", "Val. accuracy", "pct"),
    ("validation", "weighted_f1", "Val. weighted-F1", "pct"),
)


HEADLINE_MULTILABEL = (
    ("test", "macro_f1", "Test macro-F1", "pct"),
    ("test", "micro_f1", "Test micro-F1", "pct"),
    ("test", "subset_accuracy", "Test subset accuracy", "pct"),
    ("test", "hamming_loss", "Test Hamming loss", "float"),
    ("validation", "macro_f1", "Val. macro-F1", "pct"),
    ("validation", "micro_f1", "Val. micro-F1", "pct"),
)


def _hex(rgb: Sequence[float]) -> str:
    return "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgb[:3])


def headline_table(runs: list[RunData]) -> str:
    """The headline metrics of every run, then each run's difference from the first."""
    headline = HEADLINE_MULTILABEL if runs[0].multilabel else HEADLINE
    head = "".join(f"<th>{esc(t)}</th>" for _, _, t, _ in headline)
    rows = []
    for r_i, run in enumerate(runs):
        cells = []
        for split, key, _, kind in headline:
            v = (run.metrics.get(split) or {}).get(key)
            cells.append(f"<td>{esc(_fmt_pct(v) if kind == 'pct' else _fmt_float(v))}</td>")
        swatch = f'<span class="swatch" style="background:{_hex(run_colour(r_i))}"></span>'
        best = run.metrics.get("best_epoch")
        rows.append(
            f"<tr><th scope='row'>{swatch}{esc(run.label)}</th>{''.join(cells)}"
            f"<td>{esc('–' if best is None else best)}</td>"
            f"<td>{esc(_fmt_runtime(run.metrics.get('runtime_seconds')))}</td></tr>"
        )
    for run in runs[1:]:
        cells = []
        for split, key, _, kind in headline:
            a = (runs[0].metrics.get(split) or {}).get(key)
            b = (run.metrics.get(split) or {}).get(key)
            text = (
                _fmt_delta_pp(a, b)
                if kind == "pct"
                else (f"{float(b) - float(a):+.3f}" if a is not None and b is not None else "–")
            )
            cls = ""
            if text.startswith("+") and kind == "pct" and not text.startswith("+0.00"):
                cls = " class='up'"
            elif text.startswith("-") and kind == "pct":
                cls = " class='down'"
            cells.append(f"<td{cls}>{esc(text)}</td>")
        rows.append(
            f"<tr class='delta'><th scope='row'>Δ {esc(run.label)} − {esc(runs[0].label)}</th>"
            f"{''.join(cells)}<td></td><td></td></tr>"
        )
    return (
        "<table class='metrics'><thead><tr><th>Run</th>"
        f"{head}<th>Best epoch</th><th>Runtime</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _config_value(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"  # as written in config.yaml
    return str(value)


def config_table(runs: list[RunData]) -> str:
    """Every configuration key of every run; rows that differ between runs highlighted."""
    flats = [_flatten(r.config) for r in runs]
    keys: list[str] = []
    for flat in flats:
        keys.extend(k for k in flat if k not in keys)
    head = "".join(f"<th>{esc(r.label)}</th>" for r in runs)
    rows = []
    for key in keys:
        values = [_config_value(f[key]) if key in f else "–" for f in flats]
        differs = len(runs) > 1 and len(set(values)) > 1
        cls = " class='differs'" if differs else ""
        cells = "".join(f"<td>{esc(v)}</td>" for v in values)
        rows.append(f"<tr{cls}><th scope='row'>{esc(key)}</th>{cells}</tr>")
    note = "<p class='note'>Highlighted rows differ between runs.</p>" if len(runs) > 1 else ""
    return (
        f"{note}<table class='config'><thead><tr><th>Key</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def table_wrap(table: str) -> str:
    return f"<div class='tablewrap'>{table}</div>"


def figure_html(img: Image) -> str:
    uri = "data:image/png;base64," + base64.b64encode(img.data).decode("ascii")
    caption = f"<div class='cap'>{img.caption}</div>" if img.caption else ""
    return (
        f"<figure><img src='{uri}' alt='{esc(img.alt or img.filename)}' "
        f"data-file='{esc(img.filename)}'>"
        f"<figcaption>{caption}<a class='file' href='{esc(img.filename)}'>{esc(img.filename)}</a>"
        f"</figcaption></figure>"
    )


def grid(images: Iterable[Image], wide: bool = False) -> str:
    cls = "grid wide" if wide else "grid"
    return f"<div class='{cls}'>{''.join(figure_html(i) for i in images)}</div>"


def section(title: str, intro: str, body: str, sid: str) -> str:
    intro_html = f"<p class='intro'>{intro}</p>" if intro else ""
    return f"<section id='{sid}'><h2>{esc(title)}</h2>{intro_html}{body}</section>"


def nav_link(sid: str, text: str) -> str:
    return f"<a href='#{sid}'>{esc(text)}</a>"


def confusion_caption(matrix: np.ndarray, names: Sequence[str], fmt) -> str:
    top = top_confusions(matrix, names)
    if not top:
        return "No confusions."
    items = ", ".join(f"{esc(a)} → {esc(b)} ({fmt(v)})" for a, b, v in top)
    return f"Most confused: {items}"


def page(title: str, subtitle: str, runs: list[RunData], nav: str, body: str) -> str:
    """The whole document: header with the runs, navigation, sections, footer."""
    run_tags = "".join(f"<span title='{esc(r.path)}'>{esc(r.label)}</span>" for r in runs)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1>"
        f"<div class='sub'>{esc(subtitle)}</div>"
        f"<div class='runs'>{run_tags}</div></header>"
        f"<nav>{nav}</nav><main>{body}</main>"
        f"<footer>Run directories: {esc(', '.join(str(r.path) for r in runs))}</footer>"
        "</body></html>\n"
    )


CSS = """
:root { --fg:#1f2430; --muted:#5b6475; --line:#e3e6ec; --bg:#f5f6f8; --card:#fff; --accent:#2f5bb7; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#1f2a44; color:#fff; padding:22px 32px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header .sub { color:#c9d2e6; font-size:14px; }
header .runs { margin-top:8px; display:flex; flex-wrap:wrap; gap:8px; }
header .runs span { background:rgba(255,255,255,.12); border-radius:12px; padding:2px 10px; font-size:13px; }
nav { background:#fff; border-bottom:1px solid var(--line); padding:8px 32px; font-size:14px;
      position:sticky; top:0; z-index:2; }
nav a { color:var(--accent); text-decoration:none; margin-right:18px; }
main { max-width:1400px; margin:0 auto; padding:20px 32px 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:18px 22px;
          margin:0 0 20px; box-shadow:0 1px 2px rgba(0,0,0,.04); }
h2 { margin:0 0 10px; font-size:19px; font-weight:600; }
p.intro, p.note { color:var(--muted); margin:0 0 12px; font-size:14px; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(460px, 1fr)); gap:16px; }
.grid.wide { grid-template-columns:1fr; }
figure { margin:0; }
figure img { width:100%; height:auto; display:block; border:1px solid var(--line); border-radius:4px; }
.grid.wide figure img { width:auto; max-width:100%; margin:0 auto; }
.grid.wide figcaption { text-align:center; }
figcaption { font-size:13px; color:var(--muted); margin-top:6px; }
figcaption .cap { margin-bottom:2px; color:var(--fg); }
figcaption a.file { color:var(--muted); font-family:ui-monospace, Menlo, Consolas, monospace; font-size:12px; }
table { border-collapse:collapse; font-size:14px; }
th, td { padding:6px 12px; border-bottom:1px solid var(--line); text-align:right; vertical-align:top; }
thead th { background:#f0f2f6; font-weight:600; }
tbody th, thead th:first-child { text-align:left; font-weight:600; }
table.metrics { width:100%; }
table.metrics td { font-variant-numeric:tabular-nums; }
tr.delta th, tr.delta td { color:var(--muted); font-weight:normal; font-size:13px; background:#fafbfc; }
td.up { color:#1d7d43 !important; } td.down { color:#b3362c !important; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:8px; }
.tablewrap { overflow-x:auto; }
table.config td, table.config th { text-align:left; font-family:ui-monospace, Menlo, Consolas, monospace;
  font-size:13px; padding:3px 12px; word-break:break-word; max-width:420px; }
table.config thead th { font-family:inherit; }
table.config tr.differs { background:#fff6dd; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:0 0 24px; }
"""
