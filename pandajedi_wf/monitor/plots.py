"""The data carousel over time, as server-rendered SVG line charts (no script, no library, no external URL).

History comes from what the carousel already records on every staging request: when it started staging
(``start_time``), when its last file arrived (``end_time``) and, for a request that let its disk buffer go, the time
of that last change (``modification_time`` of a retired, cancelled or failed request). ``series`` samples those
intervals on a regular grid:

- files and bytes in flight per tape: the request's whole size counts from its start until its end (per-file arrival
  times are not stored, so a half-staged request counts in full: the curve is an upper bound of the true one); a
  request the carousel switched to another tape counts on each tape for the time it read from it, cut at the switch
  times of the carousel's history (JEDI_WF_TRANSITIONS) in the order of its ``tried`` tapes;
- throughput per tape: a finished request's bytes spread evenly over its time on the tape that delivered them;
- disk buffer per destination: the request's bytes from its start until it is retired.

Pure functions; the rows come from ``taskbuffer.monitoring.request_intervals``.
"""

from __future__ import annotations

import datetime
import html
from typing import Iterable, Mapping, Sequence

from pandajedi_wf.carousel import lifecycle as lc

PALETTE = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#ad1457")
RELEASED = frozenset({lc.RETIRED, lc.CANCELLED, lc.FAILED})


def _seconds(a: datetime.datetime, b: datetime.datetime) -> float:
    return (b - a).total_seconds()


def tape_segments(row: Mapping, switched_at: Sequence[datetime.datetime], ended: datetime.datetime) -> list[tuple[str, datetime.datetime, datetime.datetime]]:
    """The tapes a request read from and when: ``(tape, from, to)`` from its start to ``ended``, cut at each move to
    ``switching`` the carousel recorded, the tapes named in order by ``tried_sources.tried``. When the history and
    the list disagree (a tape tried twice, a history cut short) the whole interval goes to the current source."""
    began, current = row["start_time"], row.get("source_rse")
    tried = [t for t in ((row.get("tried_sources") or {}).get("tried") or []) if isinstance(t, str)]
    cuts = [t for t in sorted(switched_at) if began < t < ended]
    if cuts and len(tried) == len(cuts) + 1 and tried[-1] == current:
        edges = [began, *cuts, ended]
        return [(tape, a, z) for tape, a, z in zip(tried, edges, edges[1:])]
    return [(current, began, ended)] if current else []


def switch_events(rows: Iterable[Mapping], events: Iterable[Mapping], since: datetime.datetime, limit: int = 100) -> list[dict]:
    """The carousel's moves since ``since`` an operator looks for, newest first: a source switch (from which tape to
    which, and why: stuck, or moved to an idle tape), a request sent back to the queue (rule refused), a failure.
    ``events`` is the requests' whole history of such moves (the n-th switch goes from the n-th tried tape)."""
    by_id = {int(r["request_id"]): r for r in rows}
    nth: dict[int, int] = {}
    out = []
    for e in events:
        if e["to_status"] == lc.QUEUED and e.get("from_status") is None:
            continue  # its creation, not a re-queue
        rid = int(e["request_id"])
        row = by_id.get(rid, {})
        tried = [t for t in ((row.get("tried_sources") or {}).get("tried") or []) if isinstance(t, str)]
        item = {"time": e["transition_time"].strftime("%Y-%m-%d %H:%M:%S"), "request_id": rid, "dataset": row.get("dataset"),
                "status": e["to_status"], "reason": e.get("reason") or "", "from_tape": None, "to_tape": None}
        if e["to_status"] == lc.SWITCHING:
            k = nth.get(rid, 0)
            nth[rid] = k + 1
            if len(tried) == int(row.get("n_source_switches") or 0) + 1 and k + 1 < len(tried):
                item["from_tape"], item["to_tape"] = tried[k], tried[k + 1]
        if e["transition_time"] >= since:
            out.append(item)
    return list(reversed(out))[:limit]


