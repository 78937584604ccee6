"""Readings/s through ``Detector.process`` (no Kafka) against river, on the same readings.

1,000 assets × 8 channels of the synthetic plant, one reading per asset per step, windows of
32 steps at stride 1 (every reading completes a window), the default model and thresholds.
The detector starts with a model and the group scaler (as after its warm-up, or when started
from a saved artefact) and is run through its grace period first; then the same readings are
timed through:

- ``Detector.process`` in batches of 5,000 readings (a Kafka poll's worth): windowing,
  scaling, batched VAE scoring across assets, the threshold and the alert lifecycle;
- river's ``MinMaxScaler | HalfSpaceTrees``: ``score_one`` + ``learn_one`` per reading (one
  pipeline over all readings; the per-reading cost does not depend on how many there are).

    python benchmarks/bench_detector.py                  # 1,000 assets, 60 timed steps
    python benchmarks/bench_detector.py --assets 200 --steps 100

Prints both rates, their ratio (target ≥ 2), and where the detector's time goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from river import anomaly, preprocessing

from streamvae.detector import Detector, DetectorConfig
from streamvae.model.scorer import Scorer
from streamvae.model.vae import RecurrentVAE
from streamvae.scaling import StandardScaler
from streamvae.testing import SyntheticPlant
from streamvae.threshold import ThresholdBank
from streamvae.types import Reading
from streamvae.windowing import WindowConfig, Windower

PERIOD = 300.0
T0 = 1_699_999_800.0


def plant_readings(n_assets: int, steps: int) -> tuple[list[list[Reading]], StandardScaler]:
    """Readings by step (every asset once per step), and a scaler fitted on all of them."""
    channels = SyntheticPlant().channels
    values = np.stack(
        [SyntheticPlant(seed=i).generate(steps).values for i in range(n_assets)]
    )  # (A, T, C)
    by_step = [
        [
            Reading(
                f"pump-{a:04d}",
                T0 + t * PERIOD,
                dict(zip(channels, values[a, t].tolist(), strict=True)),
            )
            for a in range(n_assets)
        ]
        for t in range(steps)
    ]
    flat = values.reshape(-1, len(channels))
    return by_step, StandardScaler.fit(flat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=60, help="timed steps (default 60)")
    parser.add_argument("--batch", type=int, default=5000, help="readings per process() call")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    channels = SyntheticPlant().channels
    config = DetectorConfig(window=WindowConfig(channels=channels, period_s=PERIOD, window=32))
    warm = config.window.window + config.threshold.grace + 1
    print(
        f"{args.assets} assets × {len(channels)} channels, W = {config.window.window}, stride 1, "
        f"default model; {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    print(f"generating {args.assets * (warm + args.steps):,} readings ...", flush=True)
    by_step, scaler = plant_readings(args.assets, warm + args.steps)
    model = RecurrentVAE(config.vae())
    detector = Detector(config, model, scalers=scaler)

    def feed(steps: list[list[Reading]]) -> int:
        flat = [r for step in steps for r in step]
        for start in range(0, len(flat), args.batch):
            detector.process(flat[start : start + args.batch])
        return len(flat)

    print(f"warming up: {warm} steps (windows fill, thresholds pass their grace)", flush=True)
    feed(by_step[:warm])
    timed = by_step[warm:]
    scored_before = detector.stats.windows_scored
    start = time.perf_counter()
    n = feed(timed)
    detector_s = time.perf_counter() - start
    scored = detector.stats.windows_scored - scored_before
    detector_rate = n / detector_s

    pipeline = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=0)
    xs = [r.values for step in timed for r in step]
    for x in xs[: args.assets]:  # river's own warm-up: a first pass over one step
        pipeline.learn_one(x)
    start = time.perf_counter()
    for x in xs:
        pipeline.score_one(x)
        pipeline.learn_one(x)
    river_s = time.perf_counter() - start
    river_rate = len(xs) / river_s

    # Where the detector's time goes: each stage alone on the same readings.

    windower = Windower(config.window)
    for step in by_step[:warm]:
        windower.push_many(step)
    flat = [r for step in timed for r in step]
    start = time.perf_counter()
    windows = windower.push_many(flat)
    window_s = time.perf_counter() - start
    scorer = Scorer(model, config.scoring)
    thresholds = ThresholdBank.restore(config.threshold, detector.thresholds.snapshot())
    scale_s = score_s = threshold_s = 0.0
    for i in range(0, len(windows), 1024):  # as the detector does it: chunk by chunk
        chunk = windows[i : i + 1024]
        assets = [w.asset for w in chunk]
        t1 = time.perf_counter()
        x = detector._scaled(assets, [w.values for w in chunk])
        t2 = time.perf_counter()
        scores = scorer.score_valid(x).scores.tolist()
        t3 = time.perf_counter()
        thresholds.update_many(assets, scores)
        t4 = time.perf_counter()
        scale_s, score_s, threshold_s = scale_s + t2 - t1, score_s + t3 - t2, threshold_s + t4 - t3

    print()
    print(f"{'':34s} {'readings/s':>12s} {'µs/reading':>11s}")
    print(
        f"{'Detector.process (end to end)':34s} {detector_rate:12,.0f} {1e6 / detector_rate:11.2f}"
    )
    print(
        f"{'river MinMaxScaler | HalfSpaceTrees':34s} {river_rate:12,.0f} {1e6 / river_rate:11.2f}"
    )
    print(f"ratio detector / river: {detector_rate / river_rate:.2f}× (target ≥ 2×)")
    print(
        f"{n:,} readings, {scored:,} windows scored, "
        f"{detector.stats.windows_anomalous:,} anomalous, {detector.stats.alerts_firing} alerts"
    )
    rest = detector_s - window_s - scale_s - score_s - threshold_s
    print(
        f"of the detector's {1e6 / detector_rate:.2f} µs/reading (each stage timed alone on "
        f"the same data): windowing {1e6 * window_s / n:.2f} µs, scaling "
        f"{1e6 * scale_s / n:.2f} µs, VAE scoring {1e6 * score_s / n:.2f} µs, threshold "
        f"{1e6 * threshold_s / n:.2f} µs, the rest (alert lifecycle, glue; negative when the "
        f"stages ran slower alone) {1e6 * rest / n:.2f} µs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
