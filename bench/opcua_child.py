"""Instrumenting the gateway's OPC UA child process for the benchmark: cProfile, and what-if changes.

The gateway starts its OPC UA child with `multiprocessing` (spawn), target
`gateway.adapters.opcua_process.serve_in_child`. `instrument` (called in the benchmark's gateway process before the
gateway starts, and only when asked for) points that name at `serve_instrumented` below, which the child imports
from this module: it applies the what-ifs and runs the real `serve_in_child`. When profiling is asked for, the child
starts cProfile on SIGUSR1 and stops it and writes the profile on SIGUSR2 (`start_profile` / `stop_profile`, sent
by the benchmark's gateway process around a window: the child is often too busy to end in time for a profile
written at exit). Without options nothing is replaced: the child is the gateway's own.

What-ifs (experiments; the gateway does not do this):
- `no-deepcopy` (also in the bare asyncua server): asyncua's MonitoredItemValues keeps the DataValue it is given
  instead of a `copy.deepcopy` of it, once per monitored item per write. Safe when writers never mutate a DataValue
  after writing it. The gateway serves its plain monitored items from its value table (no asyncua callback, no copy):
  this what-if changes the bare server and the few items the gateway leaves to asyncua.
"""

from __future__ import annotations

import cProfile
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PROFILE_ENV = "BENCH_OPCUA_PROFILE"
WHAT_IF_ENV = "BENCH_OPCUA_WHAT_IF"


def _no_deepcopy() -> None:
    from asyncua.server import monitored_item_service

    def set_current_datavalue(self: Any, cur_val: Any) -> None:
        self.old_dvalue = self.current_dvalue
        self.current_dvalue = cur_val

    monitored_item_service.MonitoredItemValues.set_current_datavalue = (  # type: ignore[method-assign]
        set_current_datavalue)


ASYNCUA_WHAT_IFS: dict[str, Callable[[], None]] = {"no-deepcopy": _no_deepcopy}
WHAT_IFS = frozenset(ASYNCUA_WHAT_IFS)


def what_ifs(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of what-ifs (argparse type)."""
    names = tuple(name for name in text.split(",") if name)
    unknown = sorted(set(names) - WHAT_IFS)
    if unknown:
        raise ValueError(f"unknown what-if {', '.join(unknown)}; known: {', '.join(sorted(WHAT_IFS))}")
    return names


def apply_asyncua_what_ifs(names: Sequence[str]) -> None:
    for name in names:
        if name in ASYNCUA_WHAT_IFS:
            ASYNCUA_WHAT_IFS[name]()


def instrument(profile: str | None, names: Sequence[str]) -> None:
    """Make the gateway start `serve_instrumented` as its OPC UA child (only if there is something to do)."""
    if profile is None and not names:
        return
    from gateway.adapters import opcua_process

    os.environ.pop(PROFILE_ENV, None)
    if profile is not None:
        os.environ[PROFILE_ENV] = os.path.abspath(profile)
    os.environ[WHAT_IF_ENV] = ",".join(names)
    opcua_process.serve_in_child = serve_instrumented  # type: ignore[assignment]  # looked up when it starts


def serve_instrumented(*args: Any) -> None:
    """The OPC UA child: the gateway's `serve_in_child` with the what-ifs applied, profiled between signals."""
    from gateway.adapters.opcua_process import serve_in_child

    names = what_ifs(os.environ.get(WHAT_IF_ENV, ""))
    apply_asyncua_what_ifs(names)
    profile_path = os.environ.get(PROFILE_ENV)
    if profile_path is not None:
        profilers: list[cProfile.Profile] = []

        def start(signum: int, frame: Any) -> None:
            profilers.append(cProfile.Profile())  # a new one: each window's profile is its own
            profilers[-1].enable()

        def stop(signum: int, frame: Any) -> None:
            profiler = profilers[-1]
            profiler.disable()
            profiler.dump_stats(profile_path + ".partial")
            os.replace(profile_path + ".partial", profile_path)

        signal.signal(signal.SIGUSR1, start)  # handlers run in the main thread: the event loop's, profiled
        signal.signal(signal.SIGUSR2, stop)
    serve_in_child(*args)


def start_profile(pid: int) -> None:
    os.kill(pid, signal.SIGUSR1)


def stop_profile(pid: int, path: Path, timeout_s: float = 30.0) -> bool:
    """Have the child write its profile to the path it was started with; False if it did not within the time."""
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
