"""Scoring throughput: windows/s by batch size, for the default config and its variants.

    python benchmarks/bench_scoring.py [--seconds 1.0] [--threads N]

Prints one table, measured in one run on this machine, with the core count. Target (foundation
issue): the default config scores >= 50,000 windows/s at batch >= 512 on a 2-core machine.
The model is untrained: scoring cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

import streamvae as sv

BATCHES = (1, 16, 64, 256, 512, 1024, 4096)
VARIANTS = (
    ("lstm", "mlp"),  # the default
    ("gru", "mlp"),
    ("lstm", "rnn"),
    ("gru", "rnn"),
)
TARGET = 50_000


def rate(scorer: sv.Scorer, windows: np.ndarray, seconds: float) -> float:
    scorer.score_many(windows)  # warm-up
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        scorer.score_many(windows)
        n += len(windows)
    return n / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per cell (default 1 s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--channels", type=int, default=8)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    channels = tuple(f"c{i}" for i in range(args.channels))
    rng = np.random.default_rng(0)
    print(
        f"streamvae {sv.__version__} scoring benchmark: torch {torch.__version__}, "
        f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"window W={args.window} steps, C={args.channels} channels, hidden 32, latent 8, L=1\n")
    header = f"{'encoder/decoder':<16}" + "".join(f"{b:>10}" for b in BATCHES)
    print("windows/s by batch size")
    print(header)
    print("-" * len(header))
    results = {}
    for cell, decoder in VARIANTS:
        cfg = sv.VAEConfig(channels=channels, window=args.window, cell=cell, decoder=decoder)
        scorer = sv.Scorer(sv.RecurrentVAE(cfg))
        row = []
        for batch in BATCHES:
            windows = rng.normal(size=(batch, args.window, args.channels)).astype(np.float32)
            row.append(rate(scorer, windows, args.seconds))
            if sys.stdout.isatty():  # live progress on a terminal, clean lines in a log
                print(f"\r{cell}/{decoder:<11}" + "".join(f"{r:>10,.0f}" for r in row), end="")
                sys.stdout.flush()
        line = f"{cell}/{decoder:<11}" + "".join(f"{r:>10,.0f}" for r in row)
        print(("\r" if sys.stdout.isatty() else "") + line, end="")
        print(" (default)" if (cell, decoder) == ("lstm", "mlp") else "")
        results[(cell, decoder)] = row
    default = results[("lstm", "mlp")]
    best_large = min(r for b, r in zip(BATCHES, default, strict=True) if b >= 512)
    lstm_vs_gru = np.mean([a / b for a, b in zip(default, results[("gru", "mlp")], strict=True)])
    print(
        f"\ndefault (lstm/mlp) at batch >= 512: min {best_large:,.0f} windows/s "
        f"(target {TARGET:,}: {'met' if best_large >= TARGET else 'NOT met'}); "
        f"LSTM/GRU speed ratio (mlp decoder, mean over batch sizes): {lstm_vs_gru:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
