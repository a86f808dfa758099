"""What a headless run prints and how it exits: from the check outcomes (one per check and
partition) and the number of lost changes to the exit code and the summary's check lines; and
the line a sensor tick prints."""

from __future__ import annotations

from demand_assets.local.report import CheckOutcome, check_lines, tick_line, verdict
from demand_assets.storage.batches import BatchSummary


def outcome(
    check="each_change_once", severity="ERROR", passed=True, asset="demand", day="2026-11-20", **kw
):
    return CheckOutcome(asset, check, day, severity, passed, **kw)


def clean(days=("2026-11-19", "2026-11-20")) -> list[CheckOutcome]:
    return [
        outcome(check, severity, True, asset, day)
        for asset in ("demand", "sale")
        for day in days
        for check, severity in (("each_change_once", "ERROR"), ("newest_batch_archived", "WARN"))
    ]


def test_all_passed_and_nothing_lost_exits_0():
    result = verdict(clean(), lost=0)
    assert result.exit_code == 0
    assert result.lines[0] == "checks: 8 passed, 0 warned, 0 failed (one per check and partition)"
    assert result.lines[-1] == "exit 0: no ERROR check failed, no change lost"
    assert "  passed each_change_once (ERROR): 4 partitions (demand 2, sale 2)" in result.lines


def test_a_warned_check_is_listed_by_name_and_partition_and_exits_0():
    outcomes = clean() + [outcome("error_rate_below_0_1_percent", "WARN", False, "sale")]
    result = verdict(outcomes, lost=0)
    assert result.exit_code == 0
    assert result.lines[0].startswith("checks: 8 passed, 1 warned, 0 failed")
    assert "  warned error_rate_below_0_1_percent (WARN): sale 2026-11-20" in result.lines
    assert result.lines[-1] == (
        "exit 0: no ERROR check failed, no change lost (1 warned: a WARN check does not fail "
        "the run)"
    )


def test_a_failed_error_check_exits_1_and_says_where():
    outcomes = clean()
    outcomes[0] = outcome("each_change_once", "ERROR", False, "demand", "2026-11-19")
    result = verdict(outcomes, lost=0)
    assert result.exit_code == 1
    assert "  failed each_change_once (ERROR): demand 2026-11-19" in result.lines
    assert "  passed each_change_once (ERROR): 3 partitions (demand 1, sale 2)" in result.lines
    assert result.lines[-1] == "exit 1: 1 ERROR check failed"


def test_a_lost_change_exits_1_even_when_every_check_passed():
    result = verdict(clean(), lost=3)
    assert result.exit_code == 1
    assert result.lines[-1] == "exit 1: 3 changes lost"
    assert verdict(clean(), lost=1).lines[-1] == "exit 1: 1 change lost"
    both = clean() + [outcome(passed=False), outcome(passed=False, asset="sale")]
    assert verdict(both, lost=1).lines[-1] == "exit 1: 2 ERROR checks failed and 1 change lost"


def test_a_check_its_run_never_reported_counts_as_failed():
    outcomes = clean() + [outcome("newest_batch_archived", "ERROR", False, evaluated=False)]
    result = verdict(outcomes, lost=0)
    assert result.exit_code == 1
    assert (
        "  failed newest_batch_archived (ERROR): demand 2026-11-20, 1 not evaluated (run failed)"
        in result.lines
    )


def test_failures_come_first_and_long_lists_are_counted_per_asset():
    days = [f"2026-11-{d:02d}" for d in range(1, 11)]
    outcomes = [outcome("error_rate_below_0_1_percent", "WARN", False, "demand", d) for d in days]
    outcomes += [outcome("each_change_once", "ERROR", False, "sale", d) for d in days[:2]]
    outcomes += [outcome("row_counts_agree", "ERROR", True, "event", d) for d in days]
    lines = check_lines(outcomes)
    assert lines == [
        "checks: 10 passed, 10 warned, 2 failed (one per check and partition)",
        "  failed each_change_once (ERROR): sale 2026-11-01, 2026-11-02",
        "  warned error_rate_below_0_1_percent (WARN): 10 partitions (demand 10)",
        "  passed row_counts_agree (ERROR): 10 partitions (event 10)",
    ]


def test_six_partitions_are_named_seven_are_counted():
    six = [outcome("c", "WARN", False, "demand", f"2026-11-0{d}") for d in range(1, 7)]
    assert check_lines(six)[1] == (
        "  warned c (WARN): demand 2026-11-01, 2026-11-02, 2026-11-03, 2026-11-04, 2026-11-05, "
        "2026-11-06"
    )
    seven = six + [outcome("c", "WARN", False, "sale", "2026-11-01")]
    assert check_lines(seven)[1] == "  warned c (WARN): 7 partitions (demand 6, sale 1)"


def test_no_checks_at_all():
    result = verdict([], lost=0)
    assert result.exit_code == 0
    assert result.lines == [
        "checks: 0 passed, 0 warned, 0 failed (one per check and partition)",
        "exit 0: no ERROR check failed, no change lost",
    ]


def test_a_tick_line_counts_changes_partitions_lag_and_runs():
    batches = [
        BatchSummary(
            "a", "s", records=120, archivable={"demand/2026-11-20": 100, "sale/2026-11-19": 15}
        ),
        BatchSummary(
            "b", "s", records=30, archivable={"demand/2026-11-20": 30}, millis_behind_latest=2500
        ),
    ]
    assert tick_line("tick   2", batches, [True], 80, 200) == (
        "tick   2: read 150 changes, 2 partitions, lag 2.5 s; 1 run requested; 80 of 200 archived"
    )
    assert tick_line("tick   3", [], [], 200, 200) == (
        "tick   3: read 0 changes, 0 partitions, lag 0.0 s; no run; 200 of 200 archived"
    )
    assert tick_line("t", [], [True, False], 5) == (
        "t: read 0 changes, 0 partitions, lag 0.0 s; 2 runs requested (1 failed); 5 archived"
    )
    assert tick_line("t", batches[1:], None, 5) == (  # the demo: its runs are in the UI
        "t: read 30 changes, 1 partition, lag 2.5 s; 5 archived"
    )
