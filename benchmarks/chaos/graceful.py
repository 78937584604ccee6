"""Graceful stops and a rolling restart while the plant streams.

One trial, on fresh topics, with a paced feed of the plant's test steps running throughout:

1. instance A starts; mid-stream it gets SIGTERM (must exit 0: finish, checkpoint, commit,
   leave the group) and is started again at once — a deploy of one instance;
2. instance B starts beside it (scale 1 → 2: the group splits the partitions, A's revoked
   partitions move to B with their checkpoints);
3. A gets SIGTERM again (scale 2 → 1: B takes every partition over);
4. B runs to the end of the stream and is stopped with SIGTERM.

Oracle: every SIGTERM exits 0; every injected fault fires and resolves; **no alert id appears
twice** (a graceful stop or handover checkpoints exactly where it stopped, so nothing is
replayed); the group's lag returns to 0.

Example::

    result = graceful.run(Context(bootstrap="127.0.0.1:9092", workdir=Path("/tmp/g")), 1)
"""

from __future__ import annotations

import random
import time

from benchmarks.chaos.common import (
    FAST_GROUP,
    Context,
    PacedProducer,
    Progress,
    ScenarioResult,
    fresh_topics,
    h,
    judge_alerts,
    service_config,
    wait_every_fault,
    wait_lag_zero,
)

NAME = "graceful stop + rolling"
FULL = {"trials": 5}
SHORT = {"trials": 1, "redeploy": False}
FEED_RATE = 400.0  # messages/s: the plant's 6,000 test readings over 15 s


def run(ctx: Context, trials: int, redeploy: bool = True) -> ScenarioResult:
    """``redeploy=False`` skips step 1's stop-and-start (the default suite's short version:
    the scale-in SIGTERM of step 3 is the graceful stop under load it checks)."""
    rng = random.Random(ctx.seed + 1)
    passed = 0
    notes: list[str] = []
    duplicates = 0
    for trial in range(1, trials + 1):
        print(f"  [{NAME}] trial {trial}/{trials}: SIGTERM + restart, scale 1 → 2 → 1", flush=True)
        ok, note, dups = _trial(ctx, rng, trial, redeploy)
        passed += ok
        duplicates += dups
        if not ok:
            notes.append(f"trial {trial}: {note}")
    result = "every SIGTERM exit 0, 0 duplicates, 0 lost, lag 0"
    return ScenarioResult(
        NAME,
        trials,
        passed,
        passed == trials,
        "; ".join(notes) if notes else result,
        {"duplicates": duplicates},
    )


def _trial(ctx: Context, rng: random.Random, trial: int, redeploy: bool) -> tuple[bool, str, int]:
    topics = fresh_topics(ctx.bootstrap)
    config = service_config(ctx, topics, name=f"graceful-{trial}.toml", kafka=FAST_GROUP)
    a_log, b_log = ctx.workdir / f"graceful-{trial}-a.log", ctx.workdir / f"graceful-{trial}-b.log"
    a = h.ServiceProcess(config, a_log).start()
    b = h.ServiceProcess(config, b_log)
    codes: list[int] = []
    say = Progress(f"{NAME} {trial}")
    try:
        a.wait_ready(90)
        say("A ready; feeding the plant")
        feed = PacedProducer(ctx.bootstrap, topics.sensors, h.plant_messages(), FEED_RATE).start()
        time.sleep(rng.uniform(1.0, 3.0))
        if redeploy:
            say("SIGTERM A, start it again")
            codes.append(a.terminate(timeout_s=30))  # a deploy: stop ...
            a.close()
            a = h.ServiceProcess(config, a_log).start()  # ... and start again
            a.wait_ready(90)
        say("starting B")
        b.start()  # scale out
        h.wait_for(
            lambda: (
                a.metric("streamvae_assigned_partitions") >= 1
                and b.metric("streamvae_assigned_partitions") >= 1
            ),
            90,
            "both instances to own partitions",
        )
        time.sleep(rng.uniform(0.5, 2.0))
        say("both own partitions; SIGTERM A")
        codes.append(a.terminate(timeout_s=30))  # scale in
        h.wait_for(
            lambda: b.metric("streamvae_assigned_partitions") == h.PARTITIONS,
            90,
            "B to own every partition",
        )
        say("B owns every partition")
        feed.join(120)
        verdict = wait_every_fault(ctx.bootstrap, topics.alerts, 180)
        say("every fault alerted")
        lag = wait_lag_zero(ctx.bootstrap, topics.group, topics.sensors, 60)
        say(f"lag {lag}")
        codes.append(b.terminate(timeout_s=30))
    finally:
        a.close()
        b.close()
    verdict = judge_alerts(ctx.bootstrap, topics.alerts)
    problems = []
    if any(codes):
        problems.append(f"SIGTERM exit codes {codes}")
    if not verdict.ok:
        problems.append(verdict.summary())
    if verdict.duplicates:
        problems.append(f"{verdict.duplicates} duplicate alert(s)")
    if lag != 0:
        problems.append(f"lag {lag} records at the end")
    return not problems, ", ".join(problems), verdict.duplicates
