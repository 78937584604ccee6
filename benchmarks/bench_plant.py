"""Alert quality of the whole Detector on the synthetic plant: false alerts and detections.

A clean fleet (no faults) and a faulty fleet (one asset per fault kind, four faults each,
rotating over the channels) stream through one Detector per variant, list in → list out,
exactly as the service would drive it. Reported per variant:

- false alerts on the clean fleet, and the rate per 100 asset-days of scored data;
  every figure is summed over ``--seeds`` models (model and training seeds 0, 1, ...), since
  one trained model's count is mostly luck;
- faults with a firing alert that starts within the fault (up to one window after it);
- of those, how many name the faulted channel as the top contributor;
- false alerts on the faulty fleet (firing outside every fault) and extra pages (an alert
  firing again within the same fault: flapping).

    python benchmarks/bench_plant.py                     # the default config
    python benchmarks/bench_plant.py --variants all      # the study in docs/detector.md
    python benchmarks/bench_plant.py --clean 10 --steps 12000 --variants base,beta0.25

Every variant trains its own model on the first 20 days (5,760 five-minute steps) of every
asset, then scores the rest. Seeds are fixed: the same command prints the same figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from streamvae.config import BetaSchedule
from streamvae.detector import Detector, DetectorConfig
from streamvae.testing import Fault, SyntheticPlant, interleave, series_readings
from streamvae.types import AlertEvent
from streamvae.windowing import WindowConfig

PERIOD = 300.0
T0 = 1_699_999_800.0
WARMUP = 5760
CHANNELS_BY_KIND = {
    "spike": ("vibration", "flow", "temperature", "pressure"),
    "level_shift": ("pressure", "current", "bearing_temp", "flow"),
    "stuck": ("flow", "temperature", "power", "speed"),
    "noise_burst": ("current", "pressure", "vibration", "speed"),
    "frequency_change": ("vibration", "current", "vibration", "current"),
}


def base_config() -> DetectorConfig:
    channels = SyntheticPlant().channels
    return DetectorConfig(
        window=WindowConfig(channels=channels, period_s=PERIOD, window=32, max_gap_s=3 * PERIOD),
        warmup_span_s=(WARMUP - 1) * PERIOD,
    )


def _model(cfg: DetectorConfig, **kw: object) -> DetectorConfig:
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.vae(), **kw))


def _train(cfg: DetectorConfig, **kw: object) -> DetectorConfig:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **kw))


def _threshold(cfg: DetectorConfig, **kw: object) -> DetectorConfig:
    return dataclasses.replace(cfg, threshold=dataclasses.replace(cfg.threshold, **kw))


def _alert(cfg: DetectorConfig, **kw: object) -> DetectorConfig:
    return dataclasses.replace(cfg, alert=dataclasses.replace(cfg.alert, **kw))


VARIANTS: dict[str, Callable[[DetectorConfig], DetectorConfig]] = {
    "default": lambda c: c,
    "beta1": lambda c: _train(c, beta=BetaSchedule(beta_max=1.0)),
    "beta0.25": lambda c: _train(c, beta=BetaSchedule(beta_max=0.25)),
    "beta0.1": lambda c: _train(c, beta=BetaSchedule(beta_max=0.1)),
    "beta0.05": lambda c: _train(c, beta=BetaSchedule(beta_max=0.05)),
    "beta0.1-cyclical": lambda c: _train(c, beta=BetaSchedule(kind="cyclical", beta_max=0.1)),
    "beta0.1-latent16": lambda c: _model(_train(c, beta=BetaSchedule(beta_max=0.1)), latent_dim=16),
    "beta0.1-hidden64": lambda c: _model(
        _train(c, beta=BetaSchedule(beta_max=0.1)), hidden_size=64
    ),
    "minlv-6": lambda c: _model(c, min_logvar=-6.0),
    "minlv-4": lambda c: _model(c, min_logvar=-4.0),
    "margin0": lambda c: _threshold(c, margin=0.0),
    "margin0.25": lambda c: _threshold(c, margin=0.25),
    "margin0.75": lambda c: _threshold(c, margin=0.75),
    "margin1": lambda c: _threshold(c, margin=1.0),
    "k3m5": lambda c: _alert(c, k=3, m=5),
    "before": lambda c: _alert(  # this project's defaults before the Detector was measured
        _threshold(_train(c, beta=BetaSchedule(beta_max=1.0)), margin=0.0), k=3, m=5
    ),
    "k8m8": lambda c: _alert(c, k=8, m=8),
    "asset-scaling": lambda c: dataclasses.replace(c, scaling="asset"),
}


def fleets(n_clean: int, steps: int) -> tuple[list[list], dict[str, list[Fault]]]:
    streams = []
    faults: dict[str, list[Fault]] = {}
    for i in range(n_clean):
        series = SyntheticPlant(seed=300 + i).generate(steps)
        streams.append(series_readings(series, f"clean-{i:02d}", T0, PERIOD))
    n_faults = max(1, (steps - WARMUP - 600) // 1400)
    for i, (kind, channels) in enumerate(CHANNELS_BY_KIND.items()):
        fl = [
            Fault(kind, channels[j % 4], WARMUP + 600 + j * 1400, 1 if kind == "spike" else 192)
            for j in range(n_faults)
        ]
        faults[f"fault-{kind}"] = fl
        series = SyntheticPlant(seed=400 + i).generate(steps, fl)
        streams.append(series_readings(series, f"fault-{kind}", T0, PERIOD))
    return streams, faults


def judge(alerts: list[AlertEvent], faults: dict[str, list[Fault]]) -> dict[str, int]:
    out = {"clean_fa": 0, "fault_fa": 0, "detected": 0, "top_ok": 0, "refires": 0, "faults": 0}
    for f in faults.values():
        out["faults"] += len(f)
    hit: set[tuple[str, int]] = set()
    for e in alerts:
        if e.status != "firing":
            continue
        if e.asset.startswith("clean"):
            out["clean_fa"] += 1
            continue
        step = (e.starts_at - T0) / PERIOD
        inside = [i for i, f in enumerate(faults[e.asset]) if f.start <= step <= f.end + 32]
        if not inside:
            out["fault_fa"] += 1
        elif (e.asset, inside[0]) in hit:
            out["refires"] += 1
        else:
            hit.add((e.asset, inside[0]))
            out["detected"] += 1
            out["top_ok"] += e.top_channel == faults[e.asset][inside[0]].channel
    return out


def run(cfg: DetectorConfig, streams: list[list], batch: int = 10_000) -> list[AlertEvent]:
    detector = Detector(cfg)
    readings = interleave(*streams)
    alerts: list[AlertEvent] = []
    for start in range(0, len(readings), batch):
        alerts += detector.process(readings[start : start + batch])
    return alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clean", type=int, default=20, help="clean assets (default 20)")
    parser.add_argument("--steps", type=int, default=16_000, help="steps per asset")
    parser.add_argument("--variants", default="default", help="comma list, or 'all'")
    parser.add_argument(
        "--seeds", type=int, default=3, help="model/training seeds per variant (default 3)"
    )
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    streams, faults = fleets(args.clean, args.steps)
    asset_days = args.clean * (args.steps - WARMUP) * PERIOD / 86400
    print(
        f"clean fleet: {args.clean} assets × {args.steps} steps of 5 min "
        f"({asset_days:.0f} asset-days scored after a 20-day warm-up); faulty fleet: "
        f"{len(faults)} assets, {sum(len(f) for f in faults.values())} faults; "
        f"{os.cpu_count()} cores"
    )
    print(
        f"{'variant':16s} {'clean FA':>8s} {'FA/100 asset-days':>18s} {'detected':>9s} "
        f"{'top ch':>7s} {'fault-fleet FA':>14s} {'re-fires':>8s} {'time':>7s}"
    )
    for name in names:
        total: dict[str, int] = {}
        per_seed = []
        start = time.perf_counter()
        for seed in range(args.seeds):
            cfg = VARIANTS[name](base_config())
            cfg = _train(_model(cfg, seed=seed), seed=seed)
            r = judge(run(cfg, streams), faults)
            per_seed.append(r["clean_fa"])
            for key, value in r.items():
                total[key] = total.get(key, 0) + value
        took = time.perf_counter() - start
        spread = "/".join(str(x) for x in per_seed)
        rate = 100 * total["clean_fa"] / asset_days / args.seeds
        print(
            f"{name:16s} {total['clean_fa']:8d} {rate:18.2f} "
            f"{total['detected']:4d}/{total['faults']:<4d} {total['top_ok']:7d} "
            f"{total['fault_fa']:14d} {total['refires']:8d} {took:6.0f} s   "
            f"(clean FA by seed {spread})",
            flush=True,
        )


if __name__ == "__main__":
    main()
