"""The self-contained HTML access-log report of ``hub audit report --html``.

One file: inline CSS and SVG charts drawn here, no script, no font or image fetched, so it
opens the same offline, in a mail attachment or an archive years later. Every text from the
log is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalog.audit import Report, Tally

# The hub's own packages are imported inside the commands: `hub --help` and every command
# start without loading pyiceberg, DuckDB, Great Expectations or the keyring code.

_ALLOWED = "#3b6ea8"
_DENIED = "#c0392b"
_UNUSUAL = "#e67e22"
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;
margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9rem}.ok{color:#1e7b34;font-weight:600}.bad{color:#c0392b;font-weight:600}
table{border-collapse:collapse;font-size:.88rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.denied{color:#c0392b}.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}svg text{font-size:11px;fill:#333}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
"""


def render(report: Report, *, auditor: str) -> str:
    """The report as one HTML document."""
    shown = ", ".join(f"{k} {v}" for k, v in report.filters.describe().items()) or "all entries"
    unusual_days = {(u.system, u.day) for u in report.unusual}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>Access log report / 访问日志审计报告</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Access log report / 访问日志审计报告</h1>",
        f'<p class="meta">{escape(shown)} · generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC '
        f"for auditor {escape(auditor)}</p>",
        _verification(report),
        '<div class="cards">',
        _card("entries", report.calls),
        _card("rows returned or delivered", report.rows),
        _card("denied attempts", report.denied, bad=report.denied > 0),
        _card("unusual system-days", len(unusual_days), bad=bool(unusual_days)),
        _card("consumer systems", len([t for t in report.by_system if t.name != "-"])),
        "</div>",
        "<h2>Entries per day (UTC)</h2>",
        _legend(),
        _day_chart(report.by_day),
        "<h2>By consumer system</h2>",
        _bar_chart(report.by_system),
        _tally_table("system", report.by_system),
        "<h2>By dataset</h2>",
        _bar_chart(report.by_dataset),
        _tally_table("dataset", report.by_dataset),
        "<h2>By action</h2>",
        _tally_table("action", report.by_action),
        _unusual(report),
        _denied(report),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _card(label: str, value: int, *, bad: bool = False) -> str:
    style = ' class="bad"' if bad else ""
    return f'<div class="card"><b{style}>{value:,}</b>{escape(label)}</div>'


def _legend() -> str:
    return (
        f'<p class="legend"><span style="background:{_ALLOWED}"></span>allowed'
        f'<span style="background:{_DENIED}"></span>denied</p>'
    )


def _verification(report: Report) -> str:
    result = report.verification
    if result is None:
        return ""
    if result.ok:
        span = f"entries {result.first_seq}–{result.last_seq}" if result.entries else "no entries"
        return (
            f'<p class="ok">✔ The log verifies: {span}, {result.checkpoints} signed checkpoint(s), '
            "hash chain and MACs intact.</p>"
        )
    items = "".join(f"<li>{escape(str(p))}</li>" for p in result.problems)
    return f'<div class="bad"><p>✘ The log does NOT verify:</p><ul>{items}</ul></div>'


def _day_chart(days: Sequence[Tally]) -> str:
    if not days:
        return "<p>No entries.</p>"
    width, height, left, bottom = 900, 220, 50, 40
    top = max(t.calls for t in days) or 1
    step = (width - left - 10) / len(days)
    bar = max(step * 0.8, 1.0)
    out = [_svg_open(width, height, "entries per day")]
    out.append(_axis(left, height - bottom, width - 10, top, height - bottom - 10))
    label_every = max(1, len(days) // 12)
    for i, t in enumerate(days):
        x = left + i * step
        allowed_h = (t.calls - t.denied) / top * (height - bottom - 10)
        denied_h = t.denied / top * (height - bottom - 10)
        y = height - bottom - allowed_h
        title = f"{t.name}: {t.calls} entries, {t.denied} denied, {t.rows} rows"
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{allowed_h:.1f}" fill="{_ALLOWED}">'
            f"<title>{escape(title)}</title></rect>"
        )
        if denied_h:
            out.append(
                f'<rect x="{x:.1f}" y="{y - denied_h:.1f}" width="{bar:.1f}" height="{denied_h:.1f}" '
                f'fill="{_DENIED}"><title>{escape(title)}</title></rect>'
            )
        if i % label_every == 0:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle">'
                f"{escape(t.name[5:])}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _bar_chart(tallies: Sequence[Tally], limit: int = 15) -> str:
    shown = list(tallies[:limit])
    if not shown:
        return ""
    row, left, width = 22, 180, 900
    height = row * len(shown) + 10
    top = max(t.calls for t in shown) or 1
    out = [_svg_open(width, height, "entries by name")]
    for i, t in enumerate(shown):
        y = 5 + i * row
        allowed_w = (t.calls - t.denied) / top * (width - left - 80)
        denied_w = t.denied / top * (width - left - 80)
        name = t.name if len(t.name) <= 28 else t.name[:27] + "…"
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(name)}</text>')
        out.append(
            f'<rect x="{left}" y="{y + 3}" width="{allowed_w:.1f}" height="{row - 6}" fill="{_ALLOWED}"/>'
        )
        if denied_w:
            out.append(
                f'<rect x="{left + allowed_w:.1f}" y="{y + 3}" width="{denied_w:.1f}" height="{row - 6}" '
                f'fill="{_DENIED}"/>'
            )
        out.append(
            f'<text x="{left + allowed_w + denied_w + 6:.1f}" y="{y + 14}">{t.calls:,}'
            f"{f' ({t.denied:,} denied)' if t.denied else ''}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px">'
    )


