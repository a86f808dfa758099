"""The demo on the local stack: a moto server as AWS, traffic, and `dagster dev` with the
sensor running; the console prints a line per sensor tick that landed a batch, the processes'
own output goes to `.local/logs/`. (Without the UI: local/headless.py.)"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from demand_assets.config import Settings
from demand_assets.local.observe import ArchiveWatcher, BatchWatcher
from demand_assets.local.report import tick_line
from demand_assets.local.stack import MotoServer, provision, stop_process_group, wait_for_port

DEMO_SETTINGS = {
    "DEMAND_BUCKET": "demand-archive-local",
    "DEMAND_PREFIX": "demand",
    "DEMAND_STREAM_NAME": "demand-capture-local",
    "DEMAND_STREAM_START": "TRIM_HORIZON",
    "DEMAND_GLUE_DATABASE": "demand_local",
    "DEMAND_QUERY_ENGINE": "duckdb",
}


def _fresh_home(root: Path) -> Path:
    """The Dagster instance of the demo, inside the project (git-ignored). The emulator keeps
    no state across restarts, so neither does the instance: every start is a clean one."""
    home = root / ".local" / "dagster_home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(root / "dagster.yaml", home / "dagster.yaml")
    return home


def demo_environment(moto: MotoServer, home: Path | None = None) -> dict[str, str]:
    env = {**os.environ, **moto.environment(), **DEMO_SETTINGS}
    for name, value in DEMO_SETTINGS.items():
        env[name] = os.environ.get(name, value)
    if home is not None:
        env["DAGSTER_HOME"] = str(home)
    return env


def _reset_sigint() -> None:
    # `dagster dev` ignores SIGINT/SIGTERM when started with SIGINT ignored (as a background
    # job of a script is); give it the default back so Ctrl-C and SIGTERM reach it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_demo(root: Path, *, rate: float, port: int, noise: bool = True) -> int:
    logs = root / ".local" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    home = _fresh_home(root)
    log_files = {name: open(logs / f"{name}.log", "wb") for name in ("moto", "traffic", "dagster")}  # noqa: SIM115
    moto = MotoServer.start(log=log_files["moto"])
    env = demo_environment(moto, home)
    env.setdefault("DEMAND_UI_URL", f"http://127.0.0.1:{port}")  # the alerts' links
    os.environ.update(env)
    provision(Settings.from_env(env))
    children: list[tuple[str, subprocess.Popen]] = [("moto server", moto.process)]
    traffic_args = [sys.executable, "-m", "demand_assets.cli", "traffic", "--rate", str(rate)]
    if noise:
        traffic_args.append("--noise")
    children.append(
        (
            "traffic",
            subprocess.Popen(
                traffic_args,
                env=env,
                stdout=log_files["traffic"],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ),
        )
    )
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    children.append(
        (
            "dagster dev",
            subprocess.Popen(
                [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                cwd=root,
                env=env,
                stdout=log_files["dagster"],
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_reset_sigint,
            ),
        )
    )
    stopping = threading.Event()

    def stop(signum=None, frame=None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        wait_for_port(port, timeout=120)
        print(f"Dagster UI: http://127.0.0.1:{port}   (AWS emulator: {moto.endpoint})")
        print(f"Traffic: {rate:g} changes/s into {env['DEMAND_STREAM_NAME']}; logs in {logs}")
        print("Ctrl-C (or SIGTERM to this process) stops everything.", flush=True)
        ticks = _Ticks(Settings.from_env(env))
        while not stopping.wait(1.0):
            ticks.poll()
            for name, child in children:
                if child.poll() is not None:
                    print(f"{name} exited with {child.returncode}; stopping", flush=True)
                    stopping.set()
    finally:
        for _, child in reversed(children):
            stop_process_group(child)
        for handle in log_files.values():
            handle.close()
        print("stopped", flush=True)
    return 0


class _Ticks:
    """A line per batch the sensor landed (one per tick that read changes), read from the
    batch summaries in S3 every few seconds, with what the archive shows by then."""

    EVERY = 5.0

    def __init__(self, settings: Settings):
        s3 = boto3.client("s3")
        self.batches = BatchWatcher(s3, settings.bucket, settings.prefix)
        self.archive = ArchiveWatcher(s3, settings.bucket, settings.prefix)
        self.last = 0.0

    def poll(self) -> None:
        if time.monotonic() - self.last < self.EVERY:
            return
        self.last = time.monotonic()
        try:
            new = self.batches.poll()
            self.archive.poll()
        except (BotoCoreError, ClientError):
            return  # the emulator is stopping: the children's watch says so
        for batch in new:
            print(tick_line(_landed_at(batch.batch), [batch], None, len(self.archive.visible_at)))
        sys.stdout.flush()


def _landed_at(batch: str) -> str:
    """`tick 12:07:35` for a batch named `20261203T120735Z-...` (its tick's time, UTC)."""
    try:
        return f"tick {datetime.strptime(batch[:16], '%Y%m%dT%H%M%SZ'):%H:%M:%S}"
    except ValueError:
        return f"batch {batch}"
