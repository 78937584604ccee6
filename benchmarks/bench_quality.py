"""Detection quality of model variants on the synthetic plant — the protocol of the unit test
``tests/unit/test_detection_quality.py``, for several encoder/decoder choices.

    python benchmarks/bench_quality.py [--seeds 0 1]

Per variant and seed: train on 20 clean days (5760 five-minute readings, windows of 32 every
3 steps), then score a test series per fault kind (10 faults, rotating over channels). Prints
ROC AUC per kind and top-channel accuracy, plus training time. Used to pick the default config
together with bench_scoring.py.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import streamvae as sv
from streamvae.testing import FAULT_KINDS, SyntheticPlant, evaluate_detection, fault_suite

VARIANTS = (("lstm", "mlp"), ("gru", "mlp"), ("lstm", "rnn"), ("gru", "rnn"))
TRAIN_STEPS, WINDOW, STRIDE = 5760, 32, 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument(
        "--variants", default="all", help="comma list of cell/decoder, e.g. lstm/mlp (default all)"
    )
    parser.add_argument("--beta", type=float, default=None, help="β_max (default: TrainConfig's)")
    args = parser.parse_args()
    chosen = [
        v for v in VARIANTS if args.variants == "all" or "/".join(v) in args.variants.split(",")
    ]
    beta = sv.BetaSchedule() if args.beta is None else sv.BetaSchedule(beta_max=args.beta)
    plant = SyntheticPlant(seed=3)
    train = plant.generate(TRAIN_STEPS)
    scaler = sv.StandardScaler.fit(train.values)
    windows = sv.sliding_windows(scaler.transform(train.values), WINDOW, STRIDE)
    suites = {k: fault_suite(plant, k, start_step=TRAIN_STEPS) for k in FAULT_KINDS}
    short = {
        "spike": "spike",
        "level_shift": "shift",
        "stuck": "stuck",
        "noise_burst": "noise",
        "frequency_change": "freq",
    }
    print(f"{len(windows)} training windows; AUC per fault kind / top-channel accuracy\n")
    header = f"{'variant':<10}{'seed':>5}" + "".join(f"{short[k]:>8}" for k in FAULT_KINDS)
    header += f"{'min AUC':>9}{'top-ch':>8}{'train s':>9}"
    print(header)
    print("-" * len(header))
    for cell, decoder in chosen:
        for seed in args.seeds:
            model = sv.RecurrentVAE(
                sv.VAEConfig(
                    channels=plant.channels, window=WINDOW, cell=cell, decoder=decoder, seed=seed
                )
            )
            start = time.perf_counter()
            sv.fit(model, windows, sv.TrainConfig(epochs=args.epochs, seed=seed, beta=beta))
            seconds = time.perf_counter() - start
            scorer = sv.Scorer(model)
            results = []
            for series in suites.values():
                test = sv.sliding_windows(scaler.transform(series.values), WINDOW, 1)
                results.append(evaluate_detection(scorer.score_many(test), series, WINDOW))
            aucs = [r.auc for r in results]
            top = np.mean([r.top_channel_accuracy for r in results])
            print(
                f"{cell + '/' + decoder:<10}{seed:>5}"
                + "".join(f"{a:>8.3f}" for a in aucs)
                + f"{min(aucs):>9.3f}{top:>8.2f}{seconds:>9.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