def _axis(left: int, base: int, right: int, top: int, span: int) -> str:
    return (
        f'<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="#999"/>'
        f'<line x1="{left}" y1="{base}" x2="{left}" y2="{base - span}" stroke="#999"/>'
        f'<text x="{left - 6}" y="{base - span + 4}" text-anchor="end">{top:,}</text>'
        f'<text x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>'
    )


def _tally_table(label: str, tallies: Sequence[Tally]) -> str:
    rows = "".join(
        f'<tr><td>{escape(t.name)}</td><td class="n">{t.calls:,}</td><td class="n">{t.rows:,}</td>'
        f'<td class="n{" denied" if t.denied else ""}">{t.denied:,}</td></tr>'
        for t in tallies
    )
    return (
        f"<table><tr><th>{escape(label)}</th><th>entries</th><th>rows</th><th>denied</th></tr>{rows}</table>"
    )


def _unusual(report: Report) -> str:
    rule = (
        f"a system's day above {report.unusual_factor:g}× the median of its active days in the period "
        f"(judged once it has {report.unusual_min_days} or more active days)"
    )
    if not report.unusual:
        return f"<h2>Unusual volumes</h2><p>None: no {escape(rule)}.</p>"
    rows = "".join(
        f"<tr><td>{escape(u.system)}</td><td>{escape(u.day)}</td><td>{escape(u.metric)}</td>"
        f'<td class="n denied">{u.value:,}</td><td class="n">{u.median:g}</td>'
        f'<td class="n">{u.value / u.median:.1f}×</td></tr>'
        for u in report.unusual
    )
    charts = "".join(_system_days(report, system) for system in sorted({u.system for u in report.unusual}))
    return (
        f"<h2>Unusual volumes</h2><p>Flagged: {escape(rule)}.</p>"
        "<table><tr><th>system</th><th>day</th><th>measure</th><th>value</th><th>median</th>"
        f"<th>ratio</th></tr>{rows}</table>{charts}"
    )


def _system_days(report: Report, system: str) -> str:
    days = report.by_system_day.get(system, {})
    flagged = {u.day for u in report.unusual if u.system == system}
    if not days:
        return ""
    width, height, left, bottom = 900, 140, 50, 30
    top = max(t.calls for t in days.values()) or 1
    step = (width - left - 10) / len(days)
    bar = max(step * 0.8, 1.0)
    out = [
        f"<h3>{escape(system)}: entries per day (unusual days in orange)</h3>",
        _svg_open(width, height, system),
    ]
    out.append(_axis(left, height - bottom, width - 10, top, height - bottom - 10))
    for i, (day, t) in enumerate(days.items()):
        h = t.calls / top * (height - bottom - 10)
        colour = _UNUSUAL if day in flagged else _ALLOWED
        out.append(
            f'<rect x="{left + i * step:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{escape(day)}: {t.calls} entries, {t.rows} rows</title></rect>'
        )
    out.append("</svg>")
    return "".join(out)


def _denied(report: Report) -> str:
    if not report.denied_entries:
        return "<h2>Denied attempts</h2><p>None.</p>"
    rows = "".join(
        f'<tr><td class="n">{e["seq"]}</td><td>{e["at"]:%Y-%m-%d %H:%M:%S}</td>'
        f"<td>{escape(e['system'] or '')}</td><td>{escape(e['actor'] or '')}</td>"
        f"<td>{escape(e['action'])}</td><td>{escape(e['dataset'] or '')}</td>"
        f"<td>{escape(e['client'] or '')}</td><td>{escape(e['reason'] or '')}</td></tr>"
        for e in report.denied_entries
    )
    shown = len(report.denied_entries)
    more = f" (the newest {shown} shown)" if report.denied > shown else ""
    return (
        f"<h2>Denied attempts: {report.denied:,}{more}</h2>"
        "<table><tr><th>seq</th><th>time (UTC)</th><th>system</th><th>actor</th><th>action</th>"
        f"<th>dataset</th><th>client</th><th>reason</th></tr>{rows}</table>"
    )
