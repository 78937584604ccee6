"""``streamvae demo`` as a user runs it: one command, a real broker, a real service, a report.

The demo starts its own embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` names a cluster (then
it runs there, with topics and a group of its own). Every child it starts must be gone when it
exits, whether it stopped on time, on Ctrl-C or was killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.harness import ROOT, wait_for

pytestmark = pytest.mark.slow


def demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "consumers.cli", "demo", "--report-dir", str(tmp_path), *args]
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        cmd += ["--bootstrap", os.environ["KAFKA_BOOTSTRAP_SERVERS"]]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def children_of(pid: int) -> list[int]:
    """Every process whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        found += kids
        todo += kids
    return found


# the demo's own children: the service, and the broker unless the cluster is given
CHILDREN = 1 if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else 2


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory) -> tuple[int, str, Path]:
    """One 30-second demo, shared by the tests that read what it printed and wrote."""
    report = tmp_path_factory.mktemp("demo-report")
    proc = demo(report, "--duration", "30s", "--no-live")
    out, _ = proc.communicate(timeout=240)
    return proc.returncode, out, report


def test_a_30_second_demo_detects_at_least_80_percent_of_the_injected_faults(short_demo):
    code, out, report = short_demo
    assert code == 0, out[-6000:]
    summary = json.loads((report / "summary.json").read_text())
    assert summary["faults"] >= 5
    assert summary["detection_rate"] >= 0.8, out[-6000:]


def test_a_30_second_demo_raises_at_most_one_false_alert_per_asset_hour(short_demo):
    _, out, report = short_demo
    summary = json.loads((report / "summary.json").read_text())
    assert summary["scored_asset_hours"] > 0
    assert summary["false_alerts_per_asset_hour"] <= 1.0, out[-6000:]


def test_the_demo_prints_live_alerts_and_a_summary_naming_every_fault(short_demo):
    _, out, report = short_demo
    labels = json.loads((report / "labels.json").read_text())["faults"]
    assert "FIRING" in out
    assert "RESOLVED" in out
    assert "readings/s" in out
    summary = out[out.index("Summary:") :]
    for fault in labels:
        assert fault["asset"] in summary
        assert fault["kind"] in summary


def test_the_demo_writes_an_offline_report_and_its_data(short_demo):
    _, _, report = short_demo
    html = (report / "index.html").read_text()
    assert "<img" in html
    assert "http://" not in html.replace("http://127.0.0.1", "")  # nothing to fetch
    assert "https://" not in html
    assert list(report.glob("*.png"))
    for name in ("labels.json", "summary.json", "demo.toml", "service.log", "alerts.jsonl"):
        assert (report / name).stat().st_size > 0


def test_the_demo_scores_with_a_model_it_trained_itself(short_demo):
    _, _, report = short_demo
    summary = json.loads((report / "summary.json").read_text())
    assert summary["model_versions"][0] == "v0001"
    assert summary["windows_scored"] > 0
    assert summary["service_exit_code"] == 0


def test_ctrl_c_stops_the_demo_cleanly_leaving_no_process_behind(tmp_path):
    proc = demo(tmp_path, "--duration", "3m", "--no-live")
    try:
        wait_for(lambda: len(children_of(proc.pid)) >= CHILDREN, 60, "the broker and service")
        time.sleep(5)  # the service's workers start
        children = descendants(proc.pid)
        time.sleep(3)  # into the warm-up
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-4000:]
    assert "interrupted" in out
    wait_for(lambda: not any(alive(p) for p in children), 10, "every child to exit")
    assert (tmp_path / "summary.json").exists()


def test_a_killed_demo_takes_its_broker_and_service_with_it(tmp_path):
    proc = demo(tmp_path, "--duration", "3m", "--no-live")
    try:
        wait_for(lambda: len(children_of(proc.pid)) >= CHILDREN, 60, "the broker and service")
        time.sleep(5)  # the service's workers start
        children = descendants(proc.pid)
        assert len(children) > CHILDREN  # the service's worker process too
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_for(lambda: not any(alive(p) for p in children), 10, "every child to exit")
