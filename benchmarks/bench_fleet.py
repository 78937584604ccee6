"""The demo fleet through the real Detector, offline: what ``streamvae demo`` will show.

The fleet of ``consumers.simulate.plan_plant`` (9 assets, 3 of each kind, readings every
5 minutes, 7.5 days of event time, missing and late readings included) streams list in → list
out through ``streamvae.Detector(demo_detector_config())``, exactly as the service drives it;
the first model trains once two days are covered, the faults (one of each kind by default)
start after three healthy days. For each of ``--seeds`` seeds (plant, model and training seed
alike) it prints:

- the first training: wall time (s) and epochs run;
- every fault: asset, kind, channel, detected or not, time to detect (minutes of event time
  from the fault's start to the end of the window that fired), the alert's top channel;
- firing alerts outside every fault (a fault's span plus one window after it, on its asset):
  false alerts, also per asset-day of scored event time;

then the totals over all seeds, per fault kind: detected, median time to detect, how often
the top channel is the label's. A fault counts as detected when a firing alert of its asset
fires (the end of its window) within [fault start, fault end + one window]; a spike is one
reading, so it is detected after ``alert.k`` = 16 exceeding windows, ~75 minutes. Targets:
≥ 90 % of faults detected, ≤ 1 false alert per 20 asset-days, first training ≤ 8 s on 2
cores. Scored asset-days count every scored window as one period of its asset.

    python benchmarks/bench_fleet.py                 # 3 seeds, the demo config
    python benchmarks/bench_fleet.py --seeds 5 --faults 12
    python benchmarks/bench_fleet.py --set scaling=group --set train.epochs=150
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import streamvae as sv
from consumers.simulate import FaultLabel, demo_detector_config, plan_plant
from streamvae.plant import FAULT_KINDS

PERIOD = 300.0
T0 = 1_700_006_400.0  # a midnight (UTC): step 0 of the plant's daily cycle


@dataclass(frozen=True, slots=True)
class SeedResult:
    seed: int
    train_s: float
    epochs: int
    val_loss: float
    outcomes: list[sv.FaultOutcome]
    false_alerts: list[sv.AlertSpan]
    refires: int
    asset_days: float


def judge(
    alerts: list[sv.AlertEvent], labels: list[FaultLabel], window_s: float
) -> tuple[list[sv.FaultOutcome], list[sv.AlertSpan], int]:
    """Match alerts to faults as the demo and its report do (``streamvae.evaluation``): an
    alert belongs to a fault of its asset when the window that fired ends within [fault
    start, fault end + one window]."""
    faults = [sv.FaultSpan(x.asset, x.kind, x.channel, x.start_ts, x.end_ts) for x in labels]
    summary = sv.match_alerts(
        faults, sv.alert_spans(e.to_cloudevent() for e in alerts), tolerance_s=window_s
    )
    refires = sum(max(0, o.alerts - 1) for o in summary.outcomes)
    return list(summary.outcomes), list(summary.false_alerts), refires


def run_seed(seed: int, args: argparse.Namespace) -> SeedResult:
    steps = round(args.days * 86_400 / PERIOD)
    plan = plan_plant(
        assets=args.assets,
        steps=steps,
        faults=args.faults,
        period_s=PERIOD,
        start_ts=T0,
        healthy_steps=round(args.healthy_days * 86_400 / PERIOD),
        missing=args.missing,
        late=args.late,
        seed=seed,
    )
    cfg = demo_detector_config(PERIOD)
    cfg = dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.vae(), seed=seed),
        train=dataclasses.replace(cfg.train, seed=seed),
    )
    for item in args.set:
        cfg = override(cfg, item)
    detector = sv.Detector(cfg)
    alerts: list[sv.AlertEvent] = []
    train_s = 0.0
    for start in range(0, len(plan.readings), args.batch):
        was_ready = detector.ready
        call = time.perf_counter()
        alerts += detector.process(plan.readings[start : start + args.batch])
        if detector.ready and not was_ready:
            train_s = time.perf_counter() - call
    alerts += detector.flush().alerts
    window_s = cfg.window.window * PERIOD
    outcomes, false, refires = judge(alerts, plan.labels, window_s)
    fit = detector.last_fit
    return SeedResult(
        seed,
        train_s,
        fit.epochs_run if fit else 0,
        fit.best_val_loss if fit else float("nan"),
        outcomes,
        false,
        refires,
        detector.stats.windows_scored * PERIOD / 86_400,
    )


def override(cfg: sv.DetectorConfig, item: str) -> sv.DetectorConfig:
    """``section.field=value`` (or ``field=value``) applied to a DetectorConfig."""
    path, _, text = item.partition("=")
    value: object = text
    for parse in (int, float):
        try:
            value = parse(text)
            break
        except ValueError:
            continue
    names = path.split(".")
    if len(names) == 1:
        return dataclasses.replace(cfg, **{names[0]: value})
    section = cfg.vae() if names[0] == "model" else getattr(cfg, names[0])
    return dataclasses.replace(cfg, **{names[0]: dataclasses.replace(section, **{names[1]: value})})


def _iso(ts: float) -> str:
    return sv.types.format_event_time(ts)[5:16].replace("T", " ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--assets", type=int, default=9)
    parser.add_argument("--days", type=float, default=7.5, help="days of event time (7.5)")
    parser.add_argument("--healthy-days", type=float, default=3.0, help="before faults (3)")
    parser.add_argument("--faults", type=int, default=6, help="faults per seed (6)")
    parser.add_argument("--missing", type=float, default=0.002)
    parser.add_argument("--late", type=float, default=0.002)
    parser.add_argument("--batch", type=int, default=2000, help="readings per process call")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change the demo config, e.g. train.epochs=100, model.hidden_size=64, "
        "threshold.protect_after=16, scaling=group (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="totals only")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(
        f"{args.assets} assets × {args.days:g} days of 5-minute readings, {args.faults} faults "
        f"after {args.healthy_days:g} healthy days, seeds 0..{args.seeds - 1}; "
        f"{os.cpu_count()} cores"
    )
    results = []
    for seed in range(args.seeds):
        r = run_seed(seed, args)
        results.append(r)
        print(
            f"seed {seed}: first training {r.train_s:.1f} s wall, {r.epochs} epochs "
            f"(val loss {r.val_loss:.3f}); "
            f"{r.asset_days:.1f} asset-days scored; {len(r.false_alerts)} false alerts; "
            f"{r.refires} re-fires within a fault",
            flush=True,
        )
        if args.quiet:
            continue
        for o in r.outcomes:
            x, t = o.fault, o.time_to_detect_s
            ttd = f"{t / 60:6.0f} min" if t is not None else "     —    "
            print(
                f"  {x.asset:<14} {x.kind:<13} {x.channel:<12} {_iso(x.start_ts)} "
                f"{x.duration_s / 3600:4.0f} h  {'DETECTED' if o.detected else 'missed  '} "
                f"ttd {ttd}  top {o.top_channel or '—'}"
            )
        for e in r.false_alerts:
            print(
                f"  false alert {e.asset:<14} {_iso(e.raised_ts)}  score "
                f"{e.score if e.score is not None else float('nan'):.2f} > "
                f"{e.threshold if e.threshold is not None else float('nan'):.2f}  "
                f"top {e.top_channel}"
            )
    outcomes = [o for r in results for o in r.outcomes]
    by_kind: dict[str, list[sv.FaultOutcome]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.fault.kind].append(o)
    print(f"\n{'kind':<13} {'detected':>9} {'median ttd':>11} {'top right':>10}")
    for kind in FAULT_KINDS:
        group = by_kind.get(kind, [])
        if not group:
            continue
        hits = [o for o in group if o.detected]
        ttds = sorted(o.time_to_detect_s / 60 for o in hits if o.time_to_detect_s is not None)
        median = f"{ttds[len(ttds) // 2]:.0f} min" if ttds else "—"
        top = sum(bool(o.names_channel) for o in hits)
        print(f"{kind:<13} {len(hits):>4}/{len(group):<4} {median:>11} {top:>6}/{len(hits)}")
    detected = sum(o.detected for o in outcomes)
    false = sum(len(r.false_alerts) for r in results)
    days = sum(r.asset_days for r in results)
    print(
        f"\ndetected {detected}/{len(outcomes)} faults "
        f"({100 * detected / max(len(outcomes), 1):.0f} %)"
        f"; false alerts {false} in {days:.0f} asset-days scored "
        f"({false / days * 20 if days else 0:.2f} per 20 asset-days, target ≤ 1); "
        f"first training {max(r.train_s for r in results):.1f} s wall at most "
        f"(epochs {', '.join(str(r.epochs) for r in results)}; target ≤ 8 s)"
    )


if __name__ == "__main__":
    main()
