"""The reliability campaign (issue 9): every chaos scenario against real processes, one table.

Each scenario (a module of ``benchmarks/chaos/`` with ``run(ctx, trials) -> ScenarioResult``)
hurts a real ``streamvae run`` — SIGKILLs, SIGTERMs and a rolling restart, network faults
through a proxy, a broker restart, a 10× burst, hostile input, fuzzed decoders, broken model
artefacts, leaked secrets — and judges the outcome with an oracle (the simulator's labelled
faults, the deterministic alert ids, lag, metrics), never with a timing. The table says, per
scenario, how many trials passed; the exit status is 1 when any scenario failed.

    python benchmarks/reliability.py                  # full trial counts (about 10 min here)
    python benchmarks/reliability.py --short          # the default suite's sizes
    python benchmarks/reliability.py --only crash network --json reliability.json

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else an embedded Tansu broker on loopback
(the network and broker-restart scenarios always start their own behind a proxy). The plant's
model is trained once into ``--workdir`` (a few minutes) and reused by later runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chaos.common import Context, ScenarioResult
from consumers.broker import EmbeddedBroker

# module → (full kwargs, short kwargs) for modules that do not say (FULL / SHORT dicts win)
SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "crash": ({"trials": 20}, {"trials": 2}),
    "graceful": ({"trials": 5}, {"trials": 1, "redeploy": False}),
    "network": ({"trials": 3, "cut_s": 30.0}, {"trials": 1, "cut_s": 6.0}),
    "broker_restart": ({"trials": 2}, {"trials": 1}),
    "overload": ({"trials": 2}, {"trials": 1}),
    # the other half of the campaign (their own modules; trial units are theirs)
    "bad_input": ({"trials": 100_000}, {"trials": 2000}),  # hostile payloads (issue: ≥ 100k)
    "fuzz": ({"trials": 600}, {"trials": 5}),  # seconds of fuzzing (issue: ≥ 10 min)
    "model_faults": ({"trials": 45}, {"trials": 9}),  # broken artefacts (5 of each kind)
    "secrets": ({"trials": 12}, {"trials": 4}),  # processes (12 = every case)
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the table: a scenario's result, or why there is none.

    Example::

        Row("fuzz", "not built", None, 0.0)
    """

    module: str
    status: str  # "PASS", "FAIL", "not built", "error"
    result: ScenarioResult | None
    seconds: float
    detail: str = ""

    def line(self) -> str:
        if self.result is None:
            return f"{self.module:<24} {'-':>9} {self.status:<9} {self.detail}"
        r = self.result
        return (
            f"{r.scenario:<24} {r.passed:>4}/{r.trials:<4} {self.status:<9} "
            f"{self.seconds:>5.0f} s  {r.result}"
        )


def _load(name: str) -> ModuleType | str:
    try:
        return importlib.import_module(f"benchmarks.chaos.{name}")
    except ImportError as exc:
        return f"not built ({exc})"


def _sizes(name: str, module: ModuleType, short: bool) -> dict[str, Any]:
    full, small = SCENARIOS[name]
    own = getattr(module, "SHORT" if short else "FULL", None)
    return dict(own) if isinstance(own, dict) else dict(small if short else full)


@contextlib.contextmanager
def _broker() -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        print(f"broker: {configured} (KAFKA_BOOTSTRAP_SERVERS)", flush=True)
        yield configured
        return
    with EmbeddedBroker() as broker:
        print(f"broker: embedded Tansu on {broker.bootstrap_servers} (in memory)", flush=True)
        yield broker.bootstrap_servers


def run_campaign(
    names: Sequence[str], short: bool, workdir: Path, seed: int, model: Path | None
) -> list[Row]:
    rows: list[Row] = []
    with _broker() as bootstrap:
        for i, name in enumerate(names, 1):
            module = _load(name)
            if isinstance(module, str):
                print(f"[{i}/{len(names)}] {name}: {module}", flush=True)
                rows.append(Row(name, "not built", None, 0.0, module))
                continue
            kwargs = _sizes(name, module, short)
            sizes = ", ".join(f"{k}={v}" for k, v in kwargs.items())
            print(f"[{i}/{len(names)}] {name} ({sizes}) ...", flush=True)
            ctx = Context(bootstrap=bootstrap, workdir=workdir / name, seed=seed, model=model)
            started = time.monotonic()
            try:
                result = module.run(ctx, **kwargs)
            except Exception as exc:
                took = time.monotonic() - started
                traceback.print_exc()
                rows.append(Row(name, "error", None, took, f"{type(exc).__name__}: {exc}"))
                print(f"    {name}: error after {took:.0f} s: {exc}", flush=True)
                continue
            took = time.monotonic() - started
            row = Row(name, "PASS" if result.ok else "FAIL", result, took)
            rows.append(row)
            print(f"    {row.line()}", flush=True)
    return rows


def _shared_model(workdir: Path) -> Path:
    from benchmarks.chaos.common import model_of

    return model_of(Context(bootstrap="unused:0", workdir=workdir))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the default suite's trial counts")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=list(SCENARIOS))
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the rows as JSON")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "streamvae-reliability",
        help="scratch space and the cached plant model (default: %(default)s)",
    )
    parser.add_argument("--model", type=Path, help="a plant model artefact to use (no training)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random kill points")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every scenario's finally stops its services and brokers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = args.only or list(SCENARIOS)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        args.model = _shared_model(args.workdir)
    started = time.monotonic()
    rows = run_campaign(names, args.short, args.workdir, args.seed, args.model)
    took = time.monotonic() - started
    print()
    print(f"{'scenario':<24} {'trials':>9} {'result':<9} {'time':>7}  oracle")
    for row in rows:
        print(row.line())
    failed = [r for r in rows if r.status in ("FAIL", "error")]
    print(
        f"\n{len(rows) - len(failed)}/{len(rows)} scenario(s) without a failure in {took / 60:.1f}"
        f" min ({'short' if args.short else 'full'} campaign, seed {args.seed})"
    )
    if args.json:
        doc = [
            {
                "module": r.module,
                "status": r.status,
                "seconds": round(r.seconds, 1),
                "detail": r.detail,
                **(dataclasses.asdict(r.result) if r.result else {}),
            }
            for r in rows
        ]
        args.json.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"rows written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
