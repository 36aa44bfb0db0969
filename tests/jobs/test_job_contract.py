"""What every bundled job promises: flags checked before Spark starts, one error line on stderr, the
README's commands working as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import spark_flows.apps.harness
from jobs import backfill, devices_exporter, devices_loader, visits_cube
from spark_flows.book.samples import write_devices
from spark_flows.core.config import Settings
from spark_flows.core.submit import submit_command, submit_env
from tests import procs
from tests.procs import ROOT, SUBMIT_CONF


@pytest.mark.parametrize(("main", "args", "message"), [
    (devices_loader.main, ["--batch-id", "1", "--trigger", "devices_aggregator"], "--trigger needs --execution-date"),
    (devices_loader.main, ["--batch-id", "1", "--concurrency", "0"], "--concurrency must be >= 1"),
    (devices_exporter.main, ["--route-by-date", "--execution-date", "2024-03-01"], "needs --migration-date"),
    (backfill.main, ["--job", "visits_cube", "--from", "2024-01-02", "--to", "2024-01-01"], "is before --from"),
    (backfill.main, ["--job", "visits_cube", "--from", "1900-01-01", "--to", "2100-12-31"],
     "is 73414 dates, more than --max-dates 400"),
    (visits_cube.main, ["--execution-date", "2024-01-01", "--min-completeness", "2"], "within 0..1"),
    (visits_cube.main, ["--execution-date", "2024-01-01", "--wait-for-hours", "-1"], "--wait-for-hours must be >= 0"),
    (visits_cube.main, ["--execution-date", "2024-01-01", "--dimensions", "page,nope"], "--dimensions must be"),
])
def test_flag_combinations_are_refused_before_spark_starts(monkeypatch, capsys, main, args, message) -> None:
    def no_session(*_: object, **__: object) -> None:
        raise AssertionError("a session was requested before the flags were checked")

    monkeypatch.setattr(spark_flows.apps.harness, "job_session", no_session)
    assert main(args) == 2
    assert message in capsys.readouterr().err


def _submit(command: list[str], code: int):
    """Run ``command`` and expect exit ``code``: the run, and its stderr lines but for the JVM's own start-up
    notice (Spark 4.2 adds the vector incubator module), which is not Spark's log."""
    done = procs.run(command, env=submit_env(), timeout=300)
    assert done.returncode == code, done.stderr[-2000:]
    return done, [line for line in done.stderr.splitlines()
                  if line.strip() and not line.startswith("WARNING: Using incubator modules")]


@pytest.mark.subprocess
def test_under_spark_submit_a_spark_failure_is_one_line_on_stderr_and_no_stack_trace(spark, tmp_path: Path) -> None:
    write_devices(spark, str(tmp_path / "raw"), rows=10)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    command = submit_command(str(ROOT / "jobs" / "devices_sequence.py"),
                             ["--input", str(tmp_path / "raw"), "--output", f"{blocker}/table",
                              "--boundary-root", str(tmp_path / "b")],
                             Settings(spark_conf=SUBMIT_CONF), master="local[1]")
    done, errors = _submit(command, 1)
    assert len(errors) == 1 and errors[0].startswith("devices_sequence: error: "), errors[:20]
    assert "a_file" in errors[0], "the line names the path"
    assert "error:" not in done.stdout and "\tat " not in done.stdout


@pytest.mark.subprocess
def test_under_spark_submit_a_full_disk_is_one_line_saying_so_and_no_stack_trace(spark, tmp_path: Path,
                                                                                 full_disk: Path) -> None:
    write_devices(spark, str(tmp_path / "raw"), rows=10)
    command = submit_command(str(ROOT / "jobs" / "devices_sequence.py"),
                             ["--input", str(tmp_path / "raw"), "--output", str(full_disk / "table"),
                              "--boundary-root", str(tmp_path / "b")],
                             Settings(spark_conf=SUBMIT_CONF), master="local[1]")
    done, errors = _submit(command, 1)
    assert len(errors) == 1 and "[DISK_FULL]" in errors[0] and "the disk is full" in errors[0], errors[:20]
    assert len(errors[0]) < 400, errors[0]
    assert "\tat " not in done.stdout + done.stderr, "a Java stack trace"


@pytest.mark.subprocess
def test_under_spark_submit_a_bad_flag_is_one_line_on_stderr_naming_it(tmp_path: Path) -> None:
    command = submit_command(str(ROOT / "jobs" / "devices_loader.py"), ["--batch-id", "seven"],
                             Settings(spark_conf=SUBMIT_CONF), master="local[1]")
    done, errors = _submit(command, 2)
    assert errors == ["devices_loader: error: argument --batch-id: invalid int value: 'seven' (see --help)"], errors
    assert "error:" not in done.stdout, done.stdout[-2000:]


@pytest.mark.subprocess
def test_the_docs_job_commands_work_as_written_without_the_venv_on_path(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "jobs.md").read_text()
    block = page.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.strip()]
    assert commands and all(c.startswith(".venv/bin/") for c in commands), commands
    for name in (".venv", "jobs"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {k: v for k, v in submit_env().items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    for command in commands:
        done = procs.run(["bash", "-c", command], cwd=tmp_path, env=env, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}"
    assert (tmp_path / "data" / "tables" / "devices_clean" / "_delta_log").is_dir()
