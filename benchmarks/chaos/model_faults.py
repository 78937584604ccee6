"""Model faults: corrupt, truncated, pickle-bearing or foreign artefacts where a model is
expected, and a retrain that diverges.

Why: a model artefact travels (registry directory, models topic, ``run.model``) and is loaded by
every instance; DESIGN §3 says artefacts are verified and never unpickled. A bad one must be
refused with an error naming it, the serving model must keep serving with unchanged scores, and
nothing in a pickle may run. Three paths, each on the real thing:

- **registry** (``streamvae/registry.py``): ``ModelRegistry.save`` refuses the bad bytes and no
  version appears; a bad file planted as the latest version fails ``load`` with an
  :class:`~streamvae.ArtefactError` subclass while the previous version still loads, and a
  rollback restores it; ``streamvae inspect`` on the file exits 2 with a message, no traceback;
- **start-up** (``run.model``): ``streamvae run`` on a bad artefact exits 2 before touching Kafka,
  with the refusal in its message and no traceback;
- **models topic** (``kafka.models_topic``, the group's hot-swap path): a real ``streamvae run``
  scores the first half of the plant stream, every bad artefact is published under the group's
  key, then the second half streams. The oracle: every window's score (``kafka.scores_topic``)
  equals a local :class:`~streamvae.Detector` on the original artefact, no swap is counted
  (``streamvae_model_swaps_total`` is 0), ``streamvae_model_info`` still names v0001, each bad
  artefact is logged as skipped, the process stays up and exits 0 on SIGTERM.

Every pickle in the scenario, when unpickled, creates a marker file; the marker must never
exist. The kinds: a plain pickle renamed ``.safetensors``; a ``torch.save`` zip; a safetensors
header claiming 2^62 bytes; a header whose tensor claims terabytes of data; a flipped byte in
the weights (hash mismatch); a truncation; a manifest edited without re-hashing (a forged
version); an empty file; and a valid artefact for other channels (it passes every integrity
check but cannot score this detector's windows). A diverging retrain (learning rate 1e30) goes
through ``streamvae.continual.train_job`` (what the service runs in its trainer process) and
must come back rejected with no artefact.

``trials`` is the number of bad artefacts published (the kinds in turn, each flip and cut at a
seeded random place); the registry and start-up checks run once per kind.

Example::

    result = model_faults.run(Context(bootstrap="127.0.0.1:9092", workdir=Path("/tmp/mf")), 9)
    print(result.row())
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import pickle
import random
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from kafka import KafkaProducer

import streamvae as sv
from benchmarks.chaos import bad_input
from benchmarks.chaos.common import Context, ScenarioResult
from tests.integration import harness as h

__all__ = ["KINDS", "bad_artefact", "run", "run_topic"]


class _Marker:
    """Unpickling this creates ``path``: proof that a loader ran a pickle."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def _header(data: bytes) -> tuple[int, dict[str, Any]]:
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8 : 8 + n])


def _pickle(good: bytes, marker: Path, rng: random.Random) -> bytes:
    return pickle.dumps({"state_dict": {"w": [1.0, 2.0]}, "hook": _Marker(marker)})


def _torch_zip(good: bytes, marker: Path, rng: random.Random) -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(3), "hook": _Marker(marker)}, buf)
    return buf.getvalue()


def _huge_header(good: bytes, marker: Path, rng: random.Random) -> bytes:
    return struct.pack("<Q", 2**62) + good[8:]


def _huge_tensor(good: bytes, marker: Path, rng: random.Random) -> bytes:
    _, header = _header(good)
    name = next(k for k in header if k != "__metadata__")
    header[name] = {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 4 * 2**40]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"\x00" * 64


def _flipped(good: bytes, marker: Path, rng: random.Random) -> bytes:
    n, _ = _header(good)
    data = bytearray(good)
    pos = rng.randrange(8 + n, len(data))  # in the tensor data: only the hash can tell
    data[pos] ^= 1 << rng.randrange(8)
    return bytes(data)


def _truncated(good: bytes, marker: Path, rng: random.Random) -> bytes:
    return good[: rng.randrange(0, len(good) - 1)]


def _forged(good: bytes, marker: Path, rng: random.Random) -> bytes:
    _, header = _header(good)
    meta = header["__metadata__"]
    manifest = json.loads(meta["manifest"])
    manifest["metadata"]["model_version"] = "v0099"
    meta["manifest"] = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    n, _ = _header(good)
    return struct.pack("<Q", len(text)) + text + good[8 + n :]


