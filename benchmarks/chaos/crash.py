"""Crashes: ``streamvae run`` SIGKILLed at seeded random points, restarted as a supervisor would.

A trial is one SIGKILL. Trials are grouped into streams of up to ``KILLS_PER_STREAM``: each
stream is the plant's test steps (six pumps, four labelled faults) in fresh topics, produced
up front; the service is started, killed at a random point, started again, ... and after the
stream's last kill it runs until the oracle is satisfied. A kill point is a random count
of consumed records (mid-stream: scoring, checkpointing, committing), except the second kill
of every stream, which lands at a random instant of the start-up (loading the model, joining
the group, restoring checkpoints).

Oracle, per stream (its trials pass or fail together):

- every injected fault has a firing and a resolved alert, and each faulted asset's last alert
  is "resolved" (the final states);
- every alert id that appears more than once has byte-identical copies (a replay after a crash
  reproduces the same decisions: DESIGN §5);
- the group's committed lag on the sensor topic returns to 0;
- no run died on its own before its kill.

Example::

    result = crash.run(Context(bootstrap="127.0.0.1:9092", workdir=Path("/tmp/crash")), 20)
"""

from __future__ import annotations

import random
import time

from benchmarks.chaos.common import (
    FAST_GROUP,
    Context,
    Progress,
    ScenarioResult,
    fresh_topics,
    h,
    judge_alerts,
    service_config,
    wait_every_fault,
    wait_lag_zero,
)

NAME = "crash (SIGKILL)"
FULL = {"trials": 20}
SHORT = {"trials": 2}
KILLS_PER_STREAM = 4


def run(ctx: Context, trials: int) -> ScenarioResult:
    rng = random.Random(ctx.seed)
    passed = 0
    duplicates = 0
    notes: list[str] = []
    stream = 0
    done = 0
    while done < trials:
        kills = min(KILLS_PER_STREAM, trials - done)
        stream += 1
        ok, note, dups = _stream(ctx, rng, stream, kills, done, trials)
        passed += kills if ok else 0
        duplicates += dups
        done += kills
        if not ok:
            notes.append(f"stream {stream}: {note}")
    result = (
        f"0 lost, 0 id mismatches, final states resolved, lag 0; {duplicates} duplicate(s), "
        "all identical"
    )
    return ScenarioResult(
        NAME,
        trials,
        passed,
        passed == trials,
        "; ".join(notes) if notes else result,
        {"duplicates": duplicates, "streams": stream},
    )


def _stream(
    ctx: Context, rng: random.Random, stream: int, kills: int, before: int, trials: int
) -> tuple[bool, str, int]:
    topics = fresh_topics(ctx.bootstrap)
    messages = h.plant_messages()
    h.produce(ctx.bootstrap, topics.sensors, messages)
    config = service_config(
        ctx,
        topics,
        name=f"crash-{stream}.toml",
        kafka=FAST_GROUP,
        checkpoint_interval_s=0.5,
        max_in_flight_records=300,
    )
    log = ctx.workdir / f"crash-{stream}.log"
    say = Progress(NAME)
    for k in range(kills):
        service = h.ServiceProcess(config, log).start()
        try:
            if k % KILLS_PER_STREAM == 1:  # one kill of every stream lands in a start-up
                at = rng.uniform(0.2, 4.0)
                what = f"{at:.1f} s into the start-up"
                _sleep_while_alive(service, at)
            else:
                target = rng.uniform(0.05, 0.6) * len(messages)
                what = f"after {target:.0f} records consumed"
                h.wait_for(
                    lambda s=service, t=target: (
                        not s.alive or s.metric("streamvae_records_consumed_total") >= t
                    ),
                    120,
                    f"kill point {k + 1}",
                    every_s=0.05,
                )
            say(f"trial {before + k + 1}/{trials}: SIGKILL {what}")
            if not service.alive:
                return False, f"the service died on its own before kill {k + 1}", 0
        finally:
            service.close()  # SIGKILL: no last checkpoint, no commit, no goodbye
    with h.running(config, log) as service:
        say(f"stream {stream}: the last run, to the end of the stream")
        verdict = wait_every_fault(ctx.bootstrap, topics.alerts, 180)
        say("every fault alerted")
        lag = wait_lag_zero(ctx.bootstrap, topics.group, topics.sensors, 60)
        say(f"lag {lag}")
        code = service.terminate(timeout_s=30)
    verdict = judge_alerts(ctx.bootstrap, topics.alerts)
    problems = []
    if not verdict.ok:
        problems.append(verdict.summary())
    if lag != 0:
        problems.append(f"lag {lag} records at the end")
    if code != 0:
        problems.append(f"the last run exited {code}")
    return not problems, ", ".join(problems), verdict.duplicates


def _sleep_while_alive(service: h.ServiceProcess, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while service.alive and time.monotonic() < deadline:
        time.sleep(0.05)
