"""The restart scenarios of the reliability campaign, short: graceful stops and a rolling
restart under load publish no duplicate and lose nothing; a broker restart that loses every
topic is survived (the embedded broker keeps nothing on disk)."""

from __future__ import annotations

import pytest

from benchmarks.chaos import broker_restart, graceful
from benchmarks.chaos.common import Context

pytestmark = pytest.mark.slow


def test_sigterm_and_scaling_one_to_two_to_one_publish_no_duplicate_and_lose_nothing(
    kafka_bootstrap, model_path, tmp_path
):
    ctx = Context(bootstrap=kafka_bootstrap, workdir=tmp_path, seed=3, model=model_path)
    result = graceful.run(ctx, **graceful.SHORT)
    print(result.row(), dict(result.figures))
    assert result.ok, result.result


def test_the_service_survives_a_broker_restart_that_lost_every_topic(
    kafka_bootstrap, model_path, tmp_path
):
    # the scenario runs its own broker behind a proxy (it restarts it); the session's broker
    # only fills the Context
    ctx = Context(bootstrap=kafka_bootstrap, workdir=tmp_path, model=model_path)
    result = broker_restart.run(ctx, **broker_restart.SHORT)
    print(result.row(), dict(result.figures))
    assert result.ok, result.result
