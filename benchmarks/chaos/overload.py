"""Overload: a burst at 10× the rate the service sustains, in the same run.

The plant's pumps are copied into ``assets`` assets (each copy keyed by its own name). One
trial, on fresh topics:

1. **Sustainable rate**: the first ``WARM_STEPS`` steps of every asset are produced up front
   and the service drains them; readings/s from its first processed record to the last
   (``/metrics``) is the rate it sustains — and every asset's state now exists, so what the
   burst adds to memory is only what waits in flight;
2. **Burst**: the remaining steps are produced at 10× that rate (librdkafka, paced in 50 ms
   slices; the rate reached is reported), while the service's memory (VmRSS of the main
   process and every worker, from /proc) and its metrics are sampled every 100 ms.

Oracle: memory is bounded — the in-flight gauge never exceeds ``max_in_flight_records +
max_poll_records`` (the pause threshold, plus the one poll that crosses it) and the peak RSS
grows by less than ``rss_budget_mib`` over its value before the burst; partitions are paused
(``streamvae_backpressure_pauses_total`` rises) and resumed (as many "resumed" log lines, and
everything is consumed); no rebalance during the burst (``streamvae_rebalances_total``
unchanged); the backlog drains (committed lag 0).

Example::

    result = overload.run(Context(bootstrap="127.0.0.1:9092", workdir=Path("/tmp/o")), 1)
"""

from __future__ import annotations

import threading
import time

from benchmarks.chaos.common import (
    Context,
    ScenarioResult,
    fresh_topics,
    h,
    process_tree_rss_bytes,
    service_config,
    stopped_on_error,
    wait_lag_zero,
)

NAME = "overload (10x burst)"
FULL = {"trials": 2, "assets": 120}
SHORT = {"trials": 1, "assets": 60}
WARM_STEPS = 250
BURST_FACTOR = 10.0
MAX_IN_FLIGHT = 5_000  # run.max_in_flight_records for this scenario
MAX_POLL = 2_000  # kafka.max_poll_records (the harness's settings)
# The in-flight records' share of memory: a ConsumerRecord and its pickled copy on the way to
# the worker (~1 KiB each for these 200-byte readings, 4 KiB allowed) plus kafka-python's
# fetch buffers (fetch_max_bytes, 50 MiB) and slack for the allocator.
RSS_BUDGET_MIB = (MAX_IN_FLIGHT + MAX_POLL) * 4 / 1024 + 50 + 64


def run(ctx: Context, trials: int, assets: int = 120) -> ScenarioResult:
    passed = 0
    notes: list[str] = []
    figures: dict[str, float] = {}
    for trial in range(1, trials + 1):
        print(f"  [{NAME}] trial {trial}/{trials}: {assets} assets", flush=True)
        ok, note, figs = _trial(ctx, trial, assets)
        passed += ok
        if not ok:
            notes.append(f"trial {trial}: {note}")
        for k, v in figs.items():
            figures[k] = max(figures.get(k, v), v)
    f = figures
    result = (
        f"{f.get('burst_ratio', 0):.1f}x burst: peak RSS +{f.get('rss_growth_mib', 0):.0f} MiB"
        f" (budget {RSS_BUDGET_MIB:.0f} MiB), peak in flight "
        f"{f.get('peak_in_flight_records', 0):.0f} records (bound {MAX_IN_FLIGHT + MAX_POLL}),"
        f" {f.get('pauses', 0):.0f} pause(s), 0 rebalances, lag 0"
    )
    return ScenarioResult(
        NAME, trials, passed, passed == trials, "; ".join(notes) if notes else result, figures
    )


def _messages(assets: int, start: int, stop: int) -> list[tuple[int, bytes, bytes]]:
    """Step-interleaved readings of ``assets`` copies of the plant's pumps, keyed by name."""
    base = {a: h.plant_payloads(a, start, stop) for a in h.ASSETS}
    out = []
    names = [(f"ovl-{i:04d}", h.ASSETS[i % len(h.ASSETS)]) for i in range(assets)]
    copies = {
        name: [p.replace(f'"{src}"'.encode(), f'"{name}"'.encode()) for p in base[src]]
        for name, src in names
    }
    for step in range(stop - start):
        for i, (name, _) in enumerate(names):
            out.append((i % h.PARTITIONS, name.encode(), copies[name][step]))
    return out


