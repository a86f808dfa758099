"""A pipeline step in a process of its own (`faults/child.py`), for the race and kill tests:
started, held at the fault proxy, then SIGKILLed there or let finish, while the test process
does other steps of the pipeline at the same time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from demand_assets_tests.faults.definitions import child_settings
from demand_assets_tests.faults.proxy import Fault

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 120  # a child imports the code location before it reaches AWS


class Child:
    """`python -m demand_assets_tests.faults.child COMMAND SETTINGS ARGS...`, against whatever
    `AWS_ENDPOINT_URL` says (the proxy). Its stderr goes to a file (Dagster logs a lot; a pipe
    nobody reads would block it) and is shown when it fails."""

    def __init__(self, settings, command: str, *args: str):
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "demand_assets_tests.faults.child",
                command,
                json.dumps(child_settings(settings)),
                *args,
            ],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()

    def held(self, fault: Fault, timeout: float = START_SECONDS) -> None:
        """Wait until the proxy holds the child's call that `fault` matches."""
        if not fault.held.wait(timeout):
            raise AssertionError(
                f"the child never made the held call ({fault.describe()}) within "
                f"{timeout:.0f} s; exit {self.process.poll()}\n{self.stderr()}"
            )

    def kill(self) -> str:
        """SIGKILL; returns what it had printed (nothing, if it died before finishing)."""
        self.process.send_signal(signal.SIGKILL)
        out, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == -signal.SIGKILL, self.process.returncode
        return out.decode()

    def finish(self, timeout: float = 180) -> dict:
        """Wait for it to end by itself; it must succeed. Returns the JSON line it printed."""
        out, _ = self.process.communicate(timeout=timeout)
        assert self.process.returncode == 0, (
            f"the child failed (exit {self.process.returncode})\n{self.stderr()}"
        )
        return json.loads(out.decode().strip().splitlines()[-1])

    def stderr(self, tail: int = 6000) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-tail:]


def kill_when_held(child: Child, fault: Fault) -> str:
    """SIGKILL the child as soon as the proxy holds the faulted call, then release the hold."""
    try:
        child.held(fault)
        return child.kill()
    finally:
        fault.release()
