"""The quality scorecard as one self-contained HTML page: tables per department and dataset,
and an inline SVG line chart of completeness, validity and uniqueness over the trend (no
scripts, no network), each batch linked to its Data Docs.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from catalog.entries.scores import BatchScore, Score, Scorecard

_METRICS = (
    ("completeness", "完整性", "#2563eb"),
    ("validity", "有效性", "#16a34a"),
    ("uniqueness", "唯一性", "#9333ea"),
)
_STATUS_TEXT = {"ok": "按时 / on time", "late": "逾期 / late", "never": "无数据 / never registered"}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _chart(points: list[tuple[str, dict[str, float | None]]], title: str) -> str:
    """An inline SVG line chart of the three shares over ``points`` (label, values)."""
    width, height, left, right, top, bottom = 640, 220, 56, 16, 28, 36
    if not points:
        return f'<p class="empty">{_e(title)}: 无批次 / no batches</p>'
    values = [v for _, m in points for v in m.values() if v is not None]
    low = min(values, default=1.0)
    floor = max(0.0, min(0.99, (int(low * 100) - 1) / 100)) if values else 0.9
    span = 1.0 - floor or 0.01
    inner_w, inner_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (inner_w * i / (len(points) - 1) if len(points) > 1 else inner_w / 2)

    def y(v: float) -> float:
        return top + inner_h * (1.0 - (v - floor) / span)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}"><title>{_e(title)}</title>',
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="#fafafa" stroke="#ddd"/>',
    ]
    for k in range(5):
        v = floor + span * k / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v * 100:.1f}%</text>'
        )
    step = max(1, len(points) // 6)
    for i, (label, _) in enumerate(points):
        if i % step == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">'
                f"{_e(label)}</text>"
            )
    for key, zh, colour in _METRICS:
        known = [
            (i, label, value) for i, (label, m) in enumerate(points) if (value := m.get(key)) is not None
        ]
        if len(known) > 1:
            path = " ".join(f"{x(i):.1f},{y(value):.1f}" for i, _, value in known)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for i, label, value in known:
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                f"<title>{_e(label)} {zh} {key}: {_pct(value)}</title></circle>"
            )
    for j, (key, zh, colour) in enumerate(_METRICS):
        parts.append(
            f'<rect x="{left + j * 150}" y="6" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + j * 150 + 14}" y="15" font-size="12">{zh} {key}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _link(target: str | None, page: Path) -> str:
    if not target:
        return ""
    relative = os.path.relpath(target, page.parent)
    return f'<a href="{_e(Path(relative).as_posix())}">Data Docs</a>'


def _metrics(item: BatchScore | Score) -> dict[str, float | None]:
    return {key: getattr(item, key) for key, _, _ in _METRICS}


_CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:20px 0 6px}table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f3f4f6}
td.l,th.l{text-align:left}.ok{color:#15803d}.late{color:#b91c1c;font-weight:bold}.never{color:#6b7280}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:20px}svg{max-width:680px;width:100%;height:auto}.note{color:#6b7280}
"""


def render_html(card: Scorecard, page: Path) -> Path:
    """Write the scorecard as one self-contained HTML page (inline CSS and SVG, no network)."""
    page = Path(page)
    out: list[str] = [
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">',
        "<title>数据质量评分卡 / Data quality scorecard</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>数据质量评分卡 / Data quality scorecard</h1>",
        f'<p class="note">生成于 / generated {_e(card.generated_at.strftime("%Y-%m-%d %H:%M UTC"))}'
        + (f" · 自 / since {_e(card.since.isoformat())}" if card.since else "")
        + "</p>",
    ]
    out += [f'<p class="note">{_e(n)}</p>' for n in card.notes]
    out.append("<h2>按部门 / By department</h2>")
    out.append(
        '<table><tr><th class="l">部门 department</th><th class="l">数据集 datasets</th><th>批次 batches</th>'
        "<th>行 rows</th><th>完整性 completeness</th><th>有效性 validity</th><th>唯一性 uniqueness</th>"
        '<th class="l">及时性 timeliness</th></tr>'
    )
    for d in card.departments:
        out.append(
            f'<tr><td class="l">{_e(d.department)}<br><small>{_e(d.department_code)}</small></td>'
            f'<td class="l">{_e(", ".join(d.datasets))}</td><td>{d.score.batches}</td>'
            f"<td>{d.score.rows_in:,}</td><td>{_pct(d.score.completeness)}</td>"
            f"<td>{_pct(d.score.validity)}</td><td>{_pct(d.score.uniqueness)}</td>"
            f'<td class="l {d.timeliness}">{_e(_STATUS_TEXT[d.timeliness])}</td></tr>'
        )
    out.append("</table>")
    for d in card.departments:
        points = [(day.day.strftime("%m-%d"), _metrics(day.score)) for day in d.trend]
        out.append(f"<h3>{_e(d.department)} · 按日趋势 / daily trend</h3>")
        out.append(_chart(points, f"{d.department} daily trend"))
    out.append("<h2>按数据集 / By dataset</h2>")
    for ds in card.datasets:
        t = ds.timeliness
        age = f"{t.age.total_seconds() / 3600:.1f} h" if t.age is not None else "–"
        out.append(f"<h3>{_e(ds.title_zh)} / {_e(ds.title_en)} <small>({_e(ds.dataset)})</small></h3>")
        out.append(
            '<div class="cards">'
            f"<div class=card>完整性 completeness<b>{_pct(ds.score.completeness)}</b></div>"
            f"<div class=card>有效性 validity<b>{_pct(ds.score.validity)}</b></div>"
            f"<div class=card>唯一性 uniqueness<b>{_pct(ds.score.uniqueness)}</b></div>"
            f'<div class=card>及时性 timeliness<b class="{t.status}">{_e(_STATUS_TEXT[t.status])}</b>'
            f"<small>{_e(t.cycle)} · age {age} · allowed {t.allowed.total_seconds() / 3600:.0f} h</small></div>"
            f"<div class=card>批次 batches<b>{ds.score.batches}</b><small>{ds.score.rows_in:,} rows</small>"
            "</div></div>"
        )
        points = [(b.started_at.strftime("%m-%d %H:%M"), _metrics(b)) for b in ds.trend]
        out.append(_chart(points, f"{ds.dataset} trend"))
        if ds.trend:
            out.append(
                '<table><tr><th class="l">批次 batch</th><th class="l">状态 status</th><th>开始 started</th>'
                "<th>行 rows</th><th>隔离 quarantined</th><th>完整性</th><th>有效性</th><th>唯一性</th>"
                '<th class="l">依据 basis</th><th class="l"></th></tr>'
            )
            for b in reversed(ds.trend):
                out.append(
                    f'<tr><td class="l">{_e(b.batch_id)}</td><td class="l">{_e(b.status)}</td>'
                    f"<td>{_e(b.started_at.strftime('%Y-%m-%d %H:%M'))}</td><td>{b.rows_in:,}</td>"
                    f"<td>{b.rows_quarantined:,}</td><td>{_pct(b.completeness)}</td>"
                    f"<td>{_pct(b.validity)}</td><td>{_pct(b.uniqueness)}</td>"
                    f'<td class="l">{_e(b.basis)}</td><td class="l">{_link(b.data_docs, page)}</td></tr>'
                )
            out.append("</table>")
    out.append("</body></html>")
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("\n".join(out), encoding="utf-8")
    return page
