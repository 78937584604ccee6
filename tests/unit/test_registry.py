"""The model registry: immutable versions, an atomic ``latest`` pointer, rollback, export."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import streamvae as sv
from consumers.cli import main


def artefact(seed: int = 0, note: str = "") -> bytes:
    import torch

    torch.manual_seed(seed)
    model = sv.RecurrentVAE(sv.VAEConfig(channels=("a", "b"), window=8))
    return sv.dumps_artefact(model, metadata={"reason": note or f"seed {seed}"})[0]


def test_versions_count_up_and_the_newest_becomes_latest(tmp_path):
    reg = sv.ModelRegistry(tmp_path)
    assert reg.save(artefact(0)) == "v0001"
    assert reg.save(artefact(1)) == "v0002"
    assert reg.versions() == ["v0001", "v0002"]
    assert reg.latest() == "v0002"


def test_a_version_never_changes_once_written(tmp_path):
    reg = sv.ModelRegistry(tmp_path)
    reg.save(artefact(0), "v0001")
    with pytest.raises(sv.RegistryError, match="already exists"):
        reg.save(artefact(1), "v0001")


def test_bytes_that_are_not_an_artefact_are_never_registered(tmp_path):
    reg = sv.ModelRegistry(tmp_path)
    with pytest.raises(sv.ArtefactError):
        reg.save(b"not a model")
    assert reg.versions() == []


def test_rollback_points_latest_at_the_previous_version_and_deletes_nothing(tmp_path):
    reg = sv.ModelRegistry(tmp_path)
    for seed in range(3):
        reg.save(artefact(seed))
    assert reg.rollback() == "v0002"
    assert reg.latest() == "v0002"
    assert reg.rollback("v0001") == "v0001"
    assert reg.versions() == ["v0001", "v0002", "v0003"]


def test_rollback_past_the_oldest_version_is_an_error(tmp_path):
    reg = sv.ModelRegistry(tmp_path)
    reg.save(artefact(0))
    with pytest.raises(sv.RegistryError, match="nothing to roll back"):
        reg.rollback()


def test_loading_latest_gives_the_artefact_it_names(tmp_path):
    reg = sv.ModelRegistry(tmp_path)
    first = sv.loads_artefact(artefact(0))
    reg.save(artefact(0))
    reg.save(artefact(1))
    reg.rollback()
    assert reg.load().content_hash == first.content_hash


def test_export_copies_a_version_byte_for_byte(tmp_path):
    reg = sv.ModelRegistry(tmp_path / "reg")
    reg.save(artefact(0))
    target = reg.export("v0001", tmp_path)
    assert target.read_bytes() == reg.path("v0001").read_bytes()


WRITER = textwrap.dedent(
    """
    import sys, torch, streamvae as sv
    reg = sv.ModelRegistry(sys.argv[1])
    model = sv.RecurrentVAE(sv.VAEConfig(channels=("a", "b"), window=8))
    data = sv.dumps_artefact(model)[0]
    print("ready", flush=True)
    while True:
        reg.save(data)
    """
)


def test_a_writer_killed_at_any_moment_leaves_the_registry_consistent(tmp_path):
    root = tmp_path / "reg"
    for i in range(6):  # SIGKILL the writer at six different moments
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.037 * i)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        reg = sv.ModelRegistry(root)
        latest = reg.latest()
        assert latest is not None
        assert latest in reg.versions()
        reg.load()  # the version latest names is complete and verifies
        for v in reg.versions():  # every version is complete: nothing half-written
            sv.load_artefact(reg.path(v))


def test_the_models_command_lists_shows_rolls_back_and_exports(tmp_path):
    reg = sv.ModelRegistry(tmp_path / "reg")
    reg.save(artefact(0, "warm-up"))
    reg.save(artefact(1, "drift"))
    out = io.StringIO()
    assert main(["models", "list", "--registry", str(reg.root)], out) == 0
    lines = out.getvalue().splitlines()
    assert any(line.startswith("* v0002") and "drift" in line for line in lines)
    out = io.StringIO()
    assert main(["models", "show", "v0001", "--registry", str(reg.root)], out) == 0
    assert '"version": "v0001"' in out.getvalue()
    out = io.StringIO()
    assert main(["models", "rollback", "--registry", str(reg.root)], out) == 0
    assert "v0002 -> v0001" in out.getvalue()
    dest = tmp_path / "out.safetensors"
    assert main(["models", "export", "v0002", str(dest), "--registry", str(reg.root)]) == 0
    assert dest.read_bytes() == reg.path("v0002").read_bytes()


def test_the_models_command_without_a_registry_says_how_to_name_one(tmp_path, capsys):
    assert main(["models", "list", "--registry", str(Path(tmp_path) / "missing")]) == 2
    assert "no registry" in capsys.readouterr().err
