"""The demo on the local stack: a moto server as AWS, traffic, and `dagster dev` with the
sensor running (or, headless, the same pipeline in process with a printed summary)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import orjson

from demand_assets.config import Settings
from demand_assets.local.observe import ArchiveWatcher, inventory, percentile
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


def _environment(moto: MotoServer, home: Path | None = None) -> dict[str, str]:
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
    env = _environment(moto, home)
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
        while not stopping.wait(1.0):
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


def run_headless(root: Path, *, records: int, rate: float, interval: float) -> int:
    """The same stack without the UI: N changes through the pipeline, then a summary."""
    import dagster as dg

    from demand_assets.definitions import build_definitions
    from demand_assets.traffic.generator import ChangeGenerator
    from demand_assets.traffic.producer import paced, put

    moto = MotoServer.start()
    try:
        env = _environment(moto)
        os.environ.update(env)
        settings = Settings.from_env(env)
        provision(settings)
        kinesis, s3 = boto3.client("kinesis"), boto3.client("s3")
        changes = ChangeGenerator(
            seed=int(time.time()), other_type_share=0.02, malformed_share=0.005
        ).changes(records)
        put_at: dict[str, float] = {}

        def produce() -> None:
            for chunk in paced(changes, rate):
                put(kinesis, settings.stream_name, chunk)
                now = time.monotonic()
                for change in chunk:
                    if change.kind == "valid":
                        put_at[orjson.loads(change.data)["eventID"]] = now

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        defs = build_definitions(settings)
        instance = dg.DagsterInstance.ephemeral()
        watcher = ArchiveWatcher(s3, settings.bucket, settings.prefix)
        valid = sum(c.kind == "valid" for c in changes)
        started = time.monotonic()
        cursor, runs = _drain(defs, instance, watcher, producer, valid, interval)
        drained = time.monotonic() - started
        checks = _run_checks(defs, instance)
        latencies = [watcher.visible_at[e] - put_at[e] for e in watcher.visible_at if e in put_at]
        _print_summary(
            inventory(s3, settings.bucket, settings.prefix),
            records=records,
            valid=valid,
            drained=drained,
            runs=runs,
            visible=len(watcher.visible_at),
            checks=checks,
            latencies=latencies,
            interval=interval,
        )
        ok = len(watcher.visible_at) >= valid and not checks["failed"]
        return 0 if ok else 1
    finally:
        moto.stop()


def _drain(defs, instance, watcher, producer, valid: int, interval: float):
    """Sensor ticks and their archive runs, in process, until every valid change is visible."""
    from demand_assets.defs.inprocess import evaluate_sensor, execute_request

    cursor, runs, started = None, 0, time.monotonic()
    while True:
        cycle = time.monotonic()
        result = evaluate_sensor(defs, instance, cursor)
        cursor = result.cursor or cursor
        for request in result.run_requests:
            execute_request(defs, instance, request)
            runs += 1
        watcher.poll()
        if not producer.is_alive() and len(watcher.visible_at) >= valid:
            return cursor, runs
        if time.monotonic() - started > 600:
            print("gave up waiting after 600 s", flush=True)
            return cursor, runs
        time.sleep(max(0.0, interval - (time.monotonic() - cycle)))


def _run_checks(defs, instance) -> dict:
    """Every record type's days with data compacted as the nightly run does, with its checks."""
    import dagster as dg

    from demand_assets.defs.inprocess import execute_request
    from demand_assets.defs.rebuilds import check_keys_by_type, consecutive_runs, rebuild_request
    from demand_assets.records import RECORD_TYPES
    from demand_assets.storage.landing import landed_days

    checks: dict = {"passed": [], "failed": [], "warned": []}
    glue_job = defs.resolve_implicit_global_asset_job_def()
    glue_job.execute_in_process(asset_selection=[dg.AssetKey("glue_tables")], instance=instance)
    archive = defs.resources["archive"].archive()
    check_keys = check_keys_by_type(defs.asset_checks or [])
    for record_type in RECORD_TYPES:
        for first, last in consecutive_runs(landed_days(archive, record_type)):
            request = rebuild_request(
                record_type, first, last, f"headless:{record_type}:{first}", check_keys, "demo"
            )
            result = execute_request(defs, instance, request, raise_on_error=False)
            for evaluation in result.get_asset_check_evaluations():
                name = f"{record_type}.{evaluation.check_name}"
                if evaluation.passed:
                    checks["passed"].append(name)
                elif evaluation.severity == dg.AssetCheckSeverity.WARN:
                    checks["warned"].append(name)
                else:
                    checks["failed"].append(name)
    return checks


def _print_summary(summary, *, records, valid, drained, runs, visible, checks, latencies, interval):
    print(f"records in: {records:,} ({valid:,} valid) over {drained:.0f} s, {runs} archive runs")
    for fmt in ("avro", "parquet"):
        f = summary[fmt]
        print(f"{fmt:8s} {f['files']:,} files, {f['bytes']:,} bytes, {f['partitions']} partitions")
    print(f"errors:  {summary['error_documents']} error documents")
    print(f"archived: {visible:,} changes visible in Parquet")
    for outcome in ("passed", "warned", "failed"):
        names = sorted(set(checks[outcome]))
        shown = ", ".join(names) if outcome != "passed" else ""
        print(f"checks {outcome}: {len(checks[outcome])} {shown}".rstrip())
    if latencies:
        print(
            f"latency: p50 {percentile(latencies, 0.5):.1f} s, "
            f"p95 {percentile(latencies, 0.95):.1f} s (sensor every {interval:g} s)"
        )
