from __future__ import annotations

from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs import visits_cube
from spark_flows.book.samples import BOOK_MISSING_HOURS, VISITS_SCHEMA, write_visits
from spark_flows.io.delta_log import commit_metadata, table_version
from spark_flows.io.storage import Storage
from tests.flows import assert_ran_as_declared, statuses


def _run(data_root: str, *extra: str) -> int:
    return visits_cube.main(["--data-root", data_root, "--execution-date", "2024-01-01", *extra])


def test_aligned_cube_of_a_complete_day(spark, data_root: str) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=4)
    assert _run(data_root) == 0
    cube = spark.read.format("delta").load(f"{data_root}/tables/visits_cube")
    raw = spark.read.schema(VISITS_SCHEMA).json(f"{data_root}/raw/visits/date=20240101/hour=*")
    total = cube.where("grouping_id = 3").first()
    assert (total.visits, total.is_approximate, total.completeness_ratio, total.date) == (96, False, 1.0, "20240101")
    per_page = raw.groupBy("page").agg(F.count("*").alias("visits"))
    assert_df_equality(cube.where("grouping_id = 1").select("page", "visits"), per_page,
                       ignore_row_order=True, ignore_nullable=True)


def test_aligned_mode_refuses_a_partial_day_and_writes_nothing(spark, data_root: str, capsys) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=2, missing_hours=BOOK_MISSING_HOURS,
                 empty_hours=[2], corrupt_hours=[9])
    assert _run(data_root) == 1
    err = capsys.readouterr().err
    assert "MISSING_PARENTS" in err and "02 (empty)" in err and "06 (no data)" in err and "18 (no data)" in err
    assert not Path(data_root, "tables").exists()
    flow = assert_ran_as_declared(visits_cube, [], data_root)  # a failed run still shows where it stopped
    assert flow.node("hours").facts["status"] == "failed" and "all_success" in flow.node("hours").facts["refused"]
    assert statuses(flow, "hours.")["hours.06"] == "failed" and statuses(flow, "hours.")["hours.00"] == "ran"
    assert not flow.node("cube").facts and not flow.node("published_to").facts


def test_aligned_mode_refuses_a_corrupt_hour(spark, data_root: str, capsys) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=2, corrupt_hours=[9])
    assert _run(data_root) == 1
    assert "09 (1 corrupt record(s))" in capsys.readouterr().err
    assert not Path(data_root, "tables", "visits_cube").exists()


def test_unaligned_mode_publishes_partial_day_with_completeness(spark, data_root: str) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=2, missing_hours=BOOK_MISSING_HOURS,
                 empty_hours=[2], corrupt_hours=[9])
    assert _run(data_root, "--mode", "unaligned") == 0
    cube = spark.read.format("delta").load(f"{data_root}/tables/visits_cube")
    total = cube.where("grouping_id = 3").first()
    assert total.is_approximate and total.completeness_ratio == round(17 / 24, 4)
    assert total.visits == 17 * 2  # a failed parent contributes nothing: hour 09's good rows are left out too
    row = spark.read.format("delta").load(f"{data_root}/tables/visits_cube_completeness").first()
    assert row.missing == ["02", "06", "09", "11", "16", "17", "18"]
    assert row.failures["09"] == "1 corrupt record(s)" and row.published_to == "public"
    flow = assert_ran_as_declared(visits_cube, ["--mode", "unaligned"], data_root)
    assert {k for k, v in statuses(flow, "hours.").items() if v == "failed"} == {
        f"hours.{h}" for h in ("02", "06", "09", "11", "16", "17", "18")}
    assert flow.node("hours.09").facts["reason"] == "1 corrupt record(s)"
    assert flow.node("published_to").facts["taken"] == "public"
    assert statuses(flow, "published_to.") == {"published_to.public": "taken", "published_to.private": "not taken"}
    assert flow.node("published_to.public").facts["rows"] == cube.count()


def test_below_min_completeness_goes_private_and_the_partial_cube_is_announced(spark, data_root: str,
                                                                                webhook_server) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=1, missing_hours=BOOK_MISSING_HOURS)
    assert _run(data_root, "--mode", "unaligned", "--min-completeness", "0.9", "--notify-url", webhook_server.url) == 0
    assert not Path(data_root, "tables", "visits_cube").exists()
    private_path = f"{data_root}/tables/visits_cube_private"
    private = spark.read.format("delta").load(private_path)
    assert private.where("is_approximate").count() == private.count() > 0
    # announced where consumers look: the commit's userMetadata, and the notification
    storage = Storage(spark)
    metadata = commit_metadata(storage, private_path, table_version(storage, private_path))
    assert metadata["completeness"]["ratio"] == round(19 / 24, 4) and metadata["date"] == "20240101"
    assert sorted(metadata["completeness"]["missing"]) == ["06", "11", "16", "17", "18"]
    [notice] = webhook_server.received
    assert notice["event"] == "partial_result_published" and notice["extra"]["published_to"] == "private"
    assert notice["output"] == private_path and notice["completeness"]["missing"]["06"] == "no data"


