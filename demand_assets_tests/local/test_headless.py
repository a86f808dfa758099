"""`demand-assets headless` as a person runs it, on a small traffic: a quiet console (a line per
sensor tick, then the summary), Dagster's own output in the log file, exit 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys

TICK = re.compile(
    r"^tick +\d+: read [\d,]+ changes?, \d+ partitions?, lag [\d.]+ s; "
    r"(no run|\d+ runs? requested); [\d,]+ of [\d,]+ archived$"
)
CHECKS = (
    "deleted_rows_keep_no_pii",
    "each_change_once",
    "error_rate_below_0_1_percent",
    "newest_batch_archived",
    "reference_and_partition_follow_the_rules",
    "row_counts_agree",
)


def test_the_console_shows_ticks_and_a_summary_and_dagster_writes_to_its_log(tmp_path):
    log = tmp_path / "logs" / "dagster.log"
    env = {**os.environ, "DEMAND_BUFFER_SECONDS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "demand_assets.cli",
            "headless",
            "--records",
            "200",
            "--interval",
            "1",
            "--types",
            "demand",
            "--log-file",
            str(log),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert done.stderr == ""  # Dagster's events, run logs and warnings went to the log file
    assert not [line for line in lines if "DEBUG" in line or " - dagster - " in line]

    ticks = [line for line in lines if line.startswith("tick ")]
    assert ticks and all(TICK.match(line) for line in ticks), ticks
    summary = [line for line in lines if not line.startswith("tick ")]
    assert len(summary) <= 12 + 3 * len(CHECKS), summary  # bounded, whatever the traffic
    assert summary[0] == f"headless: 200 changes at 500/s; Dagster's event log: {log}"
    assert ticks[-1].endswith(" archived") and re.search(r"(\d+) of \1 archived$", ticks[-1])
    assert re.search(r"^archived: \d+ changes visible in Parquet, 0 lost$", done.stdout, re.M)
    assert re.search(r"^checks: \d+ passed, \d+ warned, 0 failed", done.stdout, re.M)
    for name in CHECKS:
        assert re.search(rf"^  (passed|warned) {name} \((ERROR|WARN)\): ", done.stdout, re.M)
    assert lines[-2].startswith("exit 0: no ERROR check failed, no change lost")
    assert lines[-1] == f"Dagster's event log: {log}"

    written = log.read_text()
    assert " - dagster - DEBUG - " in written
    for event in ("RUN_START", "STEP_SUCCESS", "ASSET_CHECK_EVALUATION", "RUN_SUCCESS"):
        assert event in written, event
    assert re.search(r" - dagster - INFO - batch \S+: 200 changes", written)  # the sensor's log
