"""``streamvae evaluate skab`` on one real SKAB file, through the streaming Detector path.

The data is GPL-3.0 and lives beside the project (``../shared/data/skab``), never in it; the
test skips, saying why, where it is absent.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from consumers.cli import main
from consumers.evaluate import TRAIN_ROWS, load_skab_file, run_streamvae, skab_files

SKAB = Path(__file__).resolve().parents[3] / "shared" / "data" / "skab"
pytestmark = pytest.mark.skipif(
    not (SKAB / "valve1").is_dir(), reason=f"SKAB data not found at {SKAB} (GPL-3.0, not shipped)"
)


def test_the_protocol_lists_34_fault_files():
    assert len(skab_files(SKAB)) == 34


def test_one_file_streams_after_its_400_training_rows_and_flags_its_fault():
    f = load_skab_file(SKAB / "valve1" / "0.csv")
    run = run_streamvae(f)
    y = f.anomaly[TRAIN_ROWS:]
    assert len(run.pred) == len(y) == len(f.ts) - TRAIN_ROWS
    assert np.isfinite(run.score).mean() > 0.95  # a window ends on almost every test row
    assert run.pred[y].mean() > run.pred[~y].mean() + 0.2  # fault rows are flagged more
    assert any(e.status == "firing" for e in run.alerts)


def test_the_command_prints_our_rows_beside_the_leaderboard(tmp_path):
    out = io.StringIO()
    code = main(
        [
            "evaluate",
            "skab",
            "--data",
            str(SKAB),
            "--files",
            "1",
            "--out",
            str(tmp_path / "r.json"),
            "--plots",
            str(tmp_path / "plots"),
        ],
        out=out,
    )
    text = out.getvalue()
    assert code == 0
    assert "[ 1/1] valve1/0" in text
    assert "streamvae (window decisions)" in text
    assert "Conv-AE" in text
    assert "river HalfSpaceTrees (baseline)" in text
    assert "T² PCA/Hotelling (baseline)" in text
    assert (tmp_path / "r.json").exists()
    png = (tmp_path / "plots" / "valve1-0.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_the_plots_folder_gets_a_summary_page_linking_each_files_plot(tmp_path):
    code = main(
        ["evaluate", "skab", "--data", str(SKAB), "--files", "1", "--plots", str(tmp_path)],
        out=io.StringIO(),
    )
    page = (tmp_path / "index.html").read_text()
    assert code == 0
    assert "streamvae (window decisions)" in page
    assert "published: Conv-AE" in page
    assert '<a href="valve1-0.png">plot</a>' in page
    assert (tmp_path / "valve1-0.png").exists()
