from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pyspark import StorageLevel

from spark_flows.core.backend import is_remote
from spark_flows.core.metrics import SparkMeter
from spark_flows.errors import BranchFailedError, SparkFlowsValueError
from spark_flows.io.writers import Batch, DeltaWriter
from spark_flows.patterns.split import Split, branch, split, write_branch
from tests.waits import wait_until


@pytest.fixture
def source(spark, tmp_path: Path) -> str:
    path = str(tmp_path / "src")
    spark.range(300).selectExpr("id", "id % 3 as k").write.json(path)
    return path


def _branches(tmp_path: Path, batch: Batch):
    return [
        branch(f"b{k}", lambda df, k=k: DeltaWriter().write(df.where(f"k = {k}"), str(tmp_path / f"t{k}"), batch=batch))
        for k in range(3)
    ]


@pytest.mark.classic
@pytest.mark.parametrize("concurrency", [1, 3])
def test_source_is_scanned_once_and_each_branch_writes(spark, tmp_path: Path, source: str, concurrency: int) -> None:
    df = spark.read.schema("id long, k long").json(source)
    with SparkMeter(spark, all_threads=True) as meter:
        result = split(df, _branches(tmp_path, Batch("t", 1)), concurrency=concurrency)
    assert result.ok and [b.rows for b in result.outcomes] == [100, 100, 100]
    # the input is filled into the cache by one job before any branch starts: one scan of all 300 rows, whatever
    # the concurrency (concurrent branches racing to fill it used to scan it in parts)
    assert [r.rows for r in meter.scan.of(source)] == [300], meter.scan.of(source)
    assert not df.is_cached, "input left persisted"


def test_each_branch_writes_its_rows_and_the_input_is_released(spark, tmp_path: Path, source: str) -> None:
    df = spark.read.schema("id long, k long").json(source)
    result = split(df, _branches(tmp_path, Batch("t", 1)), concurrency=3)
    assert result.ok and [b.rows for b in result.outcomes] == [100, 100, 100]
    assert [spark.read.format("delta").load(str(tmp_path / f"t{k}")).count() for k in range(3)] == [100] * 3
    assert not df.is_cached, "input left persisted"


def test_replay_three_times_leaves_counts_unchanged(spark, tmp_path: Path, source: str) -> None:
    df = spark.read.schema("id long, k long").json(source)
    for _ in range(3):
        result = split(df, _branches(tmp_path, Batch("t", 1)), concurrency=2)
    assert all(b.skipped for b in result.outcomes)
    assert [spark.read.format("delta").load(str(tmp_path / f"t{k}")).count() for k in range(3)] == [100] * 3


def test_failing_branch_does_not_stop_the_others(spark, tmp_path: Path, source: str) -> None:
    df = spark.read.schema("id long, k long").json(source)

    def broken(frame):
        return frame.select("missing_column").write.format("delta").save(str(tmp_path / "never"))

    result = split(df, [*_branches(tmp_path, Batch("t", 1)), branch("broken", broken)], concurrency=2)
    assert result.failed == ["broken"]
    assert result["broken"].error and "missing_column" in result["broken"].error
    assert all(result[f"b{k}"].ok for k in range(3))
    assert not (tmp_path / "never").exists()
    with pytest.raises(BranchFailedError, match="1 of 4 branch\\(es\\) failed: broken:"):
        result.raise_for_failures()


@pytest.mark.classic
def test_branches_run_in_their_own_job_group_and_pool(spark, source: str) -> None:
    seen: dict[str, tuple[str, str]] = {}

    def probe(name):
        def run(df):
            sc = df.sparkSession.sparkContext
            seen[name] = (sc.getLocalProperty("spark.jobGroup.id"), sc.getLocalProperty("spark.scheduler.pool"))
            df.count()
        return run

    df = spark.read.schema("id long, k long").json(source)
    result = split(df, [branch("x", probe("x")), branch("y", probe("y"))], concurrency=2)
    assert seen["x"][0] == result["x"].job_group and seen["x"][1] == "x"
    assert seen["y"][0] == result["y"].job_group and seen["y"][1] == "y"
    assert spark.sparkContext.statusTracker().getJobIdsForGroup(result["x"].job_group)


