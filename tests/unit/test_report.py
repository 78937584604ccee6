"""The demo's HTML report: what it shows, and that it stands alone."""

from __future__ import annotations

import base64
import doctest
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

import consumers.report
from consumers.report import write_report
from streamvae.evaluation import FaultSpan
from streamvae.types import AlertEvent, Reading

T0 = 1_700_000_000.0
STEP = 300.0
STEPS = 400
CHANNELS = ("flow", "pressure", "odd_sensor")


def plant(assets=("pump-a", "pump-b", "pump-c")):
    out = []
    for k, asset in enumerate(assets):
        for i in range(STEPS):
            x = np.sin(i / 20 + k)
            values = {c: float(x * (j + 1)) for j, c in enumerate(CHANNELS)}
            out.append(Reading(asset, T0 + i * STEP, values))
    return out


READINGS = plant()
DETECTED = FaultSpan("pump-a", "stuck", "pressure", T0 + 200 * STEP, T0 + 260 * STEP, "pump")
MISSED = FaultSpan("pump-b", "spike", "flow", T0 + 300 * STEP, T0 + 301 * STEP)


def alert(status, asset, starts_at, raised, ends_at=None, top="pressure"):
    reason = None if status == "firing" else "recovered"
    return AlertEvent(
        status, "site", asset, "warning", "x", starts_at, ends_at, 4.0, 1.0,
        {top: 0.8, "flow": 0.2}, raised - 31 * STEP, raised, "v0001", reason=reason,
    ).to_json()  # fmt: skip


ALERTS = [
    alert("firing", "pump-a", T0 + 205 * STEP, T0 + 220 * STEP),
    alert("resolved", "pump-a", T0 + 205 * STEP, T0 + 240 * STEP, T0 + 280 * STEP),
    alert("firing", "pump-c", T0 + 100 * STEP, T0 + 110 * STEP, top="flow"),  # false
]


def scores():
    out = []
    for asset in ("pump-a", "pump-b", "pump-c"):
        for i in range(100, STEPS):
            s = 3.0 if asset == "pump-a" and 200 <= i < 260 else -0.2
            out.append({"asset": asset, "ts": T0 + i * STEP, "score": s, "threshold": 1.0,
                        "anomalous": s > 1.0, "model_version": "v0001" if i < 300 else "v0002",
                        "top_channel": "pressure"})  # fmt: skip
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    page = write_report(
        out,
        readings=READINGS,
        faults=[DETECTED, MISSED],
        alert_documents=ALERTS,
        scores=scores(),
        facts={"readings": f"{len(READINGS):,}", "throughput": "5,200 readings/s"},
    )
    return page, page.read_text(encoding="utf-8")


def fault_row(text, fault):
    rows = re.findall(r"<tr>.*?</tr>", text, flags=re.S)
    return next(r for r in rows if f"<td>{fault.asset}</td>" in r and fault.kind in r)


