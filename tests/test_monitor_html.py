"""The monitoring pages: everything from the database escaped, self-contained, status always written out."""

import datetime
import re

from pandajedi_wf.carousel.config import load_config
from pandajedi_wf.monitor import html, snapshot

NOW = datetime.datetime(2025, 6, 1, 12, 0, 0)
EVIL = "<script>alert(\"x\")</script> 'q' & ünïcødé ✓"


def ago(seconds):
    return NOW - datetime.timedelta(seconds=seconds)


def overview_snapshot(name=EVIL, user="alice"):
    wf = {"workflow_id": 12, "name": name, "user_name": user, "status": "failed", "language": "cwl", "creation_time": ago(900),
          "status_change_time": ago(30), "error_dialog": f"step {name}: <b>broken</b>"}
    agents = snapshot.agent_health(
        [{"agent": "wf_processor", "pid": "h-1", "host": "h", "cycle_end": ago(10), "n_cycles": 3, "last_status": "ok", "last_message": name, "stats": {}},
         {"agent": "wf_carousel", "pid": "h-1", "host": "h", "cycle_end": ago(10), "n_cycles": 3, "last_status": "failed", "last_message": f"boom {name}", "stats": {}}],
        snapshot.DEFAULT_PERIODS, NOW,
    )
    workflows = snapshot.workflows_panel([(user, "failed", 1)], [wf], {12: {"done": 1, "failed": 1, "skipped": 2}}, [wf], NOW)
    config = load_config({"tapes": {"TAPE_A": {"max_files": 100, "max_bytes": 10**12}}, "release_threshold": 0.8})
    carousel = snapshot.carousel_panel(
        config, None, "CONFIG vo=wlcg", [("staging", 1, ago(100)), ("queued", 1, ago(4000))],
        [{"tape": "TAPE_A", "status": "staging", "n_requests": 1, "files_left": 90, "bytes_left": 5 * 10**11}],
        [("DISK_X", 10**12)], [{"tape": "TAPE_A", "throughput_bps": 3e8, "n_samples": 2, "updated_at": ago(60)}],
        [{"request_id": 3, "dataset": name, "status": "queued", "source_rse": None, "destination_rse": "DISK_X", "total_files": 4,
          "staged_files": 0, "n_source_switches": 0, "last_progress_time": None, "creation_time": ago(4000), "start_time": None,
          "error_dialog": f"rule refused: {name}"}],
        NOW,
    )
    return snapshot.overview(agents, workflows, carousel, NOW, user_name=user)


def assert_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "external URL in page"
    assert "@import" not in page and "url(" not in page


def test_overview_escapes_names_messages_and_errors():
    page = html.render_overview(overview_snapshot())
    assert_self_contained(page)
    assert EVIL not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &#x27;q&#x27; &amp; ünïcødé ✓" in page
    assert "&lt;b&gt;broken&lt;/b&gt;" in page


def test_user_names_are_escaped_in_links_too():
    page = html.render_overview(overview_snapshot(user='ev"il<user>'))
    assert_self_contained(page)
    assert 'href="/?user=ev%22il%3Cuser%3E"' in page
    assert "ev&quot;il&lt;user&gt;" in page and 'ev"il<user>' not in page


def test_overview_writes_every_status_as_text_beside_the_colours():
    page = html.render_overview(overview_snapshot(name="plain"))
    assert "needs attention" in page  # the carousel's last cycle failed
    assert "FLAGGED" in page and "last cycle failed: boom plain" in page
    assert "1 done · 1 failed · 2 skipped" in page  # the step bar's numbers in words
    assert ">failed</span>" in page and ">staging</span>" in page
    assert "90 / 100 files · 90% — above threshold" in page
    assert "500.0 GB / 1.0 TB · 50%" in page
    assert "300.0 MB/s" in page
    assert "oldest queued request waits for <b>1h06m</b>" in page
    assert "back in the queue: rule refused: plain" in page
    assert 'href="/workflow/12"' in page


def test_fill_bar_marks_the_threshold_and_caps_the_drawn_width():
    bar = html.fill_bar(150, 100, 0.8, "files")
    assert 'class="thr" style="left:80.0%"' in bar and 'width:100.0%' in bar and "over limit" in bar
    assert "(no limit)" in html.fill_bar(5, None, 0.8, "bytes")
    assert "limit 0" in html.fill_bar(5, 0, 0.8, "files")


def test_workflow_page_shows_steps_by_depth_with_task_ids_and_escaped_history():
    wf = {"workflow_id": 7, "name": EVIL, "user_name": "bob", "status": "running", "language": "yaml", "out_ds": "user.bob.x",
          "error_dialog": None, "creation_time": ago(600), "status_change_time": ago(60), "parent_workflow_id": None}
    steps = [
        {"step_id": 1, "node_key": "001", "name": "top", "step_type": "prun", "status": "done", "parent_keys": [], "jedi_task_id": 501,
         "jedi_status": "done", "iteration": 0, "attempt_nr": 1},
        {"step_id": 2, "node_key": "002", "name": EVIL, "step_type": "prun", "status": "running", "parent_keys": ["001"], "jedi_task_id": 502,
         "jedi_status": "running", "iteration": 2, "attempt_nr": 1},
    ]
    history = [{"transition_time": ago(60), "entity_type": "step", "entity_id": 2, "from_status": "submitted", "to_status": "running",
                "reason": f"task started {EVIL}", "actor": "proc"}]
    page = html.render_workflow(snapshot.workflow_detail(wf, steps, history, NOW, step_limit=100, history_limit=100))
    assert_self_contained(page)
    assert EVIL not in page
    depth0, depth1 = page.index("depth 0"), page.index("depth 1")
    assert depth0 < page.index("JEDI task <b>501</b>") < depth1 < page.index("JEDI task <b>502</b>")
    assert "after 001" in page and "iteration 2" in page
    assert "task started &lt;script&gt;" in page


def test_error_page_escapes_the_message():
    page = html.render_error(404, "no workflow with id <1>")
    assert "no workflow with id &lt;1&gt;" in page and "404" in page
