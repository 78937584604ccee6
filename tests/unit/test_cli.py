"""The console script, run as a user runs it: a real subprocess."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from streamvae.testing import Fault, SyntheticPlant


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "consumers.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def plant_csvs(tmp_path_factory):
    d = tmp_path_factory.mktemp("csv")
    plant = SyntheticPlant(seed=5)

    def write(name, series):
        path = d / name
        with path.open("w", newline="") as fh:
            w = csv.writer(fh, delimiter=";")
            w.writerow(["datetime", *plant.channels, "anomaly"])
            for i, row in enumerate(series.values):
                w.writerow([f"t{i}", *row.round(4), int(series.labels[i])])
        return path

    train = write("train.csv", plant.generate(1200))
    test = write(
        "test.csv", plant.generate(400, [Fault("level_shift", "flow", 1400, 100)], start_step=1200)
    )
    return d, train, test


def test_version_prints_the_package_version(tmp_path):
    import streamvae

    result = run("version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"streamvae {streamvae.__version__}"


def test_train_score_inspect_round_trip_on_a_csv(plant_csvs):
    d, train, test = plant_csvs
    trained = run(
        "train",
        "--csv",
        str(train),
        "--exclude",
        "anomaly",
        "--out",
        "m.safetensors",
        "--epochs",
        "40",
        "--stride",
        "3",
        cwd=d,
    )
    assert trained.returncode == 0, trained.stderr
    assert "Windows: 390 of 32 steps" in trained.stdout
    assert "nats/window" in trained.stdout

    scored = run("score", "--model", "m.safetensors", "--csv", str(test), "--out", "s.csv", cwd=d)
    assert scored.returncode == 0, scored.stderr
    assert "windows/s" in scored.stdout
    rows = list(csv.DictReader((d / "s.csv").open()))
    assert len(rows) == 400 - 32 + 1
    scores = np.array([float(r["score_nats"]) for r in rows])
    in_fault = np.array([200 <= int(r["window_start_row"]) <= 268 for r in rows])
    assert scores[in_fault].min() > np.median(scores[~in_fault])

    inspected = run("inspect", "m.safetensors", cwd=d)
    assert inspected.returncode == 0
    info = json.loads(inspected.stdout)
    assert info["model_config"]["channels"][0] == "flow"
    assert "anomaly" not in info["model_config"]["channels"]
    assert info["metadata"]["source"]["kind"] == "csv"


def test_a_pickle_passed_as_a_model_is_refused_with_exit_status_2(plant_csvs, tmp_path):
    _, _, test = plant_csvs
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    result = run("score", "--model", str(evil), "--csv", str(test), cwd=tmp_path)
    assert result.returncode == 2
    assert "pickle" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_csv_is_a_clear_error(tmp_path):
    result = run("train", "--csv", "nope.csv", "--out", "m", cwd=tmp_path)
    assert result.returncode == 2
    assert "no such file: nope.csv" in result.stderr


def test_quickstart_streams_a_fleet_through_the_detector_and_finds_every_fault(tmp_path):
    result = run("quickstart", "--workdir", str(tmp_path / "qs"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5/5 faults raised an alert" in result.stdout
    assert "scores identically with the reloaded model: yes" in result.stdout
    assert "FIRING" in result.stdout
    assert (tmp_path / "qs" / "model.safetensors").stat().st_size > 0