def test_a_failing_notification_fails_the_job_after_publishing(spark, data_root: str, capsys) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=1, missing_hours=[3])
    assert _run(data_root, "--mode", "unaligned", "--notify-url", "http://127.0.0.1:9/nothing-listens") == 1
    assert "NOTIFICATION_FAILED" in capsys.readouterr().err
    assert spark.read.format("delta").load(f"{data_root}/tables/visits_cube").where("is_approximate").count() > 0


def test_rerun_replaces_only_its_date(spark, data_root: str) -> None:
    for day in ("2024-01-01", "2024-01-02"):
        write_visits(spark, f"{data_root}/raw/visits", day, rows_per_hour=1)
        assert visits_cube.main(["--data-root", data_root, "--execution-date", day]) == 0
    table = f"{data_root}/tables/visits_cube"
    before = spark.read.format("delta").load(table).groupBy("date").count().collect()
    assert _run(data_root) == 0
    after = spark.read.format("delta").load(table).groupBy("date").count().collect()
    assert sorted(before) == sorted(after) and len(after) == 2


def test_bad_date_is_a_usage_error(data_root: str, capsys) -> None:
    assert visits_cube.main(["--data-root", data_root, "--execution-date", "2024-13-01"]) == 2
    assert "invalid date '2024-13-01': expected YYYY-MM-DD" in capsys.readouterr().err


def test_unaligned_with_no_hour_fails_and_keeps_the_published_cube(spark, data_root: str, capsys) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=1)
    assert _run(data_root) == 0
    empty = Path(data_root, "empty_visits")
    empty.mkdir()
    assert _run(data_root, "--mode", "unaligned", "--input", str(empty)) == 1
    assert "[NO_PARENTS] fan-in refused: 0 of 24 present" in capsys.readouterr().err
    cube = spark.read.format("delta").load(f"{data_root}/tables/visits_cube")
    assert cube.where("grouping_id = 3").first().visits == 24


def test_a_less_complete_result_never_replaces_a_more_complete_one_unless_asked(spark, data_root: str,
                                                                                   capsys) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=1)
    assert _run(data_root) == 0
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=1, missing_hours=BOOK_MISSING_HOURS)
    assert _run(data_root, "--mode", "unaligned") == 1
    assert "[LESS_COMPLETE]" in capsys.readouterr().err
    cube = spark.read.format("delta").load(f"{data_root}/tables/visits_cube")
    assert cube.where("grouping_id = 3").first().completeness_ratio == 1.0
    assert _run(data_root, "--mode", "unaligned", "--replace-more-complete") == 0
    assert cube.where("grouping_id = 3").first().completeness_ratio == round(19 / 24, 4)


def test_the_book_s_cube_dimensions_keep_roll_ups_apart_from_null_and_all_pages(spark, data_root: str) -> None:
    write_visits(spark, f"{data_root}/raw/visits", "2024-01-01", rows_per_hour=3)
    hour = f"{data_root}/raw/visits/date=20240101/hour=05"  # a page named 'ALL' and a visit with no page
    spark.read.schema(VISITS_SCHEMA).json(hour).limit(2).withColumn(
        "page", F.when(F.col("visit_id").isNotNull(), F.lit("ALL"))).union(
        spark.read.schema(VISITS_SCHEMA).json(hour).limit(1).withColumn("page", F.lit(None).cast("string"))
    ).coalesce(1).write.mode("append").json(hour)
    assert _run(data_root, "--dimensions", "user_id,page") == 0
    cube = spark.read.format("delta").load(f"{data_root}/tables/visits_cube")
    raw = spark.read.schema(VISITS_SCHEMA).json(f"{data_root}/raw/visits/date=20240101/hour=*")
    raw.createOrReplaceTempView("book_visits")
    book = spark.sql("SELECT user_id, page, grouping_id() AS grouping_id, COUNT(visit_id) AS visits "
                     "FROM book_visits GROUP BY CUBE(user_id, page)")  # the book's query over the same input
    assert_df_equality(cube.select("user_id", "page", "grouping_id", "visits"), book, ignore_row_order=True,
                       ignore_nullable=True, ignore_column_order=True)
    per_page = {r.page: r.visits for r in cube.where("grouping_id = 2").collect()}  # user_id rolled up
    assert per_page["ALL"] == 2 and per_page[None] == 1
    assert cube.where("grouping_id = 3").first().visits == 24 * 3 + 3
