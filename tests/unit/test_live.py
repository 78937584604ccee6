"""The demo's live view: plain lines without a terminal, a rich panel on one."""

from __future__ import annotations

import io

from consumers.live import AlertLine, LiveState, LiveView, alert_text, status_line


def state(**kw) -> LiveState:
    base = {"elapsed_s": 12.0, "duration_s": 30.0, "sent": 900, "total": 9000}
    return LiveState(**{**base, **kw})


def test_the_status_line_gives_every_figure_with_its_unit():
    line = status_line(state(readings_per_s=1234.0, lag=56.0, warmup=0.5, model_version="v0001"))
    assert "plant  10 %" in line
    assert "1,234 readings/s" in line
    assert "lag 56 records" in line
    assert "warm-up 50 %" in line
    assert "model v0001" in line


def test_an_alert_outside_every_injected_fault_is_called_a_false_alert():
    a = AlertLine("firing", "motor-03", 1.7e9, "warning", 3.0, 1.0, "current", "")
    assert "false alert" in alert_text(a)
    b = AlertLine(
        "firing", "pump-01", 1.7e9, "critical", 9.0, 1.0, "vibration", "spike on vibration"
    )
    assert "injected: spike on vibration" in alert_text(b)


def test_without_a_terminal_alerts_print_once_and_status_lines_are_rate_limited():
    out = io.StringIO()
    view = LiveView(out, rich=False, every_s=3600.0)
    view.start()
    for _ in range(5):
        view.update(state())
    view.note_alert(AlertLine("resolved", "pump-01", 1.7e9, "", 0.0, 0.0, "", "", 95.0))
    view.stop(state(sent=9000))
    lines = out.getvalue().splitlines()
    assert sum("plant" in line for line in lines) == 2  # the first update and the final state
    assert sum("RESOLVED" in line for line in lines) == 1
    assert "after    95 min of event time" in out.getvalue()


def test_the_rich_panel_draws_bars_and_the_alert_table(monkeypatch):
    monkeypatch.setenv("COLUMNS", "140")  # a terminal's width (a StringIO has none)
    out = io.StringIO()
    view = LiveView(out, rich=True)
    view.start()
    s = state(warmup=1.0, training=0.4, model_version="")
    s.recent.append(AlertLine("firing", "pump-01", 1.7e9, "critical", 9.0, 1.0, "flow", ""))
    view.update(s)
    view.stop(s)
    text = out.getvalue()
    for expected in ("warm-up", "100 %", "40 %", "pump-01", "nothing: a false alert"):
        assert expected in text
