"""The Dagster UI in a real browser: what a person sees once the demo has archived traffic.

The demo's stack (a moto server as AWS, the real `dagster dev` with the sensor running) takes a
burst of traffic; once the sensor and its archive runs have drained it, headless Chromium
(Debian's `chromium` package, driven by Playwright, no browser download) opens the pages the
README's tour shows and each is compared with the truth: S3 for what the archive holds, the
webserver's GraphQL API for what ran.

- an asset's partitions page: the materialized partitions it counts are the days that hold
  data files in S3, and those days are the ones it lists;
- the latest materialization of a partition: the row count, rows, files and bytes per format
  and the keys written, as S3 holds them;
- the sensor page: running, with ticks, its cursor holding every shard of the stream;
- after a backfill of the days that hold data (what "Materialize" in the UI launches), the
  asset's checks tab: every check named, with the status its evaluation recorded;
- the asset graph, rendered in full (each record asset with its latest event, check results
  and partitions), not the placeholders drawn before the live data arrives.

Slow (about two minutes on two cores): `make test-ui` (installs chromium if missing), or
`pytest demand_assets_tests/e2e/test_ui_browser.py -m slow`. Screenshots go to
`.local/ui-screenshots/` (a failure names the one of the page it failed on);
`UPDATE_SCREENSHOTS=1` writes the README's pictures in `docs/` instead.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import fastavro
import pyarrow.parquet as pq
import pytest

from demand_assets.config import Settings
from demand_assets.local.demo import DEMO_SETTINGS
from demand_assets.local.stack import MotoServer, free_port, provision, stop_process_group
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets.traffic.producer import write_file
from demand_assets_tests.e2e.test_dagster_dev import (
    BACKFILL_DONE,
    BACKFILL_QUERY,
    CHECK_EXECUTIONS,
    LAUNCH_BACKFILL,
    LOCATION,
    PREFIX,
    RECORD_TYPE,
    ROOT,
    RUN_IN_PROGRESS,
    RUN_QUEUED,
    SENSOR,
    Demo,
    _archive_runs,
    _body,
    _changes_read,
    _data_files,
    _day,
    _keys,
    _sensor,
    _start_dagster,
    _wait,
    alive,
    descendants,
)

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
RECORD_TYPES = ("demand", "event", "notification", "sale")
CHECKS = (
    "deleted_rows_keep_no_pii",
    "each_change_once",
    "error_rate_below_0_1_percent",
    "newest_batch_archived",
    "reference_and_partition_follow_the_rules",
    "row_counts_agree",
)
TRAFFIC_CHANGES = 1200
TRAFFIC_RATE = 50.0  # changes a second: about 25 s of traffic
UI_TIMEOUT_MS = 60_000  # the UI is a React app fed by GraphQL polls: be patient
PAGE = {"width": 1600, "height": 1000}
# Wide enough that the whole graph fits at a zoom where Dagster draws full nodes (at a scale
# under 0.6 it draws name-only placeholders).
GRAPH_PAGE = {"width": 2560, "height": 1000}
UPDATE = os.environ.get("UPDATE_SCREENSHOTS") == "1"
SHOTS = ROOT / "docs" if UPDATE else ROOT / ".local" / "ui-screenshots"
FAILED_SHOTS = ROOT / ".local" / "ui-screenshots"


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: this test drives Debian's chromium package. "
            "`make test-ui` installs it (apt-get install -y chromium) and runs this test."
        )
    return CHROMIUM


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """moto + `dagster dev` on a fresh instance, with a burst of demo traffic put on the stream;
    yields the running `dagster dev` and the number of changes put, once the traffic ended."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    handles = []

    def log(name: str):
        handles.append(open(tmp_path / f"{name}.log", "wb"))  # noqa: SIM115
        return handles[-1]

    moto = MotoServer.start(log=log("moto"))
    processes: list[subprocess.Popen] = [moto.process]
    try:
        for name, value in moto.environment().items():
            monkeypatch.setenv(name, value)
        env = {**os.environ, **DEMO_SETTINGS, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        provision(Settings.from_env(env))
        changes = ChangeGenerator(
            seed=7, days=3, other_type_share=0.02, malformed_share=0.005
        ).changes(TRAFFIC_CHANGES)
        write_file(tmp_path / "traffic.txt", changes)
        dagster = _start_dagster(env, free_port(), log("dagster"))
        processes.append(dagster.process)
        traffic = subprocess.Popen(
            [sys.executable, "-m", "demand_assets.cli", "traffic"]
            + ["--replay", str(tmp_path / "traffic.txt"), "--rate", str(TRAFFIC_RATE)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log("traffic"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(traffic)
        traffic.wait(TRAFFIC_CHANGES / TRAFFIC_RATE + 120)
        assert traffic.returncode == 0, (tmp_path / "traffic.log").read_text()
        yield dagster, len(changes)
    finally:
        tree = {k: v for p in processes for k, v in descendants(p.pid).items()}
        for process in reversed(processes):
            stop_process_group(process)
        for pid, _ in alive(tree):  # only processes this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for handle in handles:
            handle.close()
        if (tmp_path / "dagster.log").exists():
            tail = (tmp_path / "dagster.log").read_text(errors="replace").splitlines()[-25:]
            print("--- dagster.log, last lines:", *tail, sep="\n")


# --- what the archive holds ----------------------------------------------------------------


def _drained(demo: Demo, s3, sent: int) -> bool:
    """Every change put was read into a landed batch, none is pending, no archive run waits."""
    read = _changes_read(s3)
    assert read <= sent, f"{read} changes landed of {sent}: one landed twice"
    if read < sent or _archive_runs(demo, *RUN_QUEUED, *RUN_IN_PROGRESS):
        return False
    return not _keys(s3, f"{PREFIX}/landing/_pending/")


def _days_with_data(s3) -> list[str]:
    """The partition dates under which S3 holds data files (names starting with `_` or `.`
    are not data), the same in both formats."""
    days = {}
    for fmt in ("avro", "parquet"):
        keys = _keys(s3, f"{PREFIX}/{fmt}/{RECORD_TYPE}/")
        leaves = [k for k in keys if k.endswith(f".{fmt}") and k.rsplit("/", 1)[1][0] not in "_."]
        days[fmt] = {_day(k) for k in leaves}
    assert days["avro"] == days["parquet"], days
    return sorted(days["parquet"])


def _partition_in_s3(s3, day: str) -> dict[str, str]:
    """What a partition holds, as the materialization's metadata should show it."""
    files = {fmt: _data_files(s3, fmt, day) for fmt in ("avro", "parquet")}
    rows = {
        "avro": sum(
            sum(1 for _ in fastavro.reader(io.BytesIO(_body(s3, k)))) for k in files["avro"]
        ),
        "parquet": sum(
            pq.read_metadata(io.BytesIO(_body(s3, k))).num_rows for k in files["parquet"]
        ),
    }
    assert rows["avro"] == rows["parquet"], (day, rows)
    shown = {"dagster/row_count": str(rows["parquet"])}
    for fmt, keys in files.items():
        size = sum(
            s3.head_object(Bucket=DEMO_SETTINGS["DEMAND_BUCKET"], Key=k)["ContentLength"]
            for k in keys
        )
        shown.update({f"{fmt}_rows": str(rows[fmt]), f"{fmt}_files": str(len(keys))})
        shown[f"{fmt}_bytes"] = str(size)
    return shown


# --- the browser ---------------------------------------------------------------------------


@contextlib.contextmanager
def _on(page, name: str):
    """A step on one page: a failure saves what the page showed and names it in the report."""
    try:
        yield
    except Exception as exc:
        FAILED_SHOTS.mkdir(parents=True, exist_ok=True)
        shot = FAILED_SHOTS / f"failed-{name}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shot), full_page=True)
        said = ""
        with contextlib.suppress(Exception):
            said = page.inner_text("body")[-2000:]
        exc.add_note(f"{name}: {page.url}\nscreenshot: {shot}\nthe page showed:\n{said}")
        raise


def _shoot(page, name: str, clip: dict | None = None) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), clip=clip)


def _metadata(page, key: str):
    """The value cell of a metadata table's row `key`."""
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=key, exact=True))
    return row.get_by_role("cell").nth(1)