def embedded_pngs(text):
    return [base64.b64decode(x) for x in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def test_the_page_is_index_html_in_the_output_directory(report):
    page, text = report
    assert page.name == "index.html"
    assert text.startswith("<!DOCTYPE html>")


def test_the_page_names_every_fault_with_its_channel(report):
    _, text = report
    for fault in (DETECTED, MISSED):
        assert fault.asset in text
        assert fault.kind in text
        assert fault.channel in text


def test_the_page_embeds_valid_pngs_also_written_beside_it(report):
    page, text = report
    pngs = embedded_pngs(text)
    files = sorted(page.parent.glob("*.png"))
    assert len(pngs) == len(files) == 3  # two faulted assets and one healthy one
    for data in pngs:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            assert im.format == "PNG"
    assert sorted(f.read_bytes() for f in files) == sorted(pngs)


def test_a_missed_fault_is_shown_as_missed(report):
    _, text = report
    row = fault_row(text, MISSED)
    assert "missed" in row
    assert "detected" not in row


def test_a_detected_fault_shows_time_to_detect_with_its_unit_and_the_top_channel(report):
    _, text = report
    row = fault_row(text, DETECTED)
    assert "detected" in row
    assert "100 min" in row  # raised at step 220, fault from step 200: 20 × 5 min
    assert "pressure" in row
    assert "✓ the faulted channel" in row
    assert "pump</td>" in row  # the asset kind from the labels


def test_an_alert_outside_every_fault_is_listed_as_false(report):
    _, text = report
    false_section = text.split("<h2>False alerts</h2>")[1].split("<h2>")[0]
    assert "pump-c" in false_section
    assert "No false alerts" not in false_section


def test_the_headline_counts_detections_false_alerts_and_throughput(report):
    _, text = report
    headline = text.split('<div class="cards">')[1].split("<h2>")[0]
    assert "1 / 2" in headline
    assert "per asset-hour" in headline
    assert "5,200 readings/s" in headline


def test_run_facts_are_shown_as_given(report):
    _, text = report
    assert f"<dt>readings</dt><dd>{len(READINGS):,}</dd>" in text


def test_the_page_needs_no_network_and_no_script(report):
    _, text = report
    assert "<script" not in text
    assert not re.search(r'(src|href)="(https?:)?//', text)


def test_the_report_works_with_no_scores_and_no_alerts(tmp_path):
    page = write_report(tmp_path, readings=READINGS, faults=[MISSED], facts={})
    text = page.read_text()
    assert "missed" in text
    assert "No false alerts." in text
    assert len(embedded_pngs(text)) == 2
    assert "rate unknown" in text


def test_the_report_works_with_no_faults(tmp_path):
    page = write_report(tmp_path, readings=READINGS, faults=[], alert_documents=ALERTS[2:])
    text = page.read_text()
    assert "No faults in the labels." in text
    assert "pump-c" in text.split("<h2>False alerts</h2>")[1]


def test_labels_are_read_from_a_labels_file_ignoring_unknown_keys(tmp_path):
    labels = tmp_path / "labels.json"
    entry = {"asset": "pump-b", "kind": "cavitation", "channel": "flow", "start_ts": T0 + 9000,
             "end_ts": T0 + 12000, "asset_kind": "pump", "severity_hint": 3}  # fmt: skip
    labels.write_text(json.dumps({"about": {"x": 1}, "missing_readings": 0, "faults": [entry]}))
    text = write_report(tmp_path / "out", readings=READINGS, labels_path=labels).read_text()
    assert "cavitation" in text


def test_asset_names_and_facts_are_escaped(tmp_path):
    readings = [Reading("<b>pump</b>", T0 + i * STEP, {"flow": 1.0}) for i in range(50)]
    fault = FaultSpan("<b>pump</b>", "spike", "flow", T0 + 10 * STEP, T0 + 11 * STEP)
    page = write_report(tmp_path, readings=readings, faults=[fault], facts={"<i>": "&"})
    text = page.read_text()
    assert "<b>pump</b>" not in text
    assert "&lt;b&gt;pump&lt;/b&gt;" in text
    assert "<dt>&lt;i&gt;</dt><dd>&amp;</dd>" in text


def test_giving_both_labels_path_and_faults_is_refused(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        write_report(tmp_path, readings=[], labels_path=tmp_path / "x.json", faults=[])


def test_the_module_examples_run():
    result = doctest.testmod(consumers.report, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_asset_kinds_name_the_kind_of_a_healthy_asset(tmp_path):
    page = write_report(
        tmp_path, readings=READINGS, faults=[MISSED], asset_kinds={"pump-a": "compressor"}
    )
    assert "<b>pump-a</b> (compressor)" in page.read_text()


def test_units_given_per_asset_win_over_units_per_channel(tmp_path, monkeypatch):
    seen = {}
    real = consumers.report._figure_png

    def spy(view, signals, scores, units, *rest):
        seen[view.asset] = dict(units)
        return real(view, signals, scores, units, *rest)

    monkeypatch.setattr(consumers.report, "_figure_png", spy)
    write_report(
        tmp_path,
        readings=READINGS,
        faults=[MISSED],
        units={"flow": "l/s"},
        asset_units={"pump-b": {"flow": "m³/s"}},
        healthy_assets=2,
    )
    assert seen["pump-b"]["flow"] == "m³/s"
    assert seen["pump-a"]["flow"] == "l/s"
    assert seen["pump-a"]["pressure"] == "bar"  # the default
