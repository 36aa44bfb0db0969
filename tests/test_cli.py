from __future__ import annotations

import shlex
import zipfile
from pathlib import Path

from spark_flows.apps.cli import main as cli
from tests import procs

ROOT = Path(__file__).resolve().parents[1]


def test_generate_devices_and_visits(spark, data_root: str, capsys) -> None:
    assert cli(["generate", "devices", "--rows", "25", "--malformed", "2", "--data-root", data_root]) == 0
    assert cli(["generate", "visits", "--date", "2024-01-01", "--rows", "2", "--missing-hours", "6,11",
                "--data-root", data_root]) == 0
    out = capsys.readouterr().out
    assert "devices: 25 rows (+2 malformed)" in out and "visits 2024-01-01: 22 hours x 2 rows" in out
    assert len(list(Path(data_root, "raw", "visits", "date=20240101").iterdir())) == 22


def test_generate_rejects_bad_hours(capsys) -> None:
    assert cli(["generate", "visits", "--date", "2024-01-01", "--missing-hours", "25"]) == 2
    assert "hours must be 0..23" in capsys.readouterr().err


def test_submit_dry_run_prints_the_command_with_the_shipped_zip(tmp_path: Path, capsys) -> None:
    zip_path = tmp_path / "spark_flows.zip"
    code = cli(["submit", str(ROOT / "jobs" / "devices_loader.py"), "--master", "spark://127.0.0.1:7077", "--ship",
                "--zip", str(zip_path), "--dry-run", "--", "--batch-id", "1"])
    assert code == 0
    command = shlex.split(capsys.readouterr().out.strip())
    assert command[command.index("--master") + 1] == "spark://127.0.0.1:7077"
    assert command[command.index("--py-files") + 1] == str(zip_path) and zip_path.stat().st_size > 10_000
    assert command[-3:] == [str(ROOT / "jobs" / "devices_loader.py"), "--batch-id", "1"]
    package = ROOT / "spark_flows"
    shipped = set(zipfile.ZipFile(zip_path).namelist())
    expected = {f"spark_flows/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
    assert expected <= shipped and "spark_flows/conf/local.toml" in shipped, sorted(expected - shipped)[:5]


def test_submit_refuses_a_missing_job_file(capsys) -> None:
    assert cli(["submit", "jobs/nope.py", "--dry-run"]) == 2
    assert "job file jobs/nope.py does not exist" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error_and_help_is_plain_text(capsys) -> None:
    assert cli(["frobnicate"]) == 2
    assert "spark-flows runs visits_trend_generator" in capsys.readouterr().err
    assert cli(["--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("spark-flows: ") and "``" not in text and ":func:" not in text


def test_markers_and_runs_read_files_without_spark(spark, tmp_path: Path, monkeypatch, capsys) -> None:
    import datetime as dt

    from spark_flows.io.writers import DeltaWriter
    from spark_flows.patterns.markers import publish
    from spark_flows.patterns.runners import RunLedger

    dataset, ledger = str(tmp_path / "devices"), RunLedger(spark, str(tmp_path / "ledger"))
    publish(spark.range(3), dataset, DeltaWriter(), producer="loader", execution_date=dt.date(2024, 1, 1))
    ledger.record("trend", dt.date(2024, 1, 1), 1, "running", "r1")
    ledger.record("trend", dt.date(2024, 1, 1), 1, "failed", "r1", "boom")
    ledger.record("trend", dt.date(2024, 1, 1), 2, "running", "r2")
    ledger.record("trend", dt.date(2024, 1, 1), 2, "succeeded", "r2")
    ledger.record("other", dt.date(2024, 1, 1), 1, "running", "r3")
    expected = [(r.attempt, r.status, r.error) for r in ledger.runs("trend")]

    def no_spark(*_: object, **__: object) -> None:
        raise AssertionError("a command that only reads files asked for Spark")

    monkeypatch.setattr("spark_flows.core.session.get_session", no_spark)
    monkeypatch.setattr("spark_flows.apps.harness.job_session", no_spark)
    assert cli(["markers", dataset]) == 0
    listing = capsys.readouterr().out.splitlines()[1]
    assert listing.split()[:3] == ["2024-01-01", "3", "loader"]
    assert cli(["runs", "trend", "--ledger", str(tmp_path / "ledger")]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [(int(line.split()[1]), line.split()[2]) for line in lines] == [(a, s) for a, s, _ in expected]
    assert expected == [(1, "failed", "boom"), (2, "succeeded", None)] and lines[0].endswith("boom")


def test_a_damaged_or_empty_ledger_commit_is_one_line_naming_the_file(spark, tmp_path: Path, capsys) -> None:
    import datetime as dt

    from spark_flows.patterns.runners import RunLedger

    ledger = tmp_path / "ledger"
    RunLedger(spark, str(ledger)).record("trend", dt.date(2024, 1, 1), 1, "running", "r1")
    RunLedger(spark, str(ledger)).record("trend", dt.date(2024, 1, 1), 1, "succeeded", "r1")
    commit = ledger / "_delta_log" / f"{1:020d}.json"
    for damage in ('{"add": {"path": "part-0', ""):
        commit.write_text(damage)
        assert cli(["runs", "trend", "--ledger", str(ledger)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "[DELTA_LOG_CORRUPT]" in err[0] and f"{1:020d}.json" in err[0], err


def test_bootstrap_refuses_an_old_java(tmp_path: Path) -> None:
    fake = tmp_path / "jdk" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    (fake / "java").chmod(0o755)
    done = procs.run(["bash", str(ROOT / "scripts" / "bootstrap.sh")], timeout=120,
                     env={"PATH": "/usr/bin:/bin", "JAVA_HOME": str(tmp_path / "jdk")})
    assert done.returncode == 1
    assert "bootstrap: error: Java 17+ is required, found '11'" in done.stderr