def _empty(good: bytes, marker: Path, rng: random.Random) -> bytes:
    return b""


def _foreign(good: bytes, marker: Path, rng: random.Random) -> bytes:
    model = sv.RecurrentVAE(sv.VAEConfig(channels=("a", "b"), window=8))
    return sv.dumps_artefact(model, metadata={"model_version": "v0098"})[0]


KINDS: dict[str, tuple[Callable[[bytes, Path, random.Random], bytes], type[Exception]]] = {
    "pickle_renamed": (_pickle, sv.UnsafeArtefactError),
    "torch_save_zip": (_torch_zip, sv.UnsafeArtefactError),
    "header_claims_2^62_bytes": (_huge_header, sv.ArtefactError),
    "tensor_claims_4_TiB": (_huge_tensor, sv.ArtefactError),
    "flipped_bit": (_flipped, sv.ArtefactIntegrityError),
    "truncated": (_truncated, sv.ArtefactError),
    "forged_manifest": (_forged, sv.ArtefactIntegrityError),
    "empty": (_empty, sv.ArtefactError),
}
"""Kind → (maker, the error a loader must raise). ``foreign`` (a valid artefact for other
channels) is loadable by design: only a consumer that knows its window config can refuse it."""


def bad_artefact(kind: str, good: bytes, marker: Path, seed: int = 0) -> bytes:
    """The bytes of one bad artefact of ``kind`` (see :data:`KINDS`, plus ``foreign``)."""
    maker = _foreign if kind == "foreign" else KINDS[kind][0]
    return maker(good, marker, random.Random(seed))


# ---------------------------------------------------------------------------- the paths


def _registry_checks(workdir: Path, good: bytes, marker: Path) -> list[str]:
    problems: list[str] = []
    reg = sv.ModelRegistry(workdir / "registry")
    v1 = reg.save(good)
    expected_hash = reg.load(v1).content_hash
    for kind, (maker, error) in KINDS.items():
        data = maker(good, marker, random.Random(kind))
        before = reg.versions()
        try:
            reg.save(data)
            problems.append(f"registry.save accepted a {kind} artefact")
        except error:
            pass
        except Exception as exc:
            problems.append(f"registry.save of {kind}: {type(exc).__name__}, expected {error}")
        if reg.versions() != before:
            problems.append(f"registry.save of {kind} left a version behind")
        planted = reg.root / f"{reg.next_version()}.safetensors"
        planted.write_bytes(data)  # an operator's copy, or a disk that rotted
        reg.set_latest(planted.stem)
        try:
            reg.load()
            problems.append(f"registry.load returned a {kind} artefact")
        except error as exc:
            if str(planted) not in str(exc):
                problems.append(f"registry.load of {kind}: the error does not name the file")
        except Exception as exc:
            problems.append(f"registry.load of {kind}: {type(exc).__name__}, expected {error}")
        reg.rollback(v1)
        if reg.load().content_hash != expected_hash:
            problems.append(f"after {kind}, the rollback did not restore {v1}")
        planted.unlink()
    return problems


