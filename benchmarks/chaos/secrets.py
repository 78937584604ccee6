"""Secrets: a run with SASL credentials leaves the password nowhere the process writes.

Why: the Kafka password reaches the service through ``STREAMVAE_KAFKA_SECURITY_PASSWORD`` or
``password_file`` and must never be printed — not in logs (text or JSON, any level), not in
``--help``, not in the settings dump at start-up, not in error messages or tracebacks, above
all on the failure paths (a broker that rejects or does not speak SASL, invalid settings, a
misspelt variable), which is where a ``repr()`` of a config or a client's exception ends up
on stderr. Each trial runs a real ``streamvae`` process with a fresh random password and
searches every byte it wrote — stdout, stderr, any file it created under the trial's
directory — for the password, for its base64 forms (at each of the three alignments, as in a
longer base64 blob) and for the SASL PLAIN token ``\\0user\\0password`` in base64.

The cases (``CASES``; each trial runs the next one, so ``trials >= len(CASES)`` runs all):

- ``help``, ``run_help``: ``streamvae --help`` / ``streamvae run --help`` with the password set;
- ``invalid_env_setting``, ``invalid_file_setting``: SASL configured, another setting invalid;
- ``literal_password_in_file``: ``password = "<it>"`` in the settings file (refused);
- ``misspelt_env_password``, ``misspelt_file_password``: the password under a misspelt name
  (``STREAMVAE_KAFKA_SECURITY_PASSWROD``, ``passwrod = …``): refused as unknown;
- ``password_without_sasl``, ``bad_mechanism``, ``both_env_and_file`` (the password both in
  ``…_PASSWORD`` and ``…_PASSWORD_FILE``): contradictory settings;
- ``sasl_rejected``: ``SASL_PLAINTEXT``/``PLAIN`` against a Tansu broker started with
  ``--authentication`` (it offers no shared mechanism), JSON logs at DEBUG;
- ``sasl_unspoken``: the same against the campaign's broker, which does not speak SASL, text
  logs at DEBUG.

The SASL cases wait out kafka-python's fixed 30 s bootstrap timeout twice (admin client, then
producer), so they take over a minute each; the short version runs the fast cases only
(``trials < len(CASES)`` takes the first ``trials`` fast ones). Every case must end with a
non-zero exit (0 for the help cases) within its deadline: a hang is a failure too. The
``/metrics`` body is not checked here: the service serves it only once its Kafka clients have
bootstrapped, which a SASL run cannot do against Tansu (see the report).

Example::

    result = secrets.run(Context(bootstrap="127.0.0.1:9092", workdir=Path("/tmp/sec")), 4)
    print(result.row())
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import contextlib
import dataclasses
import json
import os
import secrets as token
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.chaos.common import Context, ScenarioResult
from consumers.broker import free_loopback_port, kill_with_parent
from tests.integration import harness as h

__all__ = ["CASES", "FAST", "forms", "leaks", "run"]

USER = "streamvae-chaos"


def forms(secret: str, user: str = USER) -> dict[str, bytes]:
    """The byte strings that give ``secret`` away: itself, its base64 (standard and URL-safe,
    each at the three alignments it can have inside a longer blob), the SASL PLAIN token."""
    raw = secret.encode()
    out = {"plain": raw, "sasl_plain_token": base64.b64encode(b"\0" + user.encode() + b"\0" + raw)}
    for k in range(3):
        for name, enc in (("b64", base64.b64encode), ("b64url", base64.urlsafe_b64encode)):
            text = enc(b"\0" * k + raw)
            skip = (k * 4 + 2) // 3  # characters that also encode the padding bytes
            out[f"{name}@{k}"] = text[skip:-4]  # the last group may mix in what follows
    return out


def leaks(data: bytes, secret: str) -> list[str]:
    """Which forms of ``secret`` occur in ``data``."""
    return [name for name, needle in forms(secret).items() if needle and needle in data]


@dataclasses.dataclass(frozen=True)
class _Case:
    """One way to run ``streamvae`` with a password around, and what it must exit with."""

    name: str
    build: Callable[[Path, str, Context], tuple[list[str], dict[str, str]]]
    exit_ok: Callable[[int], bool]
    deadline_s: float = 60.0
    slow: bool = False


def _security(extra: str = "", protocol: str = "SASL_PLAINTEXT", mechanism: str = "PLAIN") -> str:
    return (
        f'\n[kafka.security]\nprotocol = "{protocol}"\nsasl_mechanism = "{mechanism}"\n'
        f'username = "{USER}"\n{extra}'
    )


def _config(d: Path, ctx: Context, security: str, bootstrap: str | None = None, **run: Any) -> Path:
    topics = h.Topics("chaos-sensors", "chaos-alerts", "chaos-dlq", "chaos-state", "chaos-g")
    path = h.write_config(d / "streamvae.toml", bootstrap or ctx.bootstrap, topics, None, **run)
    path.write_text(path.read_text() + security)
    return path


def _env(secret: str) -> dict[str, str]:
    return {"STREAMVAE_KAFKA_SECURITY_PASSWORD": secret}


def _help(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    return ["--help"], _env(s)


def _run_help(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    return ["run", "--help"], _env(s)


def _invalid_env(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    cfg = _config(d, ctx, _security())
    return ["run", "--config", str(cfg)], {**_env(s), "STREAMVAE_KAFKA_MAX_POLL_RECORDS": "lots"}


def _invalid_file(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    secret_file = d / "kafka-password"
    secret_file.write_text(s + "\n")
    cfg = _config(d, ctx, _security(f'password_file = "{secret_file}"\n'))
    cfg.write_text(cfg.read_text().replace("[kafka]\n", "[kafka]\nsesion_timeout_ms = 5\n", 1))
    return ["run", "--config", str(cfg), "--log-format", "json"], {}


def _literal(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    cfg = _config(d, ctx, _security(f'password = "{s}"\n'))
    return ["run", "--config", str(cfg)], {}


def _misspelt_env(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    cfg = _config(d, ctx, _security())
    return ["run", "--config", str(cfg)], {"STREAMVAE_KAFKA_SECURITY_PASSWROD": s}


def _misspelt_file(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    cfg = _config(d, ctx, _security(f'passwrod = "{s}"\n'))
    return ["run", "--config", str(cfg)], _env("not-the-secret")


def _without_sasl(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    cfg = _config(d, ctx, '\n[kafka.security]\nprotocol = "PLAINTEXT"\n')
    return ["run", "--config", str(cfg), "--log-format", "json"], _env(s)


def _bad_mechanism(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    cfg = _config(d, ctx, _security(mechanism="BOGUS"))
    return ["run", "--config", str(cfg)], _env(s)


def _both(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    secret_file = d / "kafka-password"
    secret_file.write_text(s)
    cfg = _config(d, ctx, _security())
    return ["run", "--config", str(cfg)], {
        **_env(s),
        "STREAMVAE_KAFKA_SECURITY_PASSWORD_FILE": str(secret_file),
    }


def _rejected(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    port = _auth_broker(d)
    cfg = _config(d, ctx, _security(), bootstrap=f"127.0.0.1:{port}", log_level="DEBUG")
    return ["run", "--config", str(cfg), "--log-format", "json"], _env(s)


def _unspoken(d: Path, s: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    secret_file = d / "kafka-password"
    secret_file.write_text(s + "\n")
    cfg = _config(d, ctx, _security(f'password_file = "{secret_file}"\n'), log_level="DEBUG")
    return ["run", "--config", str(cfg)], {}


def _zero(code: int) -> bool:
    return code == 0


def _two(code: int) -> bool:
    return code == 2


def _failed(code: int) -> bool:
    return code not in (0, -9, 124, 137)


CASES: tuple[_Case, ...] = (  # the short version runs the first few fast ones
    _Case("literal_password_in_file", _literal, _two),
    _Case("misspelt_env_password", _misspelt_env, _two),
    _Case("invalid_file_setting", _invalid_file, _two),
    _Case("run_help", _run_help, _zero),
    _Case("help", _help, _zero),
    _Case("invalid_env_setting", _invalid_env, _two),
    _Case("misspelt_file_password", _misspelt_file, _two),
    _Case("password_without_sasl", _without_sasl, _two),
    _Case("bad_mechanism", _bad_mechanism, _two),
    _Case("both_env_and_file", _both, _two),
    _Case("sasl_rejected", _rejected, _failed, deadline_s=150.0, slow=True),
    _Case("sasl_unspoken", _unspoken, _failed, deadline_s=150.0, slow=True),
)
FAST = tuple(c for c in CASES if not c.slow)

_BROKERS: list[subprocess.Popen[bytes]] = []


def _auth_broker(d: Path) -> int:
    """A Tansu broker that requires client authentication (loopback only, dies with us)."""
    from consumers.broker import _resolve_binary

    port = free_loopback_port()
    log = (d / "tansu.log").open("wb")
    proc = subprocess.Popen(
        [
            _resolve_binary(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
            "--storage-engine",
            "memory://tansu/",
            "--authentication",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
        preexec_fn=kill_with_parent,
    )
    _BROKERS.append(proc)
    time.sleep(1.0)  # it binds in well under a second
    return port


def _trial(case: _Case, ctx: Context, index: int) -> tuple[str, list[str], float, int]:
    d = ctx.workdir / f"{index:03d}-{case.name}"
    d.mkdir(parents=True, exist_ok=True)
    secret = f"S3cr3t-{token.token_urlsafe(18)}"
    args, env = case.build(d, secret, ctx)
    inputs = {p: p.stat().st_mtime_ns for p in d.rglob("*") if p.is_file()}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "consumers.cli", *args],
        cwd=d,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(h.ROOT)},
        start_new_session=True,
    )
    problems: list[str] = []
    try:
        out, err = proc.communicate(timeout=case.deadline_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        problems.append(f"{case.name}: still running after {case.deadline_s:.0f} s (a hang)")
    seconds = time.monotonic() - started
    code = proc.returncode
    if not problems and not case.exit_ok(code):
        problems.append(f"{case.name}: exit {code}: {_last_line(err or out)}")
    written = {"stdout": out, "stderr": err}
    for p in d.rglob("*"):
        if p.is_file() and inputs.get(p) != p.stat().st_mtime_ns and p.name != "tansu.log":
            written[str(p.relative_to(d))] = p.read_bytes()
    for where, data in written.items():
        found = leaks(data, secret)
        if found:
            problems.append(f"{case.name}: the password is in {where} as {', '.join(found)}")
    searched = sum(len(b) for b in written.values())
    (d / "stdout.log").write_bytes(out)  # evidence, written after the search
    (d / "stderr.log").write_bytes(err)
    (d / "result.json").write_text(
        json.dumps(
            {"exit": code, "seconds": round(seconds, 1), "bytes": searched, "problems": problems}
        )
    )
    return case.name, problems, seconds, searched


def _last_line(data: bytes) -> str:
    lines = data.decode(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else "no output"


def run(ctx: Context, trials: int) -> ScenarioResult:
    """Run ``trials`` cases (see the module docstring) four at a time and search their output."""
    if trials < 1:
        raise ValueError(f"secrets.run: trials must be >= 1 processes, got {trials}")
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    pool = CASES if trials >= len(CASES) else FAST
    chosen = [pool[i % len(pool)] for i in range(trials)]
    problems: list[str] = []
    seconds: dict[str, float] = {}
    searched = 0
    try:
        with cf.ThreadPoolExecutor(4) as ex:
            futures = [ex.submit(_trial, c, ctx, i) for i, c in enumerate(chosen)]
            for f in cf.as_completed(futures):
                name, found, took, nbytes = f.result()
                problems += found
                searched += nbytes
                seconds[name] = max(seconds.get(name, 0.0), round(took, 1))
                print(f"secrets: {name} done in {took:.1f} s", file=sys.stderr, flush=True)
    finally:
        for b in _BROKERS:
            with contextlib.suppress(Exception):
                b.kill()
                b.wait(timeout=5)
        _BROKERS.clear()
    failed = {p.split(":")[0] for p in problems}
    passed = sum(1 for c in chosen if c.name not in failed)
    leaked = [p for p in problems if "the password is in" in p]
    hangs = [p for p in problems if "a hang" in p]
    return ScenarioResult(
        "secrets",
        trials=trials,
        passed=passed,
        ok=not problems,
        result=(
            f"{len(leaked)} leaks, {len(hangs)} hangs in {trials} runs "
            f"({len(set(c.name for c in chosen))} cases, {searched / 1024:.0f} KiB searched for "
            "the password, its base64 forms and the SASL token)"
        )
        if len(leaked) + len(hangs) == len(problems)
        else "; ".join(problems[:5]),
        figures={
            "cases": sorted({c.name for c in chosen}),
            "seconds": seconds,
            "bytes_searched": searched,
            "leaks": len(leaked),
            "hangs": len(hangs),
            "problems": problems,
        },
    )
