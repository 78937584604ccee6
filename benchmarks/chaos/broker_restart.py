"""A broker restart under a running service: Tansu loses everything, the service must not.

The embedded broker keeps data in memory only, so its restart is the harshest one: topics,
committed offsets and the compacted state topic are gone (a real Kafka keeps all three on
disk: see docs/reliability.md). The scenario owns a broker behind the chaos proxy (the
proxy's address stays the same while the broker behind it is replaced). One trial:

1. the service consumes the first half of the plant's test steps and gets ready;
2. the broker is stopped: ``/healthz`` must stay 200 and ``/readyz`` turn 503;
3. a new, empty broker starts behind the same address; the sensor topic is created again (as
   the plant's side would) and the second half is produced into it;
4. the service must survive (no exit), rejoin, recreate what it needs (its alert and state
   topics are created by the producer's first write or by the service at start), turn ready
   again, consume every record of the new topic and commit them (lag 0).

What it cannot do — and does not pretend to — is keep the state of step 1: the checkpoints
died with the broker, so the partitions start cold (with the configured model) and the
service logs that.

Example::

    result = broker_restart.run(Context(bootstrap="unused:0", workdir=Path("/tmp/b")), 1)
"""

from __future__ import annotations

import time

from benchmarks.chaos.common import (
    OUTAGE,
    Context,
    Progress,
    ScenarioResult,
    create_topic,
    fresh_topics,
    h,
    service_config,
    stopped_on_error,
    wait_lag_zero,
)
from benchmarks.chaos.proxy import ChaosProxy
from consumers.broker import EmbeddedBroker

NAME = "broker restart"
FULL = {"trials": 2}
SHORT = {"trials": 1}
DOWN_S = 3.0  # how long the broker stays down


def run(ctx: Context, trials: int) -> ScenarioResult:
    passed = 0
    notes: list[str] = []
    figures: dict[str, float] = {}
    for trial in range(1, trials + 1):
        print(
            f"  [{NAME}] trial {trial}/{trials}: stop, {DOWN_S:g} s down, empty broker", flush=True
        )
        ok, note, figs = _trial(ctx, trial)
        passed += ok
        if not ok:
            notes.append(f"trial {trial}: {note}")
        for k, v in figs.items():
            figures[k] = max(figures.get(k, v), v)
    result = "survived, ready again, every new record consumed, lag 0 (state lost with Tansu)"
    return ScenarioResult(
        NAME, trials, passed, passed == trials, "; ".join(notes) if notes else result, figures
    )


def _trial(ctx: Context, trial: int) -> tuple[bool, str, dict[str, float]]:
    proxy = ChaosProxy().start()
    brokers = [EmbeddedBroker(advertised_port=proxy.port, stop_grace_s=0.5)]
    proxy.upstream = lambda: ("127.0.0.1", brokers[-1].port)
    figures: dict[str, float] = {}
    service: h.ServiceProcess | None = None
    say = Progress(f"{NAME} {trial}")
    try:
        brokers[0].start()
        bootstrap = proxy.address
        topics = fresh_topics(bootstrap)
        half = h.TEST_STEPS // 2
        first = h.plant_messages(0, half)
        h.produce(bootstrap, topics.sensors, first)
        config = service_config(
            ctx, topics, bootstrap=bootstrap, name=f"restart-{trial}.toml", kafka=OUTAGE
        )
        service = h.ServiceProcess(config, ctx.workdir / f"restart-{trial}.log").start()
        s = service
        h.wait_for(
            lambda: s.metric("streamvae_records_processed_total") >= len(first),
            120,
            "the first half to be processed",
        )
        service.wait_ready(60)
        say("first half processed; stopping the broker")
        brokers[0].stop()
        health, ready = [], []
        down_until = time.monotonic() + DOWN_S
        while time.monotonic() < down_until:
            health.append(service.get("/healthz")[0])
            ready.append(service.get("/readyz")[0])
            time.sleep(0.25)
        brokers.append(EmbeddedBroker(advertised_port=proxy.port, stop_grace_s=0.5))
        brokers[-1].start()
        say("a new, empty broker runs behind the same address")
        back = time.monotonic()
        create_topic(bootstrap, topics.sensors, h.PARTITIONS)
        second = h.plant_messages(half, h.TEST_STEPS)
        h.produce(bootstrap, topics.sensors, second)
        problems = []
        try:
            service.wait_ready(180)
            say("ready again")
            figures["ready_again_after_restart_s"] = round(time.monotonic() - back, 1)
        except AssertionError:
            problems.append("/readyz did not recover")
        lag = wait_lag_zero(bootstrap, topics.group, topics.sensors, 120)
        say(f"lag {lag}")
        if any(c != 200 for c in health):
            problems.append("/healthz failed while the broker was down")
        if all(c == 200 for c in ready):
            problems.append("/readyz stayed 200 while the broker was down")
        if lag != 0:
            problems.append(f"lag {lag} records on the new broker")
        if not service.alive:
            problems.append(f"the service exited {service.proc.returncode}")  # type: ignore[union-attr]
        else:
            consumed = service.metric("streamvae_records_consumed_total")
            figures["records_consumed"] = consumed
            if consumed < len(first) + len(second):
                problems.append(f"consumed {consumed:.0f} of {len(first) + len(second)} records")
            code = service.terminate(timeout_s=30)
            if code != 0:
                problems.append(f"SIGTERM exit {code}")
        if stopped_on_error(service.log()):
            problems.append("the service log shows an error stop")
        return not problems, ", ".join(problems), figures
    finally:
        if service is not None:
            service.close()
        proxy.stop()
        for b in brokers:
            b.stop()