def _cli(args: list[str], timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumers.cli", *args],
        cwd=h.ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _cli_checks(ctx: Context, good: bytes, marker: Path, kinds: list[str]) -> list[str]:
    """``streamvae inspect`` and ``streamvae run`` on bad artefacts: exit 2, no traceback."""
    problems: list[str] = []
    topics = h.Topics("unused-sensors", "unused-alerts", "unused-dlq", "unused-state", "g")
    for kind in kinds:
        path = ctx.workdir / f"bad-{kind}.safetensors"
        path.write_bytes(bad_artefact(kind, good, marker, ctx.seed))
        config = bad_input.service_config(ctx.workdir / f"bad-{kind}.toml", ctx, topics, path)
        for args in (["inspect", str(path)], ["run", "--config", str(config)]):
            p = _cli(args)
            out = p.stdout + p.stderr
            if p.returncode != 2 or "Traceback" in out or "error" not in p.stderr:
                problems.append(
                    f"streamvae {args[0]} on {kind}: exit {p.returncode}, "
                    f"{out.strip().splitlines()[-1:] or ['no output']}"
                )
    return problems


def _divergence_check(good: bytes) -> list[str]:
    """A retrain whose loss blows up (learning rate 1e30) must be rejected, never promoted."""
    cfg = dataclasses.replace(
        h.detector_config(), train=sv.TrainConfig(epochs=3, learning_rate=1e30)
    )
    streams = [
        sv.testing.series_readings(h.plant_series(a), a, h.T0, h.PERIOD)[:80] for a in h.ASSETS
    ]
    detector = sv.Detector.from_artefact(cfg, sv.loads_artefact(good))
    detector.process(sv.testing.interleave(*streams))
    data = detector.training_set()
    if len(data) < 16:
        return [f"divergence: only {len(data)} buffered windows to retrain on"]
    from streamvae.continual import serving_artefact, train_job, training_payload

    result = train_job(training_payload(cfg, data, serving_artefact(detector), "chaos"))
    decision = result["decision"]
    if decision.promote or result["artefact"] is not None:
        return [f"a diverging retrain was promoted: {decision.reason}"]
    if "diverged" not in decision.reason:
        return [f"the diverging retrain was rejected for another reason: {decision.reason}"]
    return []


def _publish(bootstrap: str, topic: str, key: bytes, values: list[bytes]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=8 * 1024 * 1024
    )
    try:
        for f in [producer.send(topic, key=key, value=v) for v in values]:
            f.get(timeout=60)
    finally:
        producer.close(timeout=10)


def _service_checks(
    ctx: Context, model: Path, good: bytes, marker: Path, trials: int, kinds: list[str]
) -> tuple[list[str], dict[str, Any]]:
    problems: list[str] = []
    steps = 100
    half = steps // 2
    topics = bad_input.fresh_topics(ctx, "modelfaults")
    scores_topic = f"scores-{topics.group}"
    models_topic = f"models-{topics.group}"
    config = bad_input.service_config(
        ctx.workdir / "model_faults.toml",
        ctx,
        topics,
        model,
        kafka={"scores_topic": scores_topic, "models_topic": models_topic},
        trainer="off",
    )
    faulty = [
        (kinds[i % len(kinds)], bad_artefact(kinds[i % len(kinds)], good, marker, ctx.seed + i))
        for i in range(trials)
    ]
    # an empty value is a tombstone on the compacted topic: skipped without a word; a foreign
    # model loads (it is a valid artefact), so it is not "unreadable" either
    logged = sum(1 for kind, _ in faulty if kind not in ("empty", "foreign"))
    valid = sv.testing.interleave(
        *[
            sv.testing.series_readings(h.plant_series(a), a, h.T0, h.PERIOD)[
                h.TRAIN_STEPS : h.TRAIN_STEPS + steps
            ]
            for a in h.ASSETS
        ]
    )
    expected = _expected_scores(model, valid)
    first, second = h.plant_messages(0, half), h.plant_messages(half, steps)
    h.produce(ctx.bootstrap, topics.sensors, first)
    log = ctx.workdir / "model_faults.log"
    log.unlink(missing_ok=True)
    service = h.ServiceProcess(config, log).start()
    swaps = 0.0
    info = ""
    try:
        h.wait_for(
            lambda: (
                not service.alive
                or service.metric("streamvae_records_processed_total") >= len(first)
            ),
            120,
            "the first half processed",
        )
        _publish(ctx.bootstrap, models_topic, topics.group.encode(), [v for _, v in faulty])
        h.wait_for(
            lambda: (
                not service.alive or service.log().count("skipping an unreadable model") >= logged
            ),
            60,
            "every bad model logged as skipped",
        )
        h.produce(ctx.bootstrap, topics.sensors, second)
        h.wait_for(
            lambda: (
                not service.alive
                or service.metric("streamvae_records_processed_total") >= len(first) + len(second)
            ),
            120,
            "the second half processed",
        )
        if service.alive:
            h.wait_for(
                lambda: service.metric("streamvae_scores_published_total") >= len(expected),
                30,
                "every score published",
            )
            swaps = service.metric("streamvae_model_swaps_total")
            _, text = service.get("/metrics")
            info = next(
                (ln for ln in text.splitlines() if ln.startswith("streamvae_model_info")), ""
            )
            code = service.terminate(timeout_s=30)
            if code != 0:
                problems.append(f"the service exited {code} on SIGTERM, expected 0")
        else:
            assert service.proc is not None
            problems.append(f"the service died (exit {service.proc.poll()})")
    except (AssertionError, OSError) as exc:  # OSError: /metrics went away with the process
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        service.close()
    text = log.read_text(errors="replace")
    skipped = text.count("skipping an unreadable model")
    if skipped < logged:
        problems.append(f"{skipped} of {logged} bad non-empty models logged as skipped")
    problems += [f"log: {line[:300]}" for line in bad_input.log_problems(text)][:5]
    if swaps:
        problems.append(f"{swaps:.0f} model swaps counted, expected 0")
    # the info is set at the first checkpoint: before it the line carries no labels yet
    if "version=" in info and 'version="v0001"' not in info:
        problems.append(f"the service now names another model: {info}")
    got: dict[tuple[str, float], float] = {}
    for r in h.read_topic(ctx.bootstrap, scores_topic, timeout_s=30):
        doc = json.loads(r.value)
        got[(doc["asset"], float(doc["ts"]))] = doc["score"]
    differ = [
        k
        for k, v in expected.items()
        if got.get(k) is None or not math.isclose(got[k], v, abs_tol=1e-4)
    ]
    if differ or len(got) != len(expected):
        problems.append(
            f"scores: {len(differ)} of {len(expected)} missing or changed, {len(got)} published"
        )
    figures = {
        "published_bad_models": len(faulty),
        "skipped_logged": skipped,
        "windows_scored_unchanged": len(expected) - len(differ),
        "windows_expected": len(expected),
    }
    return problems, figures


def _expected_scores(model: Path, valid: list[sv.Reading]) -> dict[tuple[str, float], float]:
    detector = sv.Detector.from_artefact(h.detector_config(), sv.load_artefact(model))
    out: dict[tuple[str, float], float] = {}
    for w in detector.process_detailed(valid).scored:
        out[(w.window.asset, float(w.window.end_ts))] = round(float(w.score), 4)
    return out


def run_topic(ctx: Context, trials: int, kinds: Sequence[str]) -> ScenarioResult:
    """Only the models-topic path, publishing ``trials`` artefacts of ``kinds`` in turn."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    model = ctx.model if ctx.model is not None else bad_input.quick_model(ctx.workdir)
    marker = ctx.workdir / "PICKLE-RAN"
    marker.unlink(missing_ok=True)
    problems, figures = _service_checks(ctx, model, model.read_bytes(), marker, trials, list(kinds))
    if marker.exists():
        problems.append("a pickle was unpickled: the marker file exists")
    return ScenarioResult(
        f"models topic ({', '.join(kinds)})",
        trials=trials,
        passed=0 if problems else trials,
        ok=not problems,
        result="refused, scores unchanged" if not problems else "; ".join(problems[:5]),
        figures={**figures, "problems": problems},
    )


def run(ctx: Context, trials: int, *, kinds: Sequence[str] | None = None) -> ScenarioResult:
    """Registry, start-up and models-topic checks with ``trials`` published bad artefacts
    (``kinds`` in turn, default every kind of :data:`KINDS` and ``foreign``), plus a diverging
    retrain."""
    kinds = [*KINDS, "foreign"] if kinds is None else list(kinds)
    if trials < 1:
        raise ValueError(f"model_faults.run: trials must be >= 1 artefacts, got {trials}")
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    model = ctx.model if ctx.model is not None else bad_input.quick_model(ctx.workdir)
    good = model.read_bytes()
    marker = ctx.workdir / "PICKLE-RAN"
    marker.unlink(missing_ok=True)
    problems = _registry_checks(ctx.workdir, good, marker)
    # the CLI checks start two processes per kind (seconds each): the full campaign runs them,
    # the short version leaves them to tests/unit/test_cli.py's pickle case
    cli_kinds = list(KINDS) if trials >= len(KINDS) * 2 else []
    problems += _cli_checks(ctx, good, marker, cli_kinds)
    problems += _divergence_check(good)
    service_problems, figures = _service_checks(ctx, model, good, marker, trials, kinds)
    problems += service_problems
    if marker.exists():
        problems.append("a pickle was unpickled: the marker file exists")
    passed = trials if not service_problems else 0
    return ScenarioResult(
        "model faults",
        trials=trials,
        passed=passed,
        ok=not problems,
        result=(
            f"{trials} bad models refused on the topic, {len(KINDS)} kinds refused by the "
            f"registry, {len(cli_kinds) or 'no'} kinds by `inspect`/`run`; scores unchanged "
            f"({figures['windows_scored_unchanged']}/{figures['windows_expected']}), "
            "diverging retrain rejected, no pickle ran"
        )
        if not problems
        else "; ".join(problems[:5]),
        figures={**figures, "problems": problems},
    )
