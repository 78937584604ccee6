"""The ``streamvae`` command line.

It lives at the edge (``consumers/``) because it does what the pure core must not: reads
files, prints, and looks at the wall clock for progress and provenance.

Subcommands:
    run          the Kafka service (consumer group in, alert topic out)
    bridge       the alert topic to Alertmanager or PagerDuty
    quickstart   stream a simulated fleet through the Detector, print live alerts
    train        train a model on a CSV file or the synthetic plant and save an artefact
    score        score a CSV file with a saved artefact
    inspect      show what an artefact contains (and verify its hash)
    version      print the version
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import numpy.typing as npt

import streamvae as sv
from streamvae.testing import Fault, SyntheticPlant, interleave, series_readings
from streamvae.training import EpochReport
from streamvae.windowing import window_starts

MINUTES_PER_STEP = 5  # the synthetic plant reads every 5 minutes


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


# ---------------------------------------------------------------------------- helpers


class EpochPrinter:
    """Progress for training: one updating line on a terminal, a line every 10 % otherwise."""

    def __init__(self, out: TextIO, quiet: bool = False) -> None:
        self.out, self.quiet = out, quiet
        self.start = time.monotonic()
        self.tty = out.isatty()

    def __call__(self, e: EpochReport) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        done = int(20 * e.epoch / e.epochs)
        line = (
            f"  [{'#' * done}{'.' * (20 - done)}] epoch {e.epoch:>3}/{e.epochs}  "
            f"train {e.train_loss:9.2f} nats/window  val {e.val_loss:9.2f} nats/window  "
            f"beta {e.beta:.2f}  {elapsed:5.1f} s"
        )
        if self.tty:
            self.out.write("\r" + line)
            if e.epoch == e.epochs:
                self.out.write("\n")
        elif e.epoch == 1 or e.epoch % max(1, e.epochs // 10) == 0 or e.epoch == e.epochs:
            self.out.write(line + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.tty and not self.quiet:
            self.out.write("\n")
            self.out.flush()


def read_csv_channels(
    path: Path, channels: Sequence[str] | None = None, exclude: Sequence[str] = ()
) -> tuple[tuple[str, ...], npt.NDArray[np.float64]]:
    """Read a CSV with one row per time step. Numeric columns become channels unless
    ``channels`` names them; ``exclude`` drops columns such as label columns."""
    from consumers.replay import csv_rows

    if not path.exists():
        raise CLIError(f"no such file: {path}")
    rows = csv_rows(path)
    if len(rows) < 2:
        raise CLIError(f"{path}: needs a header row and at least one data row")
    header, body = rows[0], rows[1:]

    def numeric(col: int) -> bool:
        for row in body[:50]:
            try:
                float(row[col])
            except (ValueError, IndexError):
                return False
        return True

    if channels:
        missing = [c for c in channels if c not in header]
        if missing:
            raise CLIError(f"{path}: column(s) {missing} not in header {header}")
        names = list(channels)
    else:
        names = [h for i, h in enumerate(header) if h not in exclude and numeric(i)]
        if not names:
            raise CLIError(f"{path}: no numeric columns found (header: {header})")
    index = [header.index(n) for n in names]
    values = np.full((len(body), len(names)), np.nan)
    for r, row in enumerate(body):
        for j, col in enumerate(index):
            with contextlib.suppress(ValueError, IndexError):
                values[r, j] = float(row[col])
    return tuple(names), values


def finite_windows(values: npt.NDArray[np.float64], window: int, stride: int) -> Any:
    windows = sv.sliding_windows(values, window, stride)
    keep = np.isfinite(windows).all(axis=(1, 2))
    return windows[keep], int((~keep).sum())


def utc_now() -> str:
    return _iso(time.time())


# ---------------------------------------------------------------------------- commands


def cmd_version(args: argparse.Namespace, out: TextIO) -> int:
    out.write(f"streamvae {sv.__version__}\n")
    return 0


def _configs(args: argparse.Namespace, channels: tuple[str, ...]) -> tuple[Any, Any]:
    vae = sv.VAEConfig(
        channels=channels,
        window=args.window,
        cell=args.cell,
        decoder=args.decoder,
        hidden_size=args.hidden,
        latent_dim=args.latent,
        seed=args.seed,
    )
    train = sv.TrainConfig(epochs=args.epochs, seed=args.seed)
    return vae, train


def cmd_train(args: argparse.Namespace, out: TextIO) -> int:
    if args.follow:
        if not args.config:
            raise CLIError("train --follow needs --config FILE (the serving group's settings)")
        return _serve(args, role="train")
    if not args.out:
        raise CLIError("train needs --out FILE (where the artefact is written)")
    if args.csv:
        channels, values = read_csv_channels(Path(args.csv), args.channels, args.exclude)
        source = {"kind": "csv", "path": str(args.csv), "rows": int(values.shape[0])}
    else:
        plant = SyntheticPlant(seed=args.seed)
        series = plant.generate(args.steps)
        channels, values = plant.channels, series.values
        source = {"kind": "synthetic", "steps": args.steps, "seed": args.seed}
    out.write(f"Data: {values.shape[0]} rows x {len(channels)} channels ({', '.join(channels)})\n")
    scaler = sv.StandardScaler.fit(values)
    windows, dropped = finite_windows(scaler.transform(values), args.window, args.stride)
    out.write(
        f"Windows: {len(windows)} of {args.window} steps every {args.stride} step(s)"
        + (f", {dropped} dropped for missing values" if dropped else "")
        + "\n"
    )
    vae_cfg, train_cfg = _configs(args, channels)
    model = sv.RecurrentVAE(vae_cfg)
    out.write(
        f"Training {vae_cfg.cell.upper()} encoder / {vae_cfg.decoder} decoder, "
        f"hidden {vae_cfg.hidden_size}, latent {vae_cfg.latent_dim}, up to {args.epochs} epochs\n"
    )
    printer = EpochPrinter(out, args.quiet)
    started = time.monotonic()
    report = sv.fit(model, windows, train_cfg, progress=printer)
    seconds = time.monotonic() - started
    digest = sv.save_artefact(
        args.out,
        model,
        train_config=train_cfg,
        scaler=scaler.to_state(),
        metadata={
            "created_at": utc_now(),
            "source": source,
            "fit": report.to_dict(),
            "train_seconds": round(seconds, 2),
            "code_version": sv.__version__,
        },
    )
    out.write(
        f"Best epoch {report.best_epoch}/{report.epochs_run}: validation loss "
        f"{report.best_val_loss:.2f} nats/window ({seconds:.1f} s)\n"
        f"Saved {args.out} (sha256 {digest[:16]}...)\n"
    )
    return 0


def _load(path: str) -> sv.Artefact:
    try:
        return sv.load_artefact(path)
    except sv.ArtefactError as exc:
        raise CLIError(str(exc)) from exc


def cmd_score(args: argparse.Namespace, out: TextIO) -> int:
    art = _load(args.model)
    cfg = art.model.config
    _, values = read_csv_channels(Path(args.csv), list(cfg.channels), ())
    if art.scaler is None:
        raise CLIError(f"{args.model} has no scaler state; retrain it with `streamvae train`")
    scaler = sv.StandardScaler.from_state(art.scaler)
    scaled = scaler.transform(values)
    starts = window_starts(len(scaled), cfg.window, args.stride)
    windows = sv.sliding_windows(scaled, cfg.window, args.stride)
    ok = np.isfinite(windows).all(axis=(1, 2))
    scorer = sv.Scorer(art.model, sv.ScoringConfig(samples=args.samples))
    started = time.monotonic()
    batch = scorer.score_many(windows[ok])
    seconds = time.monotonic() - started
    rows = np.flatnonzero(ok)
    dest = Path(args.out)
    with dest.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["window_start_row", "window_end_row", "score_nats", "top_channel"])
        for k, i in enumerate(rows):
            w.writerow(
                [
                    starts[i],
                    starts[i] + cfg.window - 1,
                    f"{batch.scores[k]:.6f}",
                    batch.top_channel(k),
                ]
            )
    rate = len(batch) / seconds if seconds > 0 else math.inf
    out.write(
        f"Scored {len(batch)} windows in {seconds * 1000:.0f} ms ({rate:,.0f} windows/s); "
        f"{int((~ok).sum())} skipped for missing values\n"
    )
    if len(batch):
        q = np.quantile(batch.scores, [0.5, 0.99])
        top = int(np.argmax(batch.scores))
        out.write(
            f"Score median {q[0]:.3f} nats, p99 {q[1]:.3f} nats, max {batch.scores[top]:.3f} nats "
            f"(rows {starts[rows[top]]}-{starts[rows[top]] + cfg.window - 1}, top channel "
            f"{batch.top_channel(top)})\n"
        )
    out.write(f"Wrote {dest}\n")
    return 0


def cmd_inspect(args: argparse.Namespace, out: TextIO) -> int:
    art = _load(args.path)
    summary = {
        "path": str(args.path),
        "format_version": art.format_version,
        "content_hash": art.content_hash,
        "code_version": art.code_version,
        "model_config": art.model.config.to_dict(),
        "parameters": sum(p.numel() for p in art.model.parameters()),
        "train_config": art.train_config.to_dict() if art.train_config else None,
        "scaler": art.scaler,
        "threshold": art.threshold,
        "metadata": art.metadata,
    }
    out.write(json.dumps(summary, indent=2) + "\n")
    return 0


QUICKSTART_FAULTS: tuple[tuple[str, str, str, int], ...] = (
    # asset, kind, channel, step after the warm-up at which it starts
    ("pump-1", "spike", "vibration", 300),
    ("pump-2", "level_shift", "pressure", 500),
    ("pump-3", "stuck", "temperature", 700),
    ("pump-4", "noise_burst", "current", 900),
    ("pump-5", "frequency_change", "vibration", 1100),
)


def _event_line(e: sv.AlertEvent) -> str:
    when = sv.types.format_event_time(e.ends_at if e.ends_at is not None else e.starts_at)
    top = ", ".join(f"{c} {share:.0%}" for c, share in list(e.contributions.items())[:2])
    if e.status == "firing":
        return (
            f"  {when}  FIRING   {e.asset:<7} {e.severity:<8} score {e.score:7.2f} > "
            f"{e.threshold:.2f} nats  top: {top}"
        )
    seconds = (e.ends_at or e.starts_at) - e.starts_at
    return (
        f"  {when}  RESOLVED {e.asset:<7} after {seconds / 60:5.0f} min ({e.reason}); "
        f"peak {e.score:.2f} nats"
    )


def cmd_quickstart(args: argparse.Namespace, out: TextIO) -> int:
    """The whole core end to end, list in → list out: a simulated fleet streams through the
    Detector (warm-up, first training, scoring, thresholds, alert lifecycle), alerts are
    printed as they fire, and the model is exported, reloaded and checked."""
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    period, warmup_steps, test_steps = 300.0, 5760, args.days * 288
    t0 = 1_699_999_800.0
    faults = {
        asset: Fault(kind, channel, warmup_steps + at, 1 if kind == "spike" else 192)  # type: ignore[arg-type]
        for asset, kind, channel, at in QUICKSTART_FAULTS
        if warmup_steps + at + 192 < warmup_steps + test_steps
    }
    assets = [a for a, *_ in QUICKSTART_FAULTS] + ["pump-6"]
    streams = []
    for i, asset in enumerate(assets):
        fault = faults.get(asset)
        series = SyntheticPlant(seed=args.seed + i).generate(
            warmup_steps + test_steps, [fault] if fault else []
        )
        streams.append(series_readings(series, asset, t0, period))
    readings = interleave(*streams)
    channels = SyntheticPlant().channels
    out.write(
        f"[1/4] Simulating {len(assets)} pumps × {len(channels)} coupled channels at 5-minute "
        f"steps: 20 days of normal operation, then {args.days} days with {len(faults)} injected "
        f"faults ({len(readings):,} readings; pump-6 stays healthy)\n"
    )
    config = sv.DetectorConfig(
        window=sv.WindowConfig(channels=channels, period_s=period, window=32, max_gap_s=900),
        train=sv.TrainConfig(epochs=args.epochs, seed=args.seed),
        alert=sv.AlertConfig(site="quickstart"),
        warmup_span_s=(warmup_steps - 1) * period,
    )
    printer = EpochPrinter(out)
    detector = sv.Detector(config, progress=printer)
    out.write(
        "[2/4] Streaming through the Detector in batches of 2,000 readings; the first model "
        "trains once 20 days are covered\n"
    )
    alerts: list[sv.AlertEvent] = []
    trained_note = False
    started = time.monotonic()
    training_s = 0.0
    for start in range(0, len(readings), 2000):
        call = time.monotonic()
        for event in detector.process(readings[start : start + 2000]):
            alerts.append(event)
            out.write(_event_line(event) + "\n")
        if detector.ready and not trained_note:
            training_s = time.monotonic() - call
            trained_note = True
            printer.finish()
            fit = detector.last_fit
            out.write(
                f"  model {detector.model_version} trained on "
                f"{fit.n_train if fit else 0} windows; scoring from now on "
                f"(each pump's first {config.threshold.grace} windows calibrate its "
                f"threshold)\n[3/4] Live alerts (event time, from the readings)\n"
            )
    elapsed = time.monotonic() - started
    streaming = max(elapsed - training_s, 1e-9)
    out.write(
        f"  {len(readings):,} readings in {elapsed:.1f} s: {training_s:.1f} s training the "
        f"first model, {streaming:.1f} s streaming ({len(readings) / streaming:,.0f} "
        f"readings/s); {detector.stats.windows_scored:,} windows scored\n"
    )

    data, digest = detector.export_model(metadata={"created_at": utc_now(), "source": "quickstart"})
    path = workdir / "model.safetensors"
    path.write_bytes(data)
    clone = sv.Detector.from_artefact(config, sv.load_artefact(path))
    newcomer = series_readings(
        SyntheticPlant(seed=args.seed + 99).generate(120),
        "pump-new",
        t0 + (warmup_steps + test_steps) * period,
        period,
    )
    same = [w.score for w in clone.process_detailed(newcomer).scored] == [
        w.score for w in detector.process_detailed(newcomer).scored
    ]
    out.write(
        f"[4/4] Exported the model and reloaded it: a new pump scores identically with the "
        f"reloaded model: {'yes' if same else 'NO'}\n  Injected faults and the alerts they raised\n"
    )
    header = f"  {'asset':<8}{'fault':<18}{'channel':<13}{'alert':<7}{'delay':>9}  top channel\n"
    out.write(header)
    found = 0
    for asset, fault in faults.items():
        begin, end = t0 + fault.start * period, t0 + (fault.end + 32) * period
        hits = [
            e
            for e in alerts
            if e.asset == asset and e.status == "firing" and begin <= e.starts_at <= end
        ]
        if hits:
            found += 1
            e = hits[0]
            delay = (e.window_end - begin) / 60
            out.write(
                f"  {asset:<8}{fault.kind:<18}{fault.channel:<13}{'yes':<7}{delay:>5.0f} min  "
                f"{e.top_channel}"
                f"{'' if e.top_channel == fault.channel else ' (not the faulted one)'}\n"
            )
        else:
            out.write(f"  {asset:<8}{fault.kind:<18}{fault.channel:<13}{'no':<7}{'-':>9}  -\n")
    false = [
        e
        for e in alerts
        if e.status == "firing"
        and not (
            e.asset in faults
            and t0 + faults[e.asset].start * period
            <= e.starts_at
            <= t0 + (faults[e.asset].end + 32) * period
        )
    ]
    out.write(
        f"  {found}/{len(faults)} faults raised an alert; {len(false)} false alert(s) in "
        f"{len(assets) * args.days} pump-days\n"
        f"Saved {path} ({path.stat().st_size / 1024:.0f} KiB, sha256 {digest[:12]}..., model "
        f"{detector.model_version} with its scalers). Next: `streamvae inspect {path}`.\n"
    )
    return 0 if found == len(faults) and same else 1


def cmd_models(args: argparse.Namespace, out: TextIO) -> int:
    """The model registry: list versions, show one, roll back the serving pointer, export."""
    root = args.registry or os.environ.get("STREAMVAE_REGISTRY")
    if not root:
        raise CLIError("no registry: pass --registry DIR or set STREAMVAE_REGISTRY")
    if not os.path.isdir(root):
        raise CLIError(f"no registry at {root!r} (a directory of v0001.safetensors, …)")
    reg = sv.ModelRegistry(root)

    if args.action == "list":
        infos = reg.list()
        if not infos:
            out.write(f"{root}: no versions yet\n")
            return 0
        out.write(f"{'':2}{'version':<9}{'created (UTC)':<22}{'size':>9}  reason / gate\n")
        for i in infos:
            gate = i.metadata.get("gate") or {}
            why = str(i.metadata.get("reason", "-"))
            if gate:
                why += f" / {gate.get('reason', '')}"
            mark = "* " if i.latest else "  "
            out.write(
                f"{mark}{i.version:<9}{_iso(i.created):<22}{i.size / 1024:>6.0f} KiB  {why}\n"
            )
        out.write("(* = latest: what services start from and swap to)\n")
        return 0
    if args.action == "show":
        version = args.version or reg.latest()
        if version is None:
            raise CLIError(f"{root}: no versions yet")
        i = reg.info(version)
        doc = {
            "version": i.version,
            "latest": i.latest,
            "created": _iso(i.created),
            "content_hash": i.content_hash,
            "size_bytes": i.size,
            "metadata": dict(i.metadata),
        }
        out.write(json.dumps(doc, indent=2, default=str) + "\n")
        return 0
    if args.action == "rollback":
        before = reg.latest()
        to = reg.rollback(args.version)
        out.write(f"latest: {before} -> {to}\n")
        return 0
    # export
    if not args.version or not args.dest:
        raise CLIError(
            "models export needs VERSION and DEST: streamvae models export v0003 m.safetensors"
        )
    target = reg.export(args.version, args.dest)
    out.write(f"exported {args.version} to {target}\n")
    return 0


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    """A CSV into a sensor topic, paced or as fast as possible."""
    from consumers.replay import ReplayError, csv_readings

    bootstrap = _bootstrap(args)
    try:
        data = csv_readings(
            Path(args.file),
            asset=args.asset,
            asset_column=args.asset_column,
            ts_column=args.ts_column,
            period_s=args.period_s,
            channels=args.channels,
            exclude=args.exclude,
        )
    except ReplayError as exc:
        raise CLIError(str(exc)) from None
    if not data.readings:
        raise CLIError(f"{args.file}: no row with a numeric value to replay")
    first, last = data.readings[0].ts, data.readings[-1].ts
    out.write(
        f"{args.file}: {len(data.readings):,} readings of {len(data.assets)} asset(s) "
        f"({', '.join(data.assets[:5])}{', …' if len(data.assets) > 5 else ''}), channels "
        f"{', '.join(data.channels)}; event time {_iso(first)} .. {_iso(last)} "
        f"({(last - first) / 3600:.1f} h); {data.skipped_rows} empty row(s) skipped\n"
    )
    seconds = _produce(bootstrap, args.topic, data.readings, args.speed, out)
    out.write(f"Replayed {len(data.readings):,} readings to {args.topic} in {seconds:.1f} s.\n")
    return 0


def cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    """A simulated fleet with labelled faults into a sensor topic (any broker)."""
    from consumers.simulate import plan_plant, write_labels

    bootstrap = _bootstrap(args)
    steps = round(args.days * 86_400 / args.period_s)
    start = args.start_ts if args.start_ts is not None else time.time() - steps * args.period_s
    try:
        plan = plan_plant(
            assets=args.assets,
            steps=steps,
            faults=args.faults,
            period_s=args.period_s,
            start_ts=start,
            healthy_steps=round(args.healthy_days * 86_400 / args.period_s),
            missing=args.missing,
            late=args.late,
            seed=args.seed,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    labels = write_labels(
        args.labels,
        plan,
        topic=args.topic,
        assets=args.assets,
        period_s=args.period_s,
        start_ts=start,
        seed=args.seed,
    )
    out.write(
        f"Simulating {args.assets} assets (pumps, compressors, motors) x {args.days:g} days "
        f"({len(plan.readings):,} readings, "
        f"{plan.missing} missing, {plan.late} late) with {len(plan.labels)} faults; labels in "
        f"{labels}\n"
    )
    for x in plan.labels:
        out.write(
            f"  {_iso(x.start_ts)}  {x.asset:<14} {x.kind:<13} {x.channel:<12} "
            f"{x.duration_s / 3600:.1f} h\n"
        )
    seconds = _produce(bootstrap, args.topic, plan.readings, args.speed, out)
    out.write(f"Sent {len(plan.readings):,} readings to {args.topic} in {seconds:.1f} s.\n")
    return 0


def _duration(text: str) -> float:
    """``30s``, ``3m``, ``1h`` or plain seconds, as seconds."""
    raw = text.strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(raw[-1:])
    number = raw[:-1] if scale is not None else raw
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use 30s, 3m, 1h or seconds"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be positive")
    return seconds


def cmd_evaluate(args: argparse.Namespace, out: TextIO) -> int:
    """SKAB through the streaming path: every fault file, pooled outlier and NAB scores."""
    from consumers.evaluate import evaluate_skab, format_table

    data = args.data or os.environ.get("STREAMVAE_SKAB", "")
    if not data:
        raise CLIError("no SKAB data: pass --data PATH (the folder with valve1/, valve2/, other/)")

    def progress(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    out.write(f"SKAB from {data}: train on each file's first 400 rows, stream the rest\n")
    plots = Path(args.plots) if args.plots else None
    rows = evaluate_skab(data, limit=args.files, progress=progress, plots=plots)
    table = format_table(rows)
    out.write(table + "\n")
    if args.out:
        target = Path(args.out)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            json.dumps([dataclasses.asdict(r) for r in rows], indent=2, ensure_ascii=False) + "\n"
        )
        out.write(f"Wrote {target}\n")
    return 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """The embedded default: broker, plant, service, live view and report, in one command."""
    from consumers.demo import DemoError, DemoOptions, run_demo

    try:
        opts = DemoOptions(
            duration_s=args.duration,
            bootstrap=args.bootstrap,
            assets=args.assets,
            days=args.days,
            healthy_days=args.healthy_days,
            faults=args.faults,
            seed=args.seed,
            report_dir=Path(args.report_dir),
            workers=args.workers,
            live=args.live,
        )
        return run_demo(opts, out).exit_code
    except DemoError as exc:
        raise CLIError(str(exc)) from None


def _bootstrap(args: argparse.Namespace) -> str:
    bootstrap = str(args.bootstrap or os.environ.get("STREAMVAE_KAFKA_BOOTSTRAP_SERVERS", ""))
    if not bootstrap:
        raise CLIError(
            "no broker: pass --bootstrap HOST:PORT or set STREAMVAE_KAFKA_BOOTSTRAP_SERVERS"
        )
    return bootstrap


def _produce(
    bootstrap: str, topic: str, readings: Sequence[sv.Reading], speed: float, out: TextIO
) -> float:
    """Send readings to a topic (idempotent, acks=all), paced; progress lines; seconds."""
    from kafka import KafkaProducer

    from consumers.replay import replay

    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5, enable_idempotence=True
    )
    failures: list[BaseException] = []

    def send(key: bytes, value: bytes) -> None:
        producer.send(topic, key=key, value=value).add_errback(failures.append)

    def progress(sent: int, total: int, seconds: float) -> None:
        rate = sent / seconds if seconds > 0 else 0.0
        out.write(
            f"  sent {sent:,}/{total:,} readings ({100 * sent / total:.0f} %), "
            f"{rate:,.0f} readings/s\n"
        )
        out.flush()

    try:
        seconds = replay(readings, send, speed=speed, progress=progress)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    if failures:
        raise CLIError(f"the broker refused {len(failures)} reading(s): {failures[0]!r}")
    return seconds


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    """The Kafka service: blocks until SIGTERM/SIGINT, then shuts down cleanly (exit 0)."""
    return _serve(args, role="serve")


def cmd_bridge(args: argparse.Namespace, out: TextIO) -> int:
    """The alert topic to Alertmanager or PagerDuty (consumers/bridge.py); blocks until
    SIGTERM/SIGINT, then finishes the request in flight, commits and exits 0."""
    from consumers.bridge import BridgeError, run_cli

    try:
        return run_cli(args)
    except BridgeError as exc:
        raise CLIError(str(exc)) from None


def _serve(args: argparse.Namespace, role: Literal["serve", "train"]) -> int:
    import faulthandler
    import signal

    from consumers.logs import setup_logging
    from consumers.service import Service
    from consumers.settings import Settings

    settings = Settings.load(args.config)
    log = setup_logging(args.log_format or settings.run.log_format, settings.run.log_level)
    log.info("starting streamvae %s", sv.__version__, extra={"settings": settings.redacted()})
    service = Service(settings, role=role)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    return service.run()


# ---------------------------------------------------------------------------- parser


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--window", type=int, default=32, help="window length in steps (default 32)")
    p.add_argument("--stride", type=int, default=1, help="steps between windows (default 1)")
    p.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    p.add_argument("--decoder", choices=["mlp", "rnn"], default="mlp")
    p.add_argument("--hidden", type=int, default=32, help="recurrent hidden size (default 32)")
    p.add_argument("--latent", type=int, default=8, help="latent dimensions (default 8)")
    p.add_argument("--epochs", type=int, default=150, help="maximum epochs (default 150)")
    p.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamvae",
        description="Streaming anomaly detection for industrial sensor data (recurrent VAE).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=cmd_version)

    p = sub.add_parser(
        "quickstart",
        help="stream a simulated fleet through the Detector and print live alerts (~40 s)",
    )
    p.add_argument("--workdir", default="streamvae-quickstart", help="where files are written")
    p.add_argument("--days", type=int, default=6, help="days after the warm-up (default 6)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser(
        "run", help="the Kafka service: consume readings, publish alerts (blocks; SIGTERM stops)"
    )
    p.add_argument(
        "--config",
        default=None,
        help="TOML settings file (every setting can also come from STREAMVAE_* variables)",
    )
    p.add_argument("--log-format", choices=["text", "json"], default=None)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "bridge",
        help="forward the alert topic to Alertmanager or PagerDuty (blocks; SIGTERM stops)",
        description="Consume the service's alert topic (kafka.alert_topic of the same settings) "
        "in its own consumer group and forward every firing and resolved alert; offsets are "
        "committed only once the receiver accepted. docs/bridges.md has the details.",
    )
    receivers = p.add_subparsers(dest="receiver", required=True, metavar="RECEIVER")
    am = receivers.add_parser(
        "alertmanager",
        help="POST /api/v2/alerts; firing alerts are re-sent every --resend-interval",
    )
    am.add_argument("--url", required=True, help="Alertmanager's base URL, e.g. http://am:9093")
    am.add_argument(
        "--resend-interval",
        type=_duration,
        default=60.0,
        help="re-send every firing alert this often (default 60s; keep it well below "
        "Alertmanager's resolve_timeout, 5m by default)",
    )
    am.add_argument(
        "--generator-url",
        default=None,
        help="a link for each alert, {asset} and {site} filled in (e.g. a dashboard)",
    )
    pd = receivers.add_parser("pagerduty", help="PagerDuty Events API v2: trigger and resolve")
    pd.add_argument(
        "--routing-key-file",
        required=True,
        help="a file holding the 32-character integration (routing) key; never logged",
    )
    pd.add_argument(
        "--url",
        default=None,
        help="the Events API base URL (default: PagerDuty's public events endpoint)",
    )
    pd.add_argument("--client-url", default=None, help="a link shown on the incident")
    for r in (am, pd):
        r.add_argument("--config", default=None, help="the service's TOML settings file")
        r.add_argument(
            "--group",
            default=None,
            help="the consumer group (default <kafka.group_id>.bridge.<receiver>)",
        )
        r.add_argument("--log-format", choices=["text", "json"], default=None)
        r.add_argument(
            "--retry-initial",
            type=_duration,
            default=0.5,
            help="first retry delay after a failed delivery (default 0.5s; doubles each time)",
        )
        r.add_argument(
            "--retry-max", type=_duration, default=30.0, help="retry delay cap (default 30s)"
        )
        r.add_argument(
            "--timeout", type=_duration, default=10.0, help="HTTP request timeout (default 10s)"
        )
        r.add_argument(
            "--progress-interval",
            type=_duration,
            default=60.0,
            help="seconds between progress lines (default 60s)",
        )
        r.add_argument(
            "--metrics-port",
            type=int,
            default=-1,
            help="serve Prometheus metrics (streamvae_bridge_*) here: 0 any free port, "
            "-1 off (default)",
        )
        r.add_argument(
            "--metrics-host", default="127.0.0.1", help="address for --metrics-port (127.0.0.1)"
        )
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("train", help="train a model and save an artefact")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", help="CSV file, one row per time step, one column per channel")
    src.add_argument("--synthetic", action="store_true", help="train on the simulated plant")
    src.add_argument(
        "--follow",
        action="store_true",
        help="the group's trainer as its own process: consume the sensor topics (group "
        "<group_id>.trainer), retrain and publish models for the serving instances (set "
        'run.trainer = "off" there); blocks until SIGTERM',
    )
    p.add_argument("--config", default=None, help="--follow: the serving group's settings")
    p.add_argument("--log-format", choices=["text", "json"], default=None)
    p.add_argument("--steps", type=int, default=5760, help="synthetic steps (default 5760)")
    p.add_argument(
        "--channels",
        type=lambda s: [c for c in s.split(",") if c],
        help="comma-separated channel columns (default: every numeric column)",
    )
    p.add_argument(
        "--exclude",
        type=lambda s: [c for c in s.split(",") if c],
        default=[],
        help="comma-separated columns to ignore, e.g. label columns",
    )
    p.add_argument("--out", default=None, help="artefact path, e.g. model.safetensors")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    _model_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="score a CSV with a saved artefact")
    p.add_argument("--model", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--samples", type=int, default=1, help="posterior samples L (default 1)")
    p.add_argument("--out", default="scores.csv")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "evaluate",
        help="detection quality on a public benchmark through the streaming path",
        description="SKAB: for each fault file, train on the first 400 rows, stream the rest "
        "through the Detector, and score the per-row predictions (outlier F1/FAR/MAR pooled, "
        "NAB changepoint scores) beside the published leaderboard.",
    )
    p.add_argument("benchmark", choices=["skab"])
    p.add_argument("--data", default=None, help="the SKAB folder (default $STREAMVAE_SKAB)")
    p.add_argument("--files", type=int, default=None, help="only the first N files")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    p.add_argument("--plots", default=None, help="write one PNG per file into this folder")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "demo",
        help="the whole product live: embedded broker, simulated plant, service, alerts, report",
        description="Start an embedded Kafka-compatible broker (unless --bootstrap), stream a "
        "simulated plant of pumps, compressors and motors with injected faults through the "
        "detector service, show readings, model and alerts live, and write a report to "
        "--report-dir. Stops after --duration, once the plant is done, or on Ctrl-C.",
    )
    p.add_argument(
        "--duration",
        type=_duration,
        default=180.0,
        help="wall time: 30s, 3m, 180 (seconds; default 3m)",
    )
    p.add_argument(
        "--bootstrap",
        default=None,
        help="HOST:PORT[,…] of your own cluster (default: an embedded broker); topics and "
        "group get a fresh run id",
    )
    p.add_argument("--assets", type=int, default=9, help="assets (default 9: 3 of each kind)")
    p.add_argument("--days", type=float, default=8.0, help="days of event time (default 8)")
    p.add_argument(
        "--healthy-days", type=float, default=3.0, help="days before the first fault (default 3)"
    )
    p.add_argument("--faults", type=int, default=6, help="injected faults (default 6)")
    p.add_argument("--workers", type=int, default=1, help="scoring processes (default 1)")
    p.add_argument(
        "--report-dir",
        default="streamvae-report",
        help="where the report goes (default ./streamvae-report)",
    )
    p.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the live terminal view (default: on when stdout is a terminal)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "simulate",
        help="a simulated fleet (pumps, compressors, motors) with labelled faults into a topic",
    )
    p.add_argument("--topic", required=True, help="the sensor topic to produce to")
    p.add_argument(
        "--bootstrap", default=None, help="HOST:PORT[,…] ($STREAMVAE_KAFKA_BOOTSTRAP_SERVERS)"
    )
    p.add_argument(
        "--assets", type=int, default=6, help="assets, cycling pump, compressor, motor (default 6)"
    )
    p.add_argument("--days", type=float, default=14.0, help="days of event time (default 14)")
    p.add_argument(
        "--healthy-days",
        type=float,
        default=7.0,
        help="days before the first fault: the warm-up learns normal there (default 7)",
    )
    p.add_argument("--faults", type=int, default=6, help="injected faults (default 6)")
    p.add_argument("--period-s", type=float, default=300.0, help="seconds between readings (300)")
    p.add_argument(
        "--start-ts",
        type=float,
        default=None,
        help="event time of the first reading (default: so the last one is now)",
    )
    p.add_argument("--missing", type=float, default=0.002, help="share of readings lost (0.002)")
    p.add_argument("--late", type=float, default=0.002, help="share arriving late (0.002)")
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="× event time (0 = as fast as possible, the default)",
    )
    p.add_argument("--labels", default="streamvae-labels.json", help="where the labels go")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("replay", help="replay a CSV (one row per time step) into a sensor topic")
    p.add_argument("file", help="CSV: one column per channel, optional asset and time columns")
    p.add_argument("--topic", required=True, help="the sensor topic to produce to")
    p.add_argument(
        "--bootstrap", default=None, help="HOST:PORT[,…] ($STREAMVAE_KAFKA_BOOTSTRAP_SERVERS)"
    )
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="× event time (1 = real time, 60 = a minute a second); 0 = as fast as possible",
    )
    p.add_argument("--asset", default=None, help="the asset name (default: the file name)")
    p.add_argument("--asset-column", default=None, help="a column naming each row's asset")
    p.add_argument(
        "--ts-column",
        default=None,
        help="the time column (default: timestamp/datetime/time/ts if present)",
    )
    p.add_argument(
        "--period-s",
        type=float,
        default=60.0,
        help="seconds between rows without a time column (default 60)",
    )
    p.add_argument(
        "--channels",
        type=lambda s: [c for c in s.split(",") if c],
        default=None,
        help="comma-separated channel columns (default: every numeric column)",
    )
    p.add_argument(
        "--exclude",
        type=lambda s: [c for c in s.split(",") if c],
        default=[],
        help="comma-separated columns to leave out, e.g. label columns",
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser(
        "models", help="the model registry: list | show [V] | rollback [V] | export V DEST"
    )
    p.add_argument("action", choices=["list", "show", "rollback", "export"])
    p.add_argument("version", nargs="?", default=None, help="a version, e.g. v0003")
    p.add_argument("dest", nargs="?", default=None, help="export: a file or directory")
    p.add_argument("--registry", default=None, help="the registry directory ($STREAMVAE_REGISTRY)")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("inspect", help="show an artefact's manifest and verify its hash")
    p.add_argument("path")
    p.set_defaults(func=cmd_inspect)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args, stream)
    except (CLIError, sv.StreamVAEError) as exc:
        sys.stderr.write(f"streamvae {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
