"""Task retries: a deterministic failure (a bandselect error) fails at once; a transient one is retried."""

from __future__ import annotations

import inspect

import pytest
from prefect import Task, flow, task
from prefect.cache_policies import NO_CACHE

import bandselect.tasks as tasks_package
from bandselect.errors import ConfigError
from bandselect.tasks._retry import retry_transient

ATTEMPTS: list[str] = []


@task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_transient, cache_policy=NO_CACHE)
def _failing(kind: str) -> None:
    ATTEMPTS.append(kind)
    if kind == "config":
        raise ConfigError("k", expected="k <= 61", found="k = 80", fix="lower k")
    if len(ATTEMPTS) < 3:
        raise ConnectionError("MLflow dropped the connection")


@flow
def _run(kind: str) -> None:
    _failing(kind)


def test_deterministic_failures_are_not_retried_and_transient_ones_are() -> None:
    ATTEMPTS.clear()
    with pytest.raises(ConfigError, match="lower k"):
        _run("config")
    assert ATTEMPTS == ["config"]  # once, not three times
    ATTEMPTS.clear()
    _run("network")
    assert ATTEMPTS == ["network"] * 3  # two retries, then it worked


def test_every_retried_task_retries_only_transient_failures() -> None:
    retried = [obj for _, obj in inspect.getmembers(tasks_package) if isinstance(obj, Task) and obj.retries]
    assert len(retried) >= 5
    assert all(t.retry_condition_fn is retry_transient for t in retried), [t.name for t in retried]
