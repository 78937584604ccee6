"""SKAB through the streaming path, every fault file: what ``docs/evaluation.md`` reports.

For each of the 34 fault files the first 400 rows train and the rest stream through a
``streamvae.Detector`` in 500-reading batches (``consumers.evaluate``); river HalfSpaceTrees
and a T² (PCA/Hotelling) baseline see the same rows. The pooled outlier figures (F1, FAR %,
MAR %) and the NAB changepoint scores (standard / low-FP / low-FN) are printed beside the
published leaderboard, with the seconds each detector took. Targets (issue 7): F1 ≥ 0.80 at
FAR ≤ 13 %, NAB standard ≥ 33.

    python benchmarks/bench_skab.py                          # ../shared/data/skab
    python benchmarks/bench_skab.py --data /path/to/SKAB --out rows.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumers.evaluate import evaluate_skab, format_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "skab"))
    parser.add_argument("--files", type=int, default=None, help="only the first N files")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = evaluate_skab(args.data, limit=args.files, progress=lambda s: print(s, flush=True))
    print(format_table(rows))
    print(f"{time.perf_counter() - started:.0f} s in all")
    if args.out:
        Path(args.out).write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
