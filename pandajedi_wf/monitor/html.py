"""Snapshots -> self-contained HTML pages: inline CSS, no script, no external URL, so they work offline and by mail.

Everything that comes from the database goes through ``esc`` (names hold quotes, unicode and worse). Colour is never
the only signal: every coloured bar or badge has its status written beside it or in it.
"""

from __future__ import annotations

import html
from typing import Iterable, Mapping
from urllib.parse import quote

from .snapshot import duration, status_rank

# status -> (background, text colour); statuses not listed are drawn grey
_COLOURS = {
    "done": ("#2e7d32", "#fff"),
    "retired": ("#81c784", "#111"),
    "finished": ("#f9a825", "#111"),
    "failed": ("#c62828", "#fff"),
    "cancelled": ("#5d4037", "#fff"),
    "cancelling": ("#8d6e63", "#fff"),
    "finishing": ("#9e9d24", "#fff"),
    "paused": ("#7b1fa2", "#fff"),
    "running": ("#1565c0", "#fff"),
    "retrying": ("#ef6c00", "#fff"),
    "submitted": ("#42a5f5", "#111"),
    "submitting": ("#90caf9", "#111"),
    "staging": ("#1565c0", "#fff"),
    "switching": ("#ef6c00", "#fff"),
    "ready": ("#b0bec5", "#111"),
    "defined": ("#cfd8dc", "#111"),
    "parsed": ("#b0bec5", "#111"),
    "registered": ("#cfd8dc", "#111"),
    "queued": ("#b0bec5", "#111"),
    "skipped": ("#eceff1", "#555"),
    "ok": ("#2e7d32", "#fff"),
}
_GREY = ("#9e9e9e", "#111")

