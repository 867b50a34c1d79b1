"""A benchmark process commanded line by line: it prints one JSON line when ready, then answers each command line
with one JSON line; `stop` (or end of input) ends it (bench.opcua_probe.commands is the server side)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from typing import IO, Any


class LineProcess:
    def __init__(self, command: list[str], stderr: IO[str] | None = None, stop_timeout_s: float = 30.0) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                        text=True)
        self._stop_timeout_s = stop_timeout_s

    def exited(self, code: int) -> Exception:
        """What to raise when the process ends instead of answering."""
        return RuntimeError(f"exited with code {code}")

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise self.exited(self.process.wait())
        values: dict[str, Any] = json.loads(line)
        return values

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def command(self, line: str) -> dict[str, Any]:
        self.send(line)
        return self.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """Ask it to stop; kill it when it has not within the stop timeout."""
        if self.process.poll() is not None:
            return
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.write("stop\n")
            self.process.stdin.close()
        try:
            self.process.wait(timeout=self._stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