def series(rows: Iterable[Mapping], now: datetime.datetime, hours: float = 24, points: int = 48,
           switches: Mapping[int, Sequence[datetime.datetime]] | None = None) -> dict:
    """Regular samples over the last ``hours``: ``times`` (bucket ends), and per tape ``files``/``bytes`` in flight
    and ``throughput`` (bytes/s), per destination ``buffer`` (bytes). ``switches`` (request id -> times of its moves
    to ``switching``, from the carousel's history) attributes a switched request's time to each tape it read from
    (``tape_segments``); its bytes count as the last tape's throughput, over its time on that tape."""
    start = now - datetime.timedelta(hours=hours)
    step = hours * 3600 / points
    edges = [start + datetime.timedelta(seconds=step * i) for i in range(points + 1)]
    mids = [a + (b - a) / 2 for a, b in zip(edges, edges[1:])]
    files: dict[str, list[float]] = {}
    nbytes: dict[str, list[float]] = {}
    rate: dict[str, list[float]] = {}
    buffer: dict[str, list[float]] = {}
    n_rows = 0
    for r in rows:
        n_rows += 1
        began = r.get("start_time")
        if began is None:
            continue
        dest = r.get("destination_rse")
        size = float(r.get("dataset_size") or 0)
        n_files = float(r.get("total_files") or 0)
        status = r.get("status")
        ended = r.get("end_time")
        if ended is None:
            ended = now if status in lc.IN_FLIGHT else (r.get("modification_time") or now)
        released = (r.get("modification_time") or now) if status in RELEASED else now
        segments = tape_segments(r, (switches or {}).get(int(r["request_id"]), ()) if "request_id" in r else (), ended)
        for seg_tape, seg_from, seg_to in segments:
            f = files.setdefault(seg_tape, [0.0] * points)
            b = nbytes.setdefault(seg_tape, [0.0] * points)
            for i, t in enumerate(mids):
                if seg_from <= t < seg_to:
                    f[i] += n_files
                    b[i] += size
        if segments and r.get("end_time") is not None and status not in (lc.FAILED, lc.CANCELLED):
            last_tape, last_from, _ = segments[-1]
            took = max(_seconds(last_from, r["end_time"]), 1.0)
            per_second = size / took
            th = rate.setdefault(last_tape, [0.0] * points)
            for i, (a, z) in enumerate(zip(edges, edges[1:])):
                overlap = _seconds(max(a, last_from), min(z, r["end_time"]))
                if overlap > 0:
                    th[i] += per_second * overlap / step
        if dest and size:
            d = buffer.setdefault(dest, [0.0] * points)
            for i, t in enumerate(mids):
                if began <= t < released:
                    d[i] += size
    return {
        "from": start.strftime("%Y-%m-%d %H:%M"),
        "to": now.strftime("%Y-%m-%d %H:%M"),
        "hours": hours,
        "times": [t.strftime("%Y-%m-%d %H:%M") for t in edges[1:]],
        "files": dict(sorted(files.items())),
        "bytes": dict(sorted(nbytes.items())),
        "throughput": dict(sorted(rate.items())),
        "buffer": dict(sorted(buffer.items())),
        "requests_read": n_rows,
    }


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def line_chart(title: str, times: Sequence[str], lines: Mapping[str, Sequence[float]], fmt, limits: Mapping[str, float | None] | None = None,
               width: int = 560, height: int = 190) -> str:
    """One SVG chart: a polyline per entry of ``lines``, a dashed line per limit, y labels through ``fmt``; every
    line is named in the legend with its latest value (colour is never the only signal)."""
    left, right, top, bottom = 62, 12, 24, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    limits = {k: v for k, v in (limits or {}).items() if v}
    # the scale follows the data; a limit far above it is named in the legend but not drawn (it would flatten the curve)
    data_max = max([max(v, default=0) for v in lines.values()] + [0])
    top_value = _nice_max(max([data_max] + [v for v in limits.values() if data_max and v <= 2 * data_max]))
    n = max(len(times), 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return x, top + plot_h - plot_h * min(v, top_value) / top_value

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(title)}"><text x="{left}" y="15" class="ct">{_esc(title)}</text>'
    ]
    for k in range(5):
        v = top_value * k / 4
        _, y = xy(0, v)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 5}" y="{y + 4:.1f}" class="yl">{_esc(fmt(v))}</text>')
    for i in (0, n // 2, n - 1):
        if 0 <= i < len(times):
            x, _ = xy(i, 0)
            anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"
            parts.append(f'<text x="{x:.1f}" y="{height - 18}" class="xl" text-anchor="{anchor}">{_esc(times[i][5:])}</text>')
    legend = []
    for j, (name, values) in enumerate(lines.items()):
        colour = PALETTE[j % len(PALETTE)]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
        parts.append(f'<polyline class="series" data-series="{_esc(name)}" fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        limit = limits.get(name)
        if limit and limit <= top_value:
            _, y = xy(0, limit)
            parts.append(f'<line class="limit" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-dasharray="5 4"/>')
        latest = fmt(values[-1]) if values else "-"
        legend.append((colour, f"{name}: {latest}" + (f" (limit {fmt(limit)})" if limit else "")))
    x = left
    for colour, text in legend:
        parts.append(f'<rect x="{x}" y="{height - 11}" width="10" height="4" fill="{colour}"/><text x="{x + 14}" y="{height - 6}" class="lg">{_esc(text)}</text>')
        x += 20 + 6.2 * len(text)
    if not lines:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" class="empty">nothing staged in this period</text>')
    parts.append("</svg>")
    return "".join(parts)


CHART_CSS = (
    ".chart{background:#fff;border:1px solid #dde1e7;border-radius:4px;margin:4px 8px 8px 0}"
    ".chart .ct{font:600 12px system-ui,sans-serif;fill:#1d2330}.chart .grid{stroke:#eceff1}"
    ".chart .yl{font:10px system-ui,sans-serif;fill:#5a6372;text-anchor:end}.chart .xl{font:10px system-ui,sans-serif;fill:#5a6372}"
    ".chart .lg{font:10.5px system-ui,sans-serif;fill:#1d2330}.chart .empty{font:12px system-ui,sans-serif;fill:#7a8290;text-anchor:middle}"
)
