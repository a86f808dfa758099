"""Keeping up under the real Dagster daemon: steady traffic through `dagster dev`.

The local stack as a user runs it: a moto server (its own process) holds the stream, the
bucket and Glue; `dagster dev` runs the webserver, the daemon (sensor, run queue, run
monitoring) and the code server, and every run is a new process (the default run launcher).
A producer puts `--rate` changes/s for `--minutes` minutes, with the generator's scatter
(demand and notifications of the last day, events and sales months ahead, a few records of
other types and malformed ones). While it runs the benchmark samples, over GraphQL, the
archive runs queued and in progress; it watches the archive for each change to appear in a
Parquet file; and it lists the files per partition. After the traffic stops it waits up to
`--drain-minutes` for every change to be archived, then reads every data file of both
formats and checks that each archivable change is there exactly once.

Reported: put -> Parquet-visible latency p50/p95/max; queued and in-progress runs over time;
runs launched, their queue wait and run time; the fixed cost of a run (process start and
code location import, against the same import measured alone); files per partition and
records per file; CPU seconds per 1,000 changes of every process of `dagster dev` (the
emulator's own CPU apart); drain time; the exactly-once verdict.

    .venv/bin/python benchmarks/daemon_keepup.py --rate 20 --minutes 15
    .venv/bin/python benchmarks/daemon_keepup.py --rate 200 --minutes 10 --shards 4 \
        --kinesis kinesalite

At 200 changes/s the stream is served by kinesalite (benchmarks/emulators.py says why: moto's
Kinesis costs a core's CPU per 200 puts/s by the tenth minute), S3 and Glue by moto.

Targets (2 cores): 20/s for 15 min: queue never above its bound (1 queued + 1 in progress),
p95 < 60 s, drained within 2 min. 200/s for 10 min: queue bounded, p95 < 120 s, drained
within 3 min. Both: every change exactly once in both formats.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import fastavro
import orjson
import pyarrow.parquet as pq
import requests

from demand_assets.config import Settings
from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.partitions import partition_window
from demand_assets.environment import partitions_from_settings
from demand_assets.local.observe import percentile
from demand_assets.local.stack import MotoServer, free_port, provision, stop_process_group
from demand_assets.records import Archivable, decode_change
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets.traffic.producer import paced, put

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulators import Kinesalite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "DEMAND_BUCKET": "demand-archive-bench",
    "DEMAND_PREFIX": "demand",
    "DEMAND_STREAM_NAME": "demand-capture-bench",
    "DEMAND_STREAM_START": "TRIM_HORIZON",
    "DEMAND_GLUE_DATABASE": "demand_bench",
    "DEMAND_QUERY_ENGINE": "duckdb",
}
RUNS_QUERY = """
query ($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    ... on Runs { count results { runId status creationTime startTime endTime } }
  }
}
"""
QUEUED = ["QUEUED", "NOT_STARTED", "STARTING"]
IN_PROGRESS = ["STARTED", "CANCELING"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- processes ---------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / CLOCK_TICKS


def tree_cpu(root: int) -> float:
    """CPU seconds of a process tree so far: every live process, and every child they reaped
    (a finished run's worker counts once its parent has waited for it)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo += children.get(pid, [])
    return total


def import_seconds(env: dict) -> float:
    """Wall time of a fresh process that imports the code location: a run's floor."""
    code = "import demand_assets.definitions"
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return time.monotonic() - started


# -- the stack ---------------------------------------------------------------------------------


def start_dagster(home: Path, env: dict, port: int, log) -> subprocess.Popen:
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    return subprocess.Popen(
        [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env={**env, "DAGSTER_HOME": str(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


class GraphQL:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"

    def runs(self, statuses: list[str] | None = None) -> dict:
        run_filter: dict = {"pipelineName": ARCHIVE_JOB}
        if statuses:
            run_filter["statuses"] = statuses
        response = requests.post(
            self.url, json={"query": RUNS_QUERY, "variables": {"filter": run_filter}}, timeout=60
        )
        response.raise_for_status()
        return response.json()["data"]["runsOrError"]

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.runs()
                return
            except (requests.RequestException, KeyError, TypeError):
                time.sleep(1.0)
        raise TimeoutError("dagster dev did not answer GraphQL")


# -- watching the archive ----------------------------------------------------------------------


def _list(s3, bucket: str, prefix: str) -> list[dict]:
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += page.get("Contents", [])
    return out


def _is_data(key: str, prefix: str) -> bool:
    return not any(p.startswith(("_", ".")) for p in key[len(prefix) :].split("/"))


class Watcher:
    """When each change first appears in a Parquet file; files per partition over time."""

    def __init__(self, s3, settings: Settings):
        self.s3, self.bucket = s3, settings.bucket
        self.prefix = f"{settings.prefix}/parquet/"
        self.seen: set[str] = set()
        self.visible_at: dict[str, float] = {}
        self.max_files = 0  # the most data files one partition held at a sample
        self.pool = ThreadPoolExecutor(8)

    def _ids(self, key: str) -> list[str]:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        table = pq.read_table(io.BytesIO(body), columns=["provenance"])
        return [p["eventID"] for p in table.column("provenance").to_pylist()]

    def poll(self) -> None:
        keys = [o["Key"] for o in _list(self.s3, self.bucket, self.prefix)]
        keys = [k for k in keys if _is_data(k, self.prefix)]
        per_partition = Counter(k.rsplit("/", 1)[0] for k in keys)
        self.max_files = max([self.max_files, *per_partition.values()])
        new = [k for k in keys if k not in self.seen]
        now = time.monotonic()
        for key, ids in zip(new, self.pool.map(self._safe_ids, new), strict=True):
            if ids is None:
                continue  # replaced by a merge between the listing and the read
            self.seen.add(key)
            for event_id in ids:
                self.visible_at.setdefault(event_id, now)

    def _safe_ids(self, key: str) -> list[str] | None:
        try:
            return self._ids(key)
        except self.s3.exceptions.NoSuchKey:
            return None


def verdict(s3, settings: Settings, expected: set[str]) -> dict:
    """Every data file of both formats read back: each expected change exactly once."""
    result: dict = {}
    for fmt in ("avro", "parquet"):
        prefix = f"{settings.prefix}/{fmt}/"
        objects = [o for o in _list(s3, settings.bucket, prefix) if _is_data(o["Key"], prefix)]
        counts: Counter = Counter()
        for obj in objects:
            body = s3.get_object(Bucket=settings.bucket, Key=obj["Key"])["Body"].read()
            if fmt == "avro":
                ids = [r["provenance"]["eventID"] for r in fastavro.reader(io.BytesIO(body))]
            else:
                table = pq.read_table(io.BytesIO(body), columns=["provenance"])
                ids = [p["eventID"] for p in table.column("provenance").to_pylist()]
            counts.update(ids)
        partitions = Counter(o["Key"].rsplit("/", 1)[0] for o in objects)
        result[fmt] = {
            "files": len(objects),
            "partitions": len(partitions),
            "max_files_per_partition": max(partitions.values(), default=0),
            "records_per_file": round(sum(counts.values()) / max(1, len(objects)), 1),
            "missing": len(expected - set(counts)),
            "doubled": sum(1 for n in counts.values() if n > 1),
            "unexpected": len(set(counts) - expected),
        }
    result["exactly_once"] = all(
        result[f]["missing"] == result[f]["doubled"] == result[f]["unexpected"] == 0
        for f in ("avro", "parquet")
    )
    return result


# -- the run -----------------------------------------------------------------------------------


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="daemon-keepup-"))
    logs = ROOT / ".local" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    moto = MotoServer.start()
    kinesalite = Kinesalite.start() if args.kinesis == "kinesalite" else None
    emulators = [moto.process.pid] + ([kinesalite.process.pid] if kinesalite else [])
    env = {**os.environ, **moto.environment(), **SETTINGS}
    if kinesalite:
        env.update(kinesalite.environment())
    os.environ.update(env)
    settings = Settings.from_env(env)
    provision(settings, shards=args.shards)
    window = partition_window(partitions_from_settings(settings))
    imports = sorted(import_seconds(env) for _ in range(3))

    total = int(args.rate * args.minutes * 60)
    changes = ChangeGenerator(seed=args.seed).changes(total)
    archivable = {}
    for change in changes:
        decoded = decode_change(change.data, "-", "-", window)
        if type(decoded) is Archivable:
            archivable[id(change)] = decoded.record["provenance"]["eventID"]
    expected = set(archivable.values())

    port = free_port()
    log = open(logs / f"daemon_keepup-{args.rate:g}.log", "wb")  # noqa: SIM115
    dagster = start_dagster(home, env, port, log)
    graphql = GraphQL(port)
    kinesis, s3 = boto3.client("kinesis"), boto3.client("s3")
    watcher = Watcher(s3, settings)
    put_at: dict[str, float] = {}
    samples: list[dict] = []
    stop_sampling = threading.Event()
    try:
        graphql.wait_ready()
        time.sleep(5.0)  # let the daemon settle: the sensor's first ticks find nothing
        cpu_before = tree_cpu(dagster.pid)
        moto_before = sum(tree_cpu(pid) for pid in emulators)

        def sample() -> None:
            started = time.monotonic()
            while not stop_sampling.is_set():
                queued = graphql.runs(QUEUED)["count"]
                running = graphql.runs(IN_PROGRESS)["count"]
                samples.append(
                    {
                        "t": round(time.monotonic() - started, 1),
                        "queued": queued,
                        "in_progress": running,
                    }
                )
                stop_sampling.wait(args.sample_seconds)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        traffic_started = time.monotonic()
        next_poll = time.monotonic()
        for chunk in paced(changes, args.rate):
            put(kinesis, settings.stream_name, chunk)
            now = time.monotonic()
            for change in chunk:
                event_id = archivable.get(id(change))
                if event_id is not None:
                    put_at.setdefault(event_id, now)
            if now >= next_poll:
                watcher.poll()
                next_poll = now + args.poll_seconds
        traffic_stopped = time.monotonic()
        deadline = traffic_stopped + args.drain_minutes * 60
        while time.monotonic() < deadline and len(watcher.visible_at.keys() & expected) < len(
            expected
        ):
            time.sleep(args.poll_seconds)
            watcher.poll()
        drained_at = time.monotonic()
        # let a run in flight finish, so the counts are final
        while time.monotonic() < drained_at + 120 and (
            graphql.runs(QUEUED)["count"] or graphql.runs(IN_PROGRESS)["count"]
        ):
            time.sleep(2.0)
        stop_sampling.set()
        sampler.join(timeout=60)
        cpu = tree_cpu(dagster.pid) - cpu_before
        moto_cpu = sum(tree_cpu(pid) for pid in emulators) - moto_before
        runs = graphql.runs()["results"]
        checked = verdict(s3, settings, expected)
    finally:
        stop_sampling.set()
        stop_process_group(dagster)
        log.close()
        moto.stop()
        if kinesalite:
            kinesalite.stop()
        shutil.rmtree(work, ignore_errors=True)

    visible = {e: watcher.visible_at[e] - put_at[e] for e in expected if e in watcher.visible_at}
    latencies = list(visible.values())
    finished = [r for r in runs if r["startTime"] and r["endTime"]]
    waits = [r["startTime"] - r["creationTime"] for r in finished]
    durations = [r["endTime"] - r["startTime"] for r in finished]
    all_in = len(visible) == len(expected)
    last_visible = max(watcher.visible_at[e] for e in visible) if visible else traffic_stopped
    return {
        "rate": args.rate,
        "minutes": args.minutes,
        "shards": args.shards,
        "kinesis": args.kinesis,
        "changes_put": total,
        "archivable": len(expected),
        "latency_s": {
            "p50": round(percentile(latencies, 0.5), 1) if latencies else None,
            "p95": round(percentile(latencies, 0.95), 1) if latencies else None,
            "max": round(max(latencies), 1) if latencies else None,
        },
        "archived_in_parquet": len(visible),
        "drained_within_s": round(max(0.0, last_visible - traffic_stopped), 1) if all_in else None,
        "traffic_s": round(traffic_stopped - traffic_started, 1),
        "queue": {
            "max_queued": max((s["queued"] for s in samples), default=0),
            "max_in_progress": max((s["in_progress"] for s in samples), default=0),
            "samples": samples,
        },
        "runs": {
            "launched": len(runs),
            "statuses": dict(Counter(r["status"] for r in runs)),
            "queue_wait_p50_s": round(percentile(waits, 0.5), 1) if waits else None,
            "run_time_p50_s": round(percentile(durations, 0.5), 1) if durations else None,
            "run_time_p95_s": round(percentile(durations, 0.95), 1) if durations else None,
            "import_alone_s": round(imports[1], 2),
        },
        "files": {"max_files_per_partition_seen": watcher.max_files, **checked},
        "cpu": {
            "dagster_s": round(cpu, 1),
            "dagster_s_per_1000_changes": round(cpu / total * 1000, 2),
            "emulator_s": round(moto_cpu, 1),
        },
    }


def report(figures: dict) -> None:
    latency, queue, runs, files, cpu = (
        figures["latency_s"],
        figures["queue"],
        figures["runs"],
        figures["files"],
        figures["cpu"],
    )
    print(
        f"daemon keep-up: {figures['rate']:g} changes/s for {figures['minutes']:g} min "
        f"({figures['changes_put']:,} put, {figures['archivable']:,} archivable, "
        f"{figures['shards']} shards, Kinesis on {figures['kinesis']}), real `dagster dev`"
    )
    print(
        "  latency put -> Parquet: "
        f"p50 {latency['p50']} s, p95 {latency['p95']} s, max {latency['max']} s"
    )
    print(
        f"  queue: at most {queue['max_queued']} queued and {queue['max_in_progress']} in progress "
        f"({len(queue['samples'])} samples)"
    )
    print(
        f"  runs: {runs['launched']} launched {runs['statuses']}; queue wait p50 "
        f"{runs['queue_wait_p50_s']} s, run time p50 {runs['run_time_p50_s']} s / p95 "
        f"{runs['run_time_p95_s']} s; code location import alone {runs['import_alone_s']} s"
    )
    print(
        f"  archived: {figures['archived_in_parquet']:,} of {figures['archivable']:,}; drained "
        f"{figures['drained_within_s']} s after the traffic stopped"
    )
    for fmt in ("avro", "parquet"):
        f = files[fmt]
        print(
            f"  {fmt:8s} {f['files']:,} files in {f['partitions']:,} partitions, at most "
            f"{f['max_files_per_partition']} per partition, {f['records_per_file']} records/file; "
            f"missing {f['missing']}, doubled {f['doubled']}, unexpected {f['unexpected']}"
        )
    print(f"  most files one partition held at any sample: {files['max_files_per_partition_seen']}")
    print(
        f"  CPU: {cpu['dagster_s']} s over dagster dev's processes = "
        f"{cpu['dagster_s_per_1000_changes']} s per 1,000 changes (emulator: {cpu['emulator_s']} s)"
    )
    print(f"  exactly once in both formats: {'yes' if files['exactly_once'] else 'NO'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--drain-minutes", type=float, default=3.0)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--kinesis",
        choices=["moto", "kinesalite"],
        default="moto",
        help="the stream's emulator (S3 and Glue are on moto either way): benchmarks/emulators.py",
    )
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    figures = run(args)
    report(figures)
    out = args.json or ROOT / ".local" / "bench" / f"daemon_keepup-{args.rate:g}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    print(f"  figures: {out}")
    return 0 if figures["files"]["exactly_once"] else 1


if __name__ == "__main__":
    sys.exit(main())
