"""PerClientInterval: once per interval per key, bounded memory."""

from __future__ import annotations

import time

from gateway.adapters.per_client_interval import PerClientInterval


def test_a_key_is_due_once_per_interval_independently_of_others() -> None:
    limiter = PerClientInterval(0.2)
    assert [limiter.due("a"), limiter.due("a"), limiter.due("b"), limiter.due("a")] == [True, False, True, False]
    time.sleep(0.25)
    assert [limiter.due("a"), limiter.due("a")] == [True, False]


def test_only_the_most_recent_keys_are_remembered() -> None:
    limiter = PerClientInterval(60.0, kept=2)
    assert all(limiter.due(key) for key in ("a", "b", "c"))  # "a" is forgotten when "c" arrives
    assert [limiter.due("b"), limiter.due("c"), limiter.due("a")] == [False, False, True]
