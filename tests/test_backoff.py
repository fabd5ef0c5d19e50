"""The one retry loop: what a provider's classifier says decides; the loop waits and records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from debian_cloud_tests import backoff
from debian_cloud_tests.backoff import Backoff, Failure


class Throttled(Exception):
    pass


class Translated(Exception):
    pass


def failing(times: int, exc: Exception) -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "done"
    return fn, calls


def run(fn: Callable[[], str], classify: Callable[[BaseException], Failure]) -> tuple[str, list[float]]:
    sleeps: list[float] = []
    result = backoff.call(fn, "create thing", catch=(Throttled,), classify=classify,
                          translate=lambda exc, action: Translated(f"{action}: {exc}"),
                          sleep=sleeps.append)
    return result, sleeps


@pytest.fixture(autouse=True)
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backoff, "RETRIES", [])


def test_retried_until_it_succeeds_and_each_retry_is_recorded() -> None:
    fn, calls = failing(2, Throttled("429"))
    result, sleeps = run(fn, lambda exc: Failure(True, "429"))
    assert result == "done" and len(calls) == 3 and len(sleeps) == 2
    assert all(0.5 <= s <= 1.0 for s in sleeps[:1]) and all(s <= 2.0 for s in sleeps)
    assert [(r.action, r.attempt, r.cause) for r in backoff.RETRIES] == [
        ("create thing", 1, "429"), ("create thing", 2, "429")]
    assert backoff.properties()["provider_retries"] == "2"


def test_a_failure_not_worth_a_retry_is_translated_at_once() -> None:
    fn, calls = failing(5, Throttled("403 quota"))
    with pytest.raises(Translated, match="create thing: 403 quota"):
        run(fn, lambda exc: Failure(False, "403"))
    assert len(calls) == 1 and backoff.RETRIES == []


def test_the_last_attempt_of_the_failures_own_schedule_gives_up() -> None:
    slow = Backoff(attempts=3, base=15.0, cap=60.0)
    fn, calls = failing(10, Throttled("capacity"))
    sleeps: list[float] = []
    with pytest.raises(Translated):
        backoff.call(fn, "launch", catch=(Throttled,), classify=lambda exc: Failure(True, "cap", policy=slow),
                     translate=lambda exc, action: Translated(action), sleep=sleeps.append)
    assert len(calls) == 3 and len(sleeps) == 2 and sleeps[0] >= 7.5 and sleeps[1] >= 15


def test_retry_after_is_honoured_and_bounded() -> None:
    fn, _ = failing(2, Throttled("429"))
    asks = iter([7.0, 86400.0])
    _, sleeps = run(fn, lambda exc: Failure(True, "429", next(asks)))
    assert sleeps[0] >= 7.0 and sleeps[1] == backoff.MAX_RETRY_AFTER


def test_an_exception_outside_the_sdks_is_ours_and_propagates() -> None:
    fn, calls = failing(1, KeyError("bug"))
    with pytest.raises(KeyError):
        run(fn, lambda exc: Failure(True, "x"))
    assert len(calls) == 1


@pytest.mark.parametrize("value, seconds", [
    ("7", 7.0), ("0", 0.0), ("-3", 0.0), (None, None), ("", None), ("soon", None),
])
def test_retry_after_in_seconds(value: str | None, seconds: float | None) -> None:
    assert backoff.retry_after(value) == seconds


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC)
    assert backoff.retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert backoff.retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
