from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from spark_flows.book.samples import BOOK_MISSING_HOURS, VISITS_SCHEMA, write_visits
from spark_flows.core.metrics import SparkMeter
from spark_flows.core.waiting import Wait
from spark_flows.errors import MissingParentsError
from spark_flows.patterns.fan_in.merge import (
    Completeness,
    Parent,
    completeness_frame,
    fan_in,
    hourly_parents,
    with_completeness,
)

DAY = dt.date(2024, 1, 1)


def _hour(root: str, hour: int) -> Path:
    return Path(root) / f"date={DAY:%Y%m%d}" / f"hour={hour:02d}"


def test_aligned_refusal_names_every_failed_parent_including_those_only_the_scan_finds(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=2, missing_hours=[6, 9, 11], empty_hours=[3], corrupt_hours=[7])
    _hour(root, 9).mkdir(parents=True)
    (_hour(root, 9) / "part-blank.json").write_text("   \n\n")  # a file, but not a row
    merged = fan_in(spark, hourly_parents(root, DAY), schema=VISITS_SCHEMA)
    with pytest.raises(MissingParentsError, match=r"19 of 24 present .* 03 \(empty\), 06 \(no data\), "
                                                  r"07 \(1 corrupt record\(s\)\), 09 \(empty \(0 rows\)\), "
                                                  r"11 \(no data\)") as refused:
        merged.evaluate()
    assert refused.value.getCondition() == "MISSING_PARENTS"
    assert sorted(refused.value.getMessageParameters()["failures"]) == ["03", "06", "07", "09", "11"]


def test_unaligned_a_parent_that_cannot_be_read_is_a_failed_parent(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=3)
    broken = next(p for p in _hour(root, 5).iterdir() if p.suffix == ".json")
    broken.write_text(broken.read_text().upper())  # rewritten without its .crc: a checksum mismatch on read
    evaluated = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA).evaluate()
    assert evaluated.completeness.missing == ("05",)
    reason = evaluated.completeness.failures["05"]
    assert reason.startswith("unreadable: [FAILED_READ_FILE") and broken.name in reason, reason
    assert evaluated.frame.count() == 23 * 3
    evaluated.unpersist()


def test_parents_under_a_path_with_spaces_signs_and_letters_are_read_and_told_apart(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "sp ace ü #1 50%25 a+b")
    write_visits(spark, root, DAY, rows_per_hour=2)
    broken = next(p for p in _hour(root, 5).iterdir() if p.suffix == ".json")
    broken.write_text(broken.read_text().upper())  # unreadable: named as hour 05's failure, not raised
    evaluated = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA).evaluate()
    assert list(evaluated.completeness.failures) == ["05"], evaluated.completeness.failures
    hours = evaluated.frame.groupBy("_parent").count().collect()
    assert sorted((r["_parent"], r["count"]) for r in hours) == [(f"{h:02d}", 2) for h in range(24) if h != 5]
    evaluated.unpersist()


@pytest.mark.classic
def test_an_unreadable_parent_names_the_root_cause_where_the_jvm_is_reachable(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=1)
    broken = next(p for p in _hour(root, 2).iterdir() if p.suffix == ".json")
    broken.write_text(broken.read_text().upper())
    evaluated = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA).evaluate()
    assert "ChecksumException" in evaluated.completeness.failures["02"]
    evaluated.unpersist()


def test_unaligned_drifted_hours_fail_and_contribute_no_rows(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=2, missing_hours=[8, 9])
    good = next(p for p in _hour(root, 10).iterdir() if p.suffix == ".json").read_text().splitlines()
    for hour, old, new in ((8, '"keep_private":false', '"keep_private":"nope"'), (9, '"user_id":', '"userId":')):
        _hour(root, hour).mkdir(parents=True)
        (_hour(root, hour) / "part-drifted.json").write_text("\n".join(line.replace(old, new) for line in good))
    evaluated = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA,
                       required=("visit_id", "user_id")).evaluate()
    failures = evaluated.completeness.failures
    assert sorted(failures) == ["08", "09"], failures
    assert "corrupt record" in failures["08"] and "lack a required column" in failures["09"]
    assert evaluated.frame.count() == 22 * 2 and evaluated.scans == 2
    evaluated.unpersist()


def test_a_record_corrupt_in_a_column_the_transform_never_reads_still_fails_its_parent(spark, tmp_path: Path) -> None:
    """A pruned scan would parse only the transform's columns and let the bad hour into the result."""
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=2, missing_hours=[8])
    good = next(p for p in _hour(root, 10).iterdir() if p.suffix == ".json").read_text().splitlines()
    _hour(root, 8).mkdir(parents=True)
    (_hour(root, 8) / "part-drifted.json").write_text(
        "\n".join(line.replace('"keep_private":false', '"keep_private":"nope"') for line in good))
    merged = fan_in(spark, hourly_parents(root, DAY), rule="min_success=20", schema=VISITS_SCHEMA)
    evaluated = merged.evaluate(lambda df: df.groupBy("page").count())  # never reads keep_private
    assert evaluated.completeness.failures == {"08": "2 corrupt record(s)"}
    assert evaluated.frame.agg(F.sum("count")).first()[0] == 23 * 2, "hour 08 contributed rows"
    evaluated.unpersist()