def test_cancel_on_failure_cancels_a_running_branch(spark, source: str, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    running = str(tmp_path / "slow-is-running")

    @F.udf("long")
    def mark_running(value):  # in the Python worker of the slow branch's tasks (classic or Connect server)
        Path(running).touch()
        return value

    def slow(df):  # hours unless cancelled
        df.sparkSession.range(0, 10**13, 1, 2).select(mark_running("id").alias("id")).selectExpr("max(id)").collect()

    def fails(df):
        wait_until(Path(running).exists, "the slow branch's Spark tasks to run", timeout=300)
        raise RuntimeError("boom")

    df = spark.read.schema("id long, k long").json(source)
    outcome: list = []
    runner = threading.Thread(target=lambda: outcome.append(
        split(df, [branch("slow", slow), branch("fails", fails)], concurrency=2, cancel_on_failure=True,
              storage_level=StorageLevel.MEMORY_ONLY)))
    runner.start()
    runner.join(600)  # a bound for a broken cancel, not the event: a working one ends in seconds
    if runner.is_alive():
        spark.interruptAll() if is_remote(spark) else spark.sparkContext.cancelAllJobs()
        runner.join(60)
        pytest.fail("the running branch was not cancelled after the other failed (its job ran on)")
    result = outcome[0]
    assert result.failed == ["slow", "fails"]
    assert "cancel" in (result["slow"].error or "").lower()


def test_structure_and_bad_definitions() -> None:
    drawn = Split("s", (branch("a", lambda df: None, key="k"), branch("b", lambda df: None)), concurrency=2).graph()
    assert [(e.source, e.target, e.rule) for e in drawn.edges] == [("s", "s.a", "k"), ("s", "s.b", "")]
    assert drawn.node("s").rules == {"input": "persisted once", "concurrency": 2}
    with pytest.raises(ValueError, match="unique"):
        split(None, [branch("a", lambda df: None), branch("a", lambda df: None)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="branch name"):
        branch("a b", lambda df: None)


def _counting_loader(spark, source: str, loads: list[int]):
    """A split input loader that notes in ``loads`` each time it reads ``source``."""
    def load():
        loads.append(1)
        return spark.read.schema("id long, k long").json(source)
    return load


def test_a_replay_whose_outputs_hold_the_batch_reads_nothing(spark, tmp_path: Path, source: str) -> None:
    from spark_flows.io.writers import CsvWriter
    from spark_flows.patterns.split import write_branch

    loads: list[int] = []
    load = _counting_loader(spark, source, loads)

    def branches(batch: Batch):
        return [write_branch("delta", DeltaWriter(), str(tmp_path / "t"), batch=batch,
                             transform=lambda df: df.where("k = 0")),
                write_branch("csv", CsvWriter(), str(tmp_path / "csv"), batch=batch)]

    first = split(load, branches(Batch("t", 1)), concurrency=2)
    assert first.ok and [b.rows for b in first.outcomes] == [100, 300] and loads == [1]
    replay = split(load, branches(Batch("t", 1)), concurrency=2)
    assert loads == [1], "the input was read again"
    assert [(b.skipped, b.value.batch_rows if b.value else None) for b in replay.outcomes] == [(True, 100),
                                                                                              (True, 300)]
    nxt = split(load, branches(Batch("t", 2)), concurrency=2)
    assert nxt.ok and not any(b.skipped for b in nxt.outcomes) and loads == [1, 1]


def test_a_batch_one_output_refuses_is_written_to_no_output(spark, tmp_path: Path, source: str) -> None:
    """Known from metadata before anything is read: the refusal stops every branch, not only its own."""
    from spark_flows.io.writers import CsvWriter
    from spark_flows.patterns.split import write_branch

    loads: list[int] = []
    load = _counting_loader(spark, source, loads)

    def branches(batch: Batch):
        return [write_branch("delta", DeltaWriter(), str(tmp_path / "t"), batch=batch),
                write_branch("csv", CsvWriter(), str(tmp_path / f"csv_{batch.version}"), batch=batch)]

    assert split(load, branches(Batch("t", 2))).ok
    older = split(load, branches(Batch("t", 1)), concurrency=2)
    assert older.failed == ["delta", "csv"] and loads == [1], "the older batch was read"
    assert "[BATCH_OUT_OF_ORDER]" in (older["delta"].error or "")
    assert (older["csv"].error or "").startswith("not run: branch delta refuses the batch")
    assert not (tmp_path / "csv_1").exists(), "the older batch was published to the CSV output"
    assert spark.read.format("delta").load(str(tmp_path / "t")).count() == 300, "batch 2 alone"


def test_lookups_and_flag_types_raise_library_errors() -> None:
    from spark_flows.apps.harness import parse_date
    from spark_flows.core.scheduling import Outcomes
    from spark_flows.errors import InvalidFlagError, SparkFlowsError, UnknownNameError
    from spark_flows.patterns.split import Split

    with pytest.raises(UnknownNameError, match=r"no branch named 'nope' in 's'; known: \[\]") as missing:
        Outcomes("s", (), 0.0, "branch")["nope"]
    assert isinstance(missing.value, KeyError) and missing.value.getCondition() == "UNKNOWN_NAME"
    with pytest.raises(UnknownNameError, match="no node 'nope' in graph"):
        Split("s", (branch("a", lambda df: None),)).graph().node("nope")
    with pytest.raises(InvalidFlagError, match="expected YYYY-MM-DD") as bad:
        parse_date("2024-13-01")
    assert isinstance(bad.value, SparkFlowsError)


def test_a_branch_of_a_pending_batch_draws_its_key_and_cannot_write() -> None:
    from spark_flows.io.writers import PendingBatch

    drawn = write_branch("t", DeltaWriter(), "/nowhere/t", batch=PendingBatch("loader", "(--batch-id)"))
    assert drawn.key == "Delta txnAppId/txnVersion loader@(--batch-id)" and drawn.committed is None
    with pytest.raises(SparkFlowsValueError, match="a Batch with a version to write"):
        drawn.run(None)  # type: ignore[arg-type]
