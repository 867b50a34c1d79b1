"""`bms-gateway ack|reset` without a running gateway: a missing store is a clear error, a queued command waits."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

from gateway.adapters.command_queue import CommandQueue
from gateway.adapters.state_store import StateStore
from tests.test_event_command import bms_gateway


def test_a_missing_store_is_a_clear_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite"

    result = bms_gateway("reset", "--pack", "p1", "--store", missing)

    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "--store" in result.stderr
    assert "Traceback" not in result.stderr
    assert not missing.exists()


def test_without_a_gateway_the_command_is_queued_and_the_cli_says_nobody_answered(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite"
    StateStore(store).close()

    waited = bms_gateway("ack", "--pack", "p1", "--operator", "j.doe", "--store", store, "--wait", "0.3")
    queued = bms_gateway("reset", "--pack", "p1", "--operator", "j.doe", "--store", store, "--wait", "0")

    assert waited.returncode == 3
    assert "no outcome within 0.3 s" in waited.stderr
    assert queued.returncode == 0
    assert "queued as command 2" in queued.stdout
    with closing(CommandQueue(store)) as queue:
        pending = queue.pending()
    assert [(c.pack_id, c.action, c.operator) for c in pending] == [("p1", "acknowledge", "j.doe"),
                                                                   ("p1", "reset", "j.doe")]