def test_every_hour_present_and_every_record_corrupt_is_no_parent_named_hour_by_hour(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    for hour in range(24):
        _hour(root, hour).mkdir(parents=True)
        (_hour(root, hour) / "part-00000.json").write_text("not json\n{also not\n")
    merged = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA)
    with pytest.raises(MissingParentsError, match=r"0 of 24 present .* 00 \(2 corrupt record\(s\)\)") as refused:
        merged.evaluate(lambda df: df.groupBy("page").count())
    assert refused.value.getCondition() == "NO_PARENTS"
    assert set(refused.value.getMessageParameters()["failures"].values()) == {"2 corrupt record(s)"}


def test_unaligned_with_no_usable_parent_is_a_failure(spark, tmp_path: Path) -> None:
    (tmp_path / "visits").mkdir()
    merged = fan_in(spark, hourly_parents(str(tmp_path / "visits"), DAY), mode="unaligned", schema=VISITS_SCHEMA)
    with pytest.raises(MissingParentsError, match="0 of 24 present") as refused:
        merged.evaluate()
    assert refused.value.getCondition() == "NO_PARENTS"


@pytest.mark.classic
def test_unaligned_fan_in_reports_completeness_without_scanning(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=3, missing_hours=BOOK_MISSING_HOURS)
    with SparkMeter(spark) as meter:
        merged = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA)
    assert meter.jobs == 0
    c = merged.completeness
    assert c.missing == ("06", "11", "16", "17", "18") and c.ratio == round(19 / 24, 4) and c.is_approximate
    assert merged.frame.count() == 19 * 3


@pytest.mark.classic
def test_corrupt_records_are_observed_during_the_one_scan(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=2, corrupt_hours=[7])
    merged = fan_in(spark, hourly_parents(root, DAY), mode="unaligned", schema=VISITS_SCHEMA)
    with SparkMeter(spark) as meter:
        assert merged.frame.count() == 48
    scans = meter.scan.of(root)
    assert len(scans) == 1 and scans[0].rows == 48 + 1, "one scan of the day (48 rows + 1 corrupt line)"
    assert merged.corrupt_parents() == {"07": "1 corrupt record(s)"}


def test_loader_parents_and_schema_conflicts_in_unaligned_mode(spark) -> None:
    def broken():
        raise RuntimeError("upstream down")

    parents = [
        Parent("a", load=lambda: spark.createDataFrame([(1,)], "v int")),
        Parent("b", load=broken),
        Parent("c", load=lambda: spark.createDataFrame([("x",)], "v string")),
        Parent("d", load=lambda: spark.createDataFrame([(4,)], "v int")),
    ]
    merged = fan_in(spark, parents, mode="unaligned")
    assert merged.completeness.present == ("a", "d")
    assert merged.completeness.failures["b"] == "RuntimeError: upstream down"
    assert "column 'v': int in 'a' vs string in 'c'" in merged.completeness.failures["c"]
    assert sorted(r.v for r in merged.frame.collect()) == [1, 4]


def test_completeness_columns_and_table_row(spark) -> None:
    c = Completeness(("00", "01", "02", "03"), {"02": "no data"})
    df = spark.range(2).transform(with_completeness, c)
    assert {(r.is_approximate, r.completeness_ratio) for r in df.collect()} == {(True, 0.75)}
    row = completeness_frame(spark, c).first()
    assert (row.expected, row.present, row.ratio, row.missing, row.failures) == (4, 3, 0.75, ["02"], {"02": "no data"})


class _Announced(logging.Handler):
    """Sets ``event`` when a wait logs that it started waiting (after its first poll found a parent missing)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting for"):
            self.event.set()


def test_aligned_fan_in_waits_for_a_late_parent_then_merges_every_hour(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=2, missing_hours=[6])
    announced, waiting = _Announced(), logging.getLogger("spark_flows.core.waiting")
    waiting.addHandler(announced)
    waiting.setLevel(logging.INFO)

    def late_producer() -> None:  # the sensor's case: the hour lands while the fan-in waits for it
        assert announced.event.wait(120)
        staged = _hour(root, 6).with_name(".hour=06.tmp")
        shutil.copytree(_hour(root, 5), staged)
        staged.rename(_hour(root, 6))

    producer = threading.Thread(target=late_producer)
    producer.start()
    try:
        merged = fan_in(spark, hourly_parents(root, DAY), schema=VISITS_SCHEMA,
                        wait=Wait(timeout=120, poll_interval=0.2))
    finally:
        producer.join()
        waiting.removeHandler(announced)
    evaluated = merged.evaluate()
    assert announced.event.is_set() and evaluated.completeness.describe().startswith("24 of 24 present")
    assert evaluated.frame.count() == 48
    evaluated.unpersist()


def test_a_parent_still_missing_when_the_wait_ends_is_named_with_the_wait(spark, tmp_path: Path) -> None:
    root = str(tmp_path / "visits")
    write_visits(spark, root, DAY, rows_per_hour=1, missing_hours=[17])
    merged = fan_in(spark, hourly_parents(root, DAY), schema=VISITS_SCHEMA, wait=Wait(timeout=0.3, poll_interval=0.1))
    with pytest.raises(MissingParentsError, match=r"17 \(no data after waiting \d+\.\ds\)"):
        merged.evaluate()
    with pytest.raises(ValueError, match="poll_interval must be a number > 0"):
        Wait(timeout=1, poll_interval=0)