_CSS = """
*{box-sizing:border-box}
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
a{color:#0b57d0;text-decoration:none}a:hover{text-decoration:underline}
header{background:#1d2330;color:#fff;padding:10px 18px;display:flex;flex-wrap:wrap;align-items:center;gap:10px 18px}
header h1{font-size:17px;margin:0;font-weight:600}header .meta{color:#b8c0cc;font-size:12px}
header a{color:#9cc3ff}
.health{padding:2px 9px;border-radius:10px;font-weight:600;font-size:12px}
.health.good{background:#2e7d32}.health.bad{background:#c62828}
.agents{display:flex;flex-wrap:wrap;gap:8px;width:100%}
.agent{background:#2a3242;border-left:4px solid #2e7d32;border-radius:4px;padding:5px 9px;min-width:240px;max-width:460px}
.agent.bad{border-left-color:#e53935;background:#3a2630}
.agent b{font-size:13px}.agent .sub{color:#b8c0cc;font-size:11.5px}.agent .problem{color:#ffb4b4;font-size:12px}
main{padding:14px 18px;display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:14px}
@media (max-width:1100px){main{grid-template-columns:1fr}}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 14px;min-width:0}
section.wide{grid-column:1/-1}
h2{font-size:15px;margin:2px 0 8px}h3{font-size:13px;margin:12px 0 5px;color:#444}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:3px 6px;border-bottom:1px solid #eef0f3;vertical-align:top}
th{font-size:11.5px;color:#5a6372;font-weight:600;background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:11.5px;font-weight:600;white-space:nowrap}
.bar{display:flex;height:11px;width:150px;border-radius:2px;overflow:hidden;background:#eceff1;border:1px solid #cfd4da}
.bar span{display:block;height:100%}
.counts{font-size:11.5px;color:#444}
.muted{color:#7a8290}.small{font-size:11.5px}
.err{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11.5px;background:#fff4f4;border-left:3px solid #c62828;padding:3px 6px;margin:2px 0;max-height:6.5em;overflow:auto}
.warn{background:#fff8e1;border:1px solid #f9a825;padding:6px 9px;border-radius:4px;margin-bottom:8px}
.fill{position:relative;height:14px;width:100%;min-width:120px;background:#eceff1;border:1px solid #cfd4da;border-radius:2px}
.fill .used{position:absolute;left:0;top:0;bottom:0}
.fill .thr{position:absolute;top:-3px;bottom:-3px;width:2px;background:#1d2330}
.fill-label{font-size:11.5px;font-variant-numeric:tabular-nums;white-space:nowrap}
.level{display:flex;gap:8px;align-items:stretch;margin-bottom:8px}
.level .depth{flex:0 0 64px;font-size:11.5px;color:#5a6372;padding-top:4px}
.level .steps{display:flex;flex-wrap:wrap;gap:6px;flex:1}
.step{border:1px solid #dde1e7;border-left:6px solid #9e9e9e;border-radius:4px;padding:4px 8px;min-width:170px;max-width:320px;background:#fff}
.step .name{font-weight:600;word-break:break-word}.step .key{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px;color:#5a6372}
.legend{display:flex;flex-wrap:wrap;gap:4px;margin:4px 0}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def badge(status: str | None) -> str:
    bg, fg = _COLOURS.get(status or "", _GREY)
    return f'<span class="badge" style="background:{bg};color:{fg}">{esc(status or "unknown")}</span>'


def human_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover - loop always returns


def _counts_text(counts: Mapping[str, int]) -> str:
    return " · ".join(f"{n} {esc(status)}" for status, n in counts.items()) or "no steps yet"


def status_bar(counts: Mapping[str, int]) -> str:
    """Proportional bar of steps per status; the title and the text beside it carry the same numbers."""
    total = sum(counts.values())
    if not total:
        return '<div class="bar" title="no steps yet"></div>'
    parts = "".join(
        f'<span style="width:{100 * n / total:.2f}%;background:{_COLOURS.get(s, _GREY)[0]}" title="{n} {esc(s)}"></span>'
        for s, n in counts.items()
    )
    return f'<div class="bar" title="{esc(_plain_counts(counts))}">{parts}</div>'


def _plain_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def fill_bar(used: int, limit: int | None, threshold: float | None, unit: str) -> str:
    """A limit bar with the release threshold marked (when there is one); the label says used/limit and the percentage
    in words, and whether the threshold or the limit is crossed."""
    if limit is None:
        label = f"{used:,} {unit} (no limit)" if unit == "files" else f"{human_bytes(used)} (no limit)"
        return f'<div class="fill-label">{esc(label)}</div>'
    fill = used / limit if limit else (0.0 if used == 0 else float("inf"))
    crossed = threshold is not None and fill >= threshold
    colour = "#c62828" if fill > 1 else "#f9a825" if crossed else "#43a047"
    shown = f"{used:,} / {limit:,} files" if unit == "files" else f"{human_bytes(used)} / {human_bytes(limit)}"
    pct = "limit 0" if not limit else f"{100 * fill:.0f}%"
    flag = " — over limit" if fill > 1 else " — above threshold" if crossed else ""
    marker = (
        f'<div class="thr" style="left:{threshold * 100:.1f}%" title="release threshold {threshold:.0%}"></div>' if threshold is not None else ""
    )
    title = f"{shown} ({pct})" + (f"; release threshold {threshold:.0%}" if threshold is not None else "")
    return (
        f'<div class="fill" title="{esc(title)}"><div class="used" style="width:{min(fill, 1) * 100:.1f}%;background:{colour}"></div>'
        f'{marker}</div><div class="fill-label">{esc(shown)} · {esc(pct)}{esc(flag)}</div>'
    )


_TAPE_STATE_COLOURS = {"accepting": "#2e7d32", "above release threshold": "#b26a00", "over limit": "#c62828"}


def _tape_state(state: str) -> str:
    return f'<div class="small" style="color:{_TAPE_STATE_COLOURS.get(state, "#5a6372")};font-weight:600">{esc(state)}</div>'


def _page(title: str, header: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{_CSS}</style></head><body>{header}<main>{body}</main></body></html>\n"
    )


# ---- overview ----------------------------------------------------------------------------------------------


def _agents_header(snap: Mapping, title_extra: str = "") -> str:
    healthy = snap["healthy"]
    cards = []
    for a in snap["agents"]:
        bad = a["problem"] is not None
        if a["age_seconds"] is not None:
            last = f"last cycle {duration(a['age_seconds'])} ago ({esc(a['last_cycle_end'])} UTC)"
        else:
            last = "no finished cycle"
        period = f"period {duration(a['period_seconds'])}" if a["period_seconds"] else "period unknown"
        took = f", took {a['cycle_seconds']}s" if a["cycle_seconds"] is not None else ""
        where = f" on {esc(a['host'])} ({esc(a['pid'])})" if a["host"] else ""
        verdict = "FLAGGED" if bad else "healthy"
        cards.append(
            f'<div class="agent{" bad" if bad else ""}"><b>{esc(a["agent"])}</b> {badge(a["status"]) if a["status"] else ""} '
            f'<span class="sub">{verdict}</span>'
            f'<div class="sub">{last}, {period}{took}, {a["n_cycles"]} cycles{where}</div>'
            + (f'<div class="problem">{esc(a["problem"])}</div>' if bad else f'<div class="sub">{esc(_short(a["message"], 160))}</div>')
            + "</div>"
        )
    state = '<span class="health good">all agents healthy</span>' if healthy else '<span class="health bad">needs attention</span>'
    user = f' · workflows of <b>{esc(snap["user_name"])}</b> (<a href="/">everyone</a>)' if snap.get("user_name") else ""
    return (
        f'<header><h1>pandajedi_wf monitor{title_extra}</h1>{state}'
        f'<span class="meta">snapshot {esc(snap["generated_at"])} UTC{user}</span>'
        f'<div class="agents">{"".join(cards) or "<span class=meta>no agents known</span>"}</div></header>'
    )


def _short(text: str | None, n: int) -> str:
    text = text or ""
    return text if len(text) <= n else text[: n - 1] + "…"


def _user_link(user: str) -> str:
    return f'<a href="/?user={esc(quote(user, safe=""))}">{esc(user)}</a>'


def _workflows_section(w: Mapping) -> str:
    statuses = sorted(w["totals"], key=lambda s: (status_rank(s), s))
    head = "".join(f'<th class="num">{badge(s)}</th>' for s in statuses)
    rows = "".join(
        f"<tr><td>{_user_link(u['user_name'])}</td>"
        + "".join(f'<td class="num">{u["counts"].get(s, "") or ""}</td>' for s in statuses)
        + f'<td class="num"><b>{u["total"]}</b></td></tr>'
        for u in w["by_user"]
    )
    totals = "".join(f'<td class="num"><b>{w["totals"][s]}</b></td>' for s in statuses)
    counts_table = (
        f'<table><tr><th>user</th>{head}<th class="num">total</th></tr>{rows}'
        f'<tr><td><b>all</b></td>{totals}<td class="num"><b>{sum(w["totals"].values())}</b></td></tr></table>'
        if w["by_user"] else '<p class="muted">no workflows</p>'
    )
    recent = "".join(
        f'<tr><td class="num"><a href="/workflow/{r["workflow_id"]}">{r["workflow_id"]}</a></td>'
        f'<td><a href="/workflow/{r["workflow_id"]}">{esc(_short(r["name"], 60))}</a></td><td>{esc(r["user_name"])}</td>'
        f'<td>{badge(r["status"])}</td><td>{status_bar(r["steps_by_status"])}'
        f'<div class="counts">{_counts_text(r["steps_by_status"])}</div></td>'
        f'<td class="small">{duration(r["changed_age_seconds"])} ago</td></tr>'
        for r in w["recent"]
    )
    recent_table = (
        '<table><tr><th class="num">id</th><th>name</th><th>user</th><th>status</th><th>steps</th><th>changed</th></tr>'
        f"{recent}</table>" if w["recent"] else '<p class="muted">none</p>'
    )
    failed = "".join(
        f'<tr><td class="num"><a href="/workflow/{r["workflow_id"]}">{r["workflow_id"]}</a></td><td>{esc(_short(r["name"], 50))}'
        f'<div class="small muted">{esc(r["user_name"])} · failed {duration(r["changed_age_seconds"])} ago</div></td>'
        f'<td><div class="err">{esc(_short(r["error_dialog"] or "no error recorded", 600))}</div></td></tr>'
        for r in w["failed"]
    )
    failed_table = f'<table><tr><th class="num">id</th><th>workflow</th><th>error</th></tr>{failed}</table>' if w["failed"] else '<p class="muted">none</p>'
    return (
        f'<section><h2>Workflows</h2><h3>By user and status</h3>{counts_table}'
        f"<h3>Most recent</h3>{recent_table}<h3>Failed, latest first</h3>{failed_table}</section>"
    )


def _window_note(t: Mapping) -> str:
    """Where the byte window sits below the configured maximum, say so (the window follows the tape's throughput)."""
    if t["byte_window"] >= t["max_bytes"]:
        return ""
    return f'<div class="muted small">window from throughput; max {esc(human_bytes(t["max_bytes"]))}</div>'


def _carousel_section(c: Mapping) -> str:
    thr = c["release_threshold"]
    warn = f'<div class="warn"><b>Carousel configuration invalid:</b> {esc(c["config_error"])}</div>' if c["config_error"] else ""
    tape_rows = "".join(
        f'<tr><td><b>{esc(t["tape"])}</b>{_tape_state(t["state"])}</td>'
        f'<td>{fill_bar(t["files_in_flight"], t["max_files"], thr, "files")}</td>'
        f'<td>{fill_bar(t["bytes_in_flight"], t["byte_window"], thr, "bytes")}{_window_note(t)}</td>'
        f'<td class="small">{_counts_text(t["requests"]) if t["requests"] else "<span class=muted>idle</span>"}</td>'
        f'<td class="num small">{esc(human_bytes(t["throughput_bps"]) + "/s") if t["throughput_bps"] else "<span class=muted>not measured</span>"}'
        f'<div class="muted">{t["throughput_samples"]} samples</div></td></tr>'
        for t in c["tapes"]
    )
    tapes = (
        '<table><tr><th>tape</th><th>files in flight / limit</th><th>bytes in flight / window</th><th>requests</th>'
        f'<th class="num">throughput</th></tr>{tape_rows}</table>'
        if c["tapes"] else '<p class="muted">no tape has requests, limits or measurements yet</p>'
    )
    legend = "".join(f"{badge(s)} {n}" for s, n in c["requests_by_status"].items()) or '<span class="muted">no staging requests</span>'
    oldest = (
        f'oldest queued request waits for <b>{duration(c["oldest_queued_age_seconds"])}</b> (since {esc(c["oldest_queued_since"])} UTC)'
        if c["oldest_queued_since"] else "nothing queued"
    )
    no_tape = f' · without a tape yet: {_counts_text(c["requests_without_tape"])}' if c["requests_without_tape"] else ""
    buffers = "".join(
        f'<tr><td>{esc(b["destination"])}</td><td>{fill_bar(b["bytes_held"], b["limit_bytes"], None, "bytes")}</td></tr>' for b in c["buffers"]
    )
    buffer_table = f"<table><tr><th>destination</th><th>bytes held (in flight + staged, not yet released)</th></tr>{buffers}</table>" if buffers else '<p class="muted">no disk buffer in use</p>'
    troubled = "".join(
        f'<tr><td class="num">{r["request_id"]}</td><td class="small" style="word-break:break-all">{esc(r["dataset"])}</td>'
        f'<td>{badge(r["status"])}</td><td class="small">{esc(r["tape"] or "-")}</td><td class="num small">{esc(r["files"])}</td>'
        f'<td class="num small">{r["switches"]}</td><td class="small">{esc(r["reason"])}</td></tr>'
        for r in c["troubled"]
    )
    troubled_table = (
        '<table><tr><th class="num">id</th><th>dataset</th><th>status</th><th>tape</th><th class="num">files</th>'
        f'<th class="num">switches</th><th>why</th></tr>{troubled}</table>'
        if troubled else '<p class="muted">no stuck, switching or requeued request</p>'
    )
    return (
        f'<section><h2>Data carousel</h2>{warn}<div class="legend">{legend}</div><div>{oldest}{no_tape}</div>'
        f'<div class="small muted">a tape gets new work only below the release threshold {thr:.0%} (black mark) of both limits · '
        f'a request is stuck after {duration(c["stuck_timeout_seconds"])} without a new file · config: {esc(c["config_source"])}</div>'
        f"<h3>Tapes</h3>{tapes}<h3>Stuck, switching or requeued</h3>{troubled_table}<h3>Disk buffers</h3>{buffer_table}</section>"
    )


def render_overview(snap: Mapping) -> str:
    return _page("pandajedi_wf monitor", _agents_header(snap), _workflows_section(snap["workflows"]) + _carousel_section(snap["carousel"]))


# ---- one workflow ------------------------------------------------------------------------------------------


def _step_card(s: Mapping) -> str:
    colour = _COLOURS.get(s["status"], _GREY)[0]
    if s["jedi_task_id"] is not None:
        task = f'JEDI task <b>{s["jedi_task_id"]}</b> {badge(s["jedi_status"]) if s["jedi_status"] else "<span class=muted>(not in JEDI_Tasks)</span>"}'
    else:
        task = '<span class="muted">no JEDI task</span>'
    extra = []
    if s["iteration"]:
        extra.append(f"iteration {s['iteration']}")
    if s["scatter_index"] is not None:
        extra.append(f"scatter {s['scatter_index']}")
    if s["attempt_nr"] > 1:
        extra.append(f"attempt {s['attempt_nr']}")
    parents = f'<div class="small muted">after {esc(", ".join(s["parents"]))}</div>' if s["parents"] else ""
    error = f'<div class="err">{esc(_short(s["error_dialog"], 400))}</div>' if s["error_dialog"] else ""
    return (
        f'<div class="step" style="border-left-color:{colour}"><div class="name">{esc(s["name"])}</div>'
        f'<div class="key">{esc(s["node_key"])}{" · " + esc(s["step_type"]) if s["step_type"] else ""}</div>'
        f'<div>{badge(s["status"])} {esc(" · ".join(extra))}</div><div class="small">{task}</div>{parents}{error}</div>'
    )


def render_workflow(detail: Mapping, agents: Iterable[Mapping] = ()) -> str:
    wf = detail["workflow"]
    by_key = {s["node_key"]: s for s in detail["steps"]}
    levels = "".join(
        f'<div class="level"><div class="depth">depth {d}<br><span class="muted">{len(keys)} step{"s" if len(keys) != 1 else ""}</span></div>'
        f'<div class="steps">{"".join(_step_card(by_key[k]) for k in keys)}</div></div>'
        for d, keys in enumerate(detail["levels"])
    )
    cut = '<p class="warn">Only the first steps are shown (the workflow has more).</p>' if detail["steps_truncated"] else ""
    history = "".join(
        f'<tr><td class="small">{esc(h["time"])}</td><td class="small">{esc(h["entity"])}</td><td class="small">{esc(h["key"])}</td>'
        f'<td>{badge(h["from"]) if h["from"] else "<span class=muted>new</span>"} → {badge(h["to"])}</td>'
        f'<td class="small">{esc(h["why"])}</td><td class="small muted">{esc(h["actor"])}</td></tr>'
        for h in detail["history"]
    )
    hist_cut = " (latest only)" if detail["history_truncated"] else ""
    error = f'<div class="err">{esc(wf["error_dialog"])}</div>' if wf["error_dialog"] else ""
    parent = f' · sub-workflow of <a href="/workflow/{wf["parent_workflow_id"]}">{wf["parent_workflow_id"]}</a>' if wf["parent_workflow_id"] else ""
    header = (
        f'<header><h1><a href="/">pandajedi_wf monitor</a> › workflow {wf["workflow_id"]}</h1>'
        f'<span class="meta">snapshot {esc(detail["generated_at"])} UTC</span></header>'
    )
    body = (
        f'<section class="wide"><h2>{esc(wf["name"])} {badge(wf["status"])}</h2>'
        f'<div class="small">id {wf["workflow_id"]} · user {_user_link(wf["user_name"])} · {esc(wf["language"] or "")} · '
        f'output {esc(wf["out_ds"] or "-")} · created {esc(wf["created"])} UTC · status since {esc(wf["changed"])} UTC{parent}</div>{error}'
        f'<div style="margin-top:6px">{status_bar(detail["steps_by_status"])}<div class="counts">{_counts_text(detail["steps_by_status"])}</div></div></section>'
        f'<section class="wide"><h2>Steps by depth in the DAG</h2>{cut}{levels or "<p class=muted>no steps yet</p>"}</section>'
        f'<section class="wide"><h2>History{hist_cut}, newest first</h2><table><tr><th>time (UTC)</th><th>what</th><th>key</th>'
        f'<th>change</th><th>why</th><th>by</th></tr>{history}</table></section>'
    )
    return _page(f"workflow {wf['workflow_id']}: {wf['name']}", header, body)


def render_error(code: int, message: str) -> str:
    header = f'<header><h1><a href="/">pandajedi_wf monitor</a> › {code}</h1></header>'
    return _page(f"{code}: {message}", header, f'<section class="wide"><h2>{code}</h2><p>{esc(message)}</p></section>')