class _Sampler:
    """Samples the service's memory and metrics every 100 ms from a thread."""

    def __init__(self, service: h.ServiceProcess) -> None:
        self.service = service
        self.peak_rss = 0
        self.peak_in_flight = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        assert self.service.proc is not None
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, process_tree_rss_bytes(self.service.proc.pid))
            try:
                flight = self.service.metric("streamvae_in_flight_records")
            except Exception:
                flight = 0.0
            self.peak_in_flight = max(self.peak_in_flight, flight)
            self._stop.wait(0.1)


def _trial(ctx: Context, trial: int, assets: int) -> tuple[bool, str, dict[str, float]]:
    import confluent_kafka

    topics = fresh_topics(ctx.bootstrap)
    warm = _messages(assets, 0, WARM_STEPS)
    burst = _messages(assets, WARM_STEPS, h.TEST_STEPS)
    h.produce(ctx.bootstrap, topics.sensors, warm)
    config = service_config(
        ctx, topics, name=f"overload-{trial}.toml", max_in_flight_records=MAX_IN_FLIGHT
    )
    log = ctx.workdir / f"overload-{trial}.log"
    figures: dict[str, float] = {}
    with h.running(config, log) as service:
        first = last = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = service.metric("streamvae_records_processed_total")
            now = time.monotonic()
            if done > 0 and first is None:
                first = (now, done)
            if done >= len(warm):
                last = (now, done)
                break
            time.sleep(0.05)
        if first is None or last is None or last[0] <= first[0]:
            return False, "the warm-up backlog was not processed", figures
        rate = (last[1] - first[1]) / (last[0] - first[0])
        figures["sustainable_readings_per_s"] = round(rate)
        service.wait_ready(60)
        pauses0 = service.metric("streamvae_backpressure_pauses_total")
        rebalances0 = service.metric("streamvae_rebalances_total")
        assert service.proc is not None
        rss0 = process_tree_rss_bytes(service.proc.pid)
        producer = confluent_kafka.Producer(
            {"bootstrap.servers": ctx.bootstrap, "linger.ms": 20, "acks": "all"}
        )
        target = BURST_FACTOR * rate
        with _Sampler(service) as sampler:
            started = time.monotonic()
            for i, (partition, key, value) in enumerate(burst):
                if i % 500 == 0:
                    ahead = started + i / target - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                while True:
                    try:
                        producer.produce(topics.sensors, value, key, partition=partition)
                        break
                    except BufferError:
                        producer.poll(0.01)
                producer.poll(0)
            produced_s = time.monotonic() - started
            producer.flush(60)
            figures["burst_readings_per_s"] = round(len(burst) / produced_s)
            figures["burst_ratio"] = round(len(burst) / produced_s / rate, 1)
            h.wait_for(
                lambda: (
                    service.metric("streamvae_records_processed_total") >= len(warm) + len(burst)
                ),
                300,
                "the burst to be processed",
            )
        lag = wait_lag_zero(ctx.bootstrap, topics.group, topics.sensors, 60)
        pauses = service.metric("streamvae_backpressure_pauses_total") - pauses0
        rebalances = service.metric("streamvae_rebalances_total") - rebalances0
        code = service.terminate(timeout_s=30)
    text = log.read_text(errors="replace")
    resumed = text.count("streamvae.service: resumed:")
    growth_mib = (sampler.peak_rss - rss0) / 2**20
    figures.update(
        peak_rss_mib=round(sampler.peak_rss / 2**20),
        rss_before_burst_mib=round(rss0 / 2**20),
        rss_growth_mib=round(growth_mib, 1),
        peak_in_flight_records=sampler.peak_in_flight,
        pauses=pauses,
        resumes=resumed,
        rebalances_during_burst=rebalances,
    )
    problems = []
    if figures["burst_ratio"] < BURST_FACTOR * 0.9:
        problems.append(f"the burst reached only {figures['burst_ratio']}x the sustainable rate")
    if sampler.peak_in_flight > MAX_IN_FLIGHT + MAX_POLL:
        problems.append(f"{sampler.peak_in_flight:.0f} records in flight")
    if growth_mib > RSS_BUDGET_MIB:
        problems.append(f"RSS grew {growth_mib:.0f} MiB (budget {RSS_BUDGET_MIB:.0f})")
    if pauses < 1:
        problems.append("no partition was paused")
    if resumed < pauses:
        problems.append(f"{pauses:.0f} pause(s) but {resumed} resume(s)")
    if rebalances:
        problems.append(f"{rebalances:.0f} rebalance(s) during the burst")
    if lag != 0:
        problems.append(f"lag {lag} records at the end")
    if code != 0 or stopped_on_error(text):
        problems.append(f"the service exited {code}")
    return not problems, ", ".join(problems), figures