def _graph_option(page, wanted: str, done: str) -> None:
    """Choose `wanted` in the graph's settings menu unless it already shows `done`."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="settings", exact=True).click()  # the graph's gear
    items = page.get_by_role("menuitem")
    expect(items.filter(has_text="Show stub assets")).to_be_visible()
    if items.filter(has_text=wanted).count():
        items.filter(has_text=wanted).click()
        expect(items.filter(has_text=done)).to_be_visible()
    page.keyboard.press("Escape")
    expect(items).to_have_count(0)


def test_the_ui_shows_what_the_archive_holds(chromium, stack):
    from playwright.sync_api import expect, sync_playwright

    began = time.monotonic()
    demo, sent = stack
    s3 = demo.s3()
    _wait("the pipeline to drain", 240, lambda: _drained(demo, s3, sent), interval=3.0)
    drained_at = time.monotonic() - began
    days = _days_with_data(s3)
    assert days, "nothing archived for demand"
    newest = days[-1]
    in_s3 = _partition_in_s3(s3, newest)
    print(f"drained after {drained_at:.0f} s: {RECORD_TYPE} holds {days}; {newest}: {in_s3}")

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=PAGE)
            page.set_default_timeout(UI_TIMEOUT_MS)

            # The partitions page counts as materialized exactly the days that hold data.
            with _on(page, "partitions"):
                page.goto(f"{demo.ui}/assets/{RECORD_TYPE}?view=partitions")
                counted = page.get_by_text(re.compile(r"^Materialized \(\d+\)$"))
                expect(counted).to_have_text(f"Materialized ({len(days)})")
                expect(page.get_by_text(re.compile(r"^Failed \(\d+\)$"))).to_have_text("Failed (0)")
                page.get_by_text(re.compile(r"^Missing \(\d+\)$")).click()  # hide the missing
                expect(page.get_by_text(f"{len(days)} Partitions Selected")).to_be_visible()
                for day in days:  # each in the list of partitions shown
                    expect(page.get_by_text(day, exact=True).filter(visible=True)).to_be_visible()
                _shoot(page, "partitions")

            # Its latest materialization shows what the partition holds in S3.
            with _on(page, "metadata"):
                page.get_by_text(newest, exact=True).filter(visible=True).click()
                expect(page.get_by_text("Latest materialization")).to_be_visible()
                for key, value in in_s3.items():
                    expect(_metadata(page, key)).to_have_text(value)
                for fmt in ("avro", "parquet"):
                    written = json.loads(_metadata(page, f"{fmt}_written").inner_text())
                    assert written, f"{fmt}_written shows no key"
                    holds = set(_data_files(s3, fmt, newest))
                    assert set(written) <= holds, f"{fmt}: {set(written) - holds} not in S3"
                _shoot(page, "metadata")

            # The sensor page: running, with ticks, its cursor on every shard of the stream.
            with _on(page, "sensor"):
                page.goto(f"{demo.ui}/locations/{LOCATION}/sensors/{SENSOR}")
                running = page.get_by_role("row").filter(
                    has=page.get_by_role("cell", name="Running", exact=True)
                )
                expect(running.get_by_role("checkbox")).to_be_checked()
                ticks = page.get_by_role("row").filter(has_text=re.compile(r"\d+ runs? requested"))
                expect(ticks.first).to_be_visible()
                assert ticks.count() >= 2, "fewer than two ticks shown"
                expect(ticks.filter(has_text="1 run requested").first).to_be_visible()
                cursor = json.loads(_metadata(page, "Cursor").inner_text().split("\n")[0])
                shards = boto3.client("kinesis").list_shards(
                    StreamName=DEMO_SETTINGS["DEMAND_STREAM_NAME"]
                )["Shards"]
                assert set(cursor["shards"]) == {s["ShardId"] for s in shards}, cursor
                assert _sensor(demo)["sensorState"]["status"] == "RUNNING"
                _shoot(page, "sensor")

            # "Materialize" of the days that hold data (a backfill) runs the checks; the checks
            # tab then shows each with the status its evaluation recorded.
            launched = demo.graphql(
                LAUNCH_BACKFILL,
                backfillParams={
                    "tags": [],
                    "assetSelection": [{"path": [RECORD_TYPE]}],
                    "partitionNames": days,
                    "fromFailure": False,
                },
            )["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched

            def finished():
                found = demo.graphql(BACKFILL_QUERY, id=launched["backfillId"])
                backfill = found["partitionBackfillOrError"]
                return backfill if backfill["status"] in BACKFILL_DONE else None

            backfill = _wait("the backfill to complete", 240, finished)
            assert backfill["status"] == "COMPLETED_SUCCESS", backfill
            runs = {r["runId"] for r in backfill["runs"]}
            recorded = {}
            for name in CHECKS:
                executions = demo.graphql(
                    CHECK_EXECUTIONS, asset={"path": [RECORD_TYPE]}, check=name
                )["assetCheckExecutions"]
                found = [e["evaluation"] for e in executions if e["runId"] in runs]
                recorded[name] = [e for e in found if e]
                assert recorded[name], f"{name}: no evaluation in the backfill"
            failed = [
                (name, e["partition"])
                for name, found in recorded.items()
                for e in found
                if e["severity"] == "ERROR" and not e["success"]
            ]
            assert not failed, f"ERROR checks failed: {failed}"
            # The checks tab shows each check's latest execution: the newest partition's.
            expected = {}
            for name, found in recorded.items():
                latest = [e for e in found if e["partition"] == newest] or found
                expected[name] = "Succeeded" if all(e["success"] for e in latest) else "Failed"
            print(f"checks after the backfill: {expected}")

            with _on(page, "checks"):
                page.goto(f"{demo.ui}/assets/{RECORD_TYPE}?view=checks")
                expect(page.get_by_text(f"Checks ({len(CHECKS)})")).to_be_visible()
                for name, status in expected.items():
                    row = page.locator("span", has=page.get_by_title(name, exact=True)).first
                    expect(row).to_be_visible()
                    expect(row).to_contain_text(status)
                page.get_by_title("row_counts_agree", exact=True).first.click()
                expect(page.get_by_text("Evaluation result")).to_be_visible()
                _shoot(page, "checks")

            # The asset graph, every group open, drawn in full once the live data arrived.
            graph = browser.new_page(viewport=GRAPH_PAGE)
            graph.set_default_timeout(UI_TIMEOUT_MS)
            with _on(graph, "asset-graph"):
                graph.goto(f"{demo.ui}/asset-groups")
                expect(graph.get_by_text("Global asset lineage")).to_be_visible()
                _graph_option(graph, "Expand all groups", "Collapse all groups")
                _graph_option(graph, "vertical orientation", "horizontal orientation")
                graph.get_by_role("button", name="Hide navigation").click()
                graph.reload()  # a fresh load fits the whole graph in the view
                for record_type in RECORD_TYPES:
                    node = graph.locator("foreignObject").filter(
                        has=graph.get_by_text(record_type, exact=True)
                    )
                    expect(node).to_contain_text(re.compile(r"Latest event\s*(an?|\d+) \w+ ago"))
                    expect(node).to_contain_text(re.compile(r"Partitions\s*\d+% filled"))
                    expect(node).to_contain_text(re.compile(r"Asset checks\s*\d+ / \d+"))
                passed = sum(status == "Succeeded" for status in expected.values())
                node = graph.locator("foreignObject").filter(
                    has=graph.get_by_text(RECORD_TYPE, exact=True)
                )
                expect(node).to_contain_text(
                    re.compile(rf"Asset checks\s*{passed} / {len(CHECKS)} Passed")
                )
                _shoot(graph, "asset-graph", clip={"x": 0, "y": 0, "width": 2560, "height": 760})
        finally:
            browser.close()
    print(f"done after {time.monotonic() - began:.0f} s (drained after {drained_at:.0f} s)")
