"""The README's examples must not drift: every spark_flows name it imports exists, every job it runs exists
and takes the flags it shows."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)
IMPORTS = sorted({(m, n.strip().split(" as ")[0]) for block in PYTHON_BLOCKS
                  for m, names in re.findall(r"from (spark_flows[\w.]*) import (\([^)]*\)|[\w, ]+)", block)
                  for n in names.strip("()").split(",") if n.strip()})
COMMON_FLAGS = {"--conf-file", "--master", "--remote", "--data-root", "--spark-conf", "--log-level", "--execution-date",
                "--help"}


def _job_lines() -> list[tuple[str, list[str]]]:
    text = "\n".join(BASH_BLOCKS).replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        match = re.search(r"(jobs/\w+\.py)(.*)", line)
        if match:
            rest = match.group(2)
            # `spark-flows submit JOB [its own flags] -- [job flags]`; otherwise the job's flags end at ` -- `
            job_part = rest.split(" -- ", 1)[1] if "spark-flows submit" in line and " -- " in rest else (
                rest.split(" -- ")[0])
            found.append((match.group(1), re.findall(r"(--[\w-]+)", job_part)))
    return found


def test_readme_has_both_commands_first() -> None:
    head = README.split("## Pattern catalogue")[0]
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize(("module", "name"), IMPORTS)
def test_every_imported_name_exists(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name), f"README imports {name} from {module}"


def test_readme_imports_were_found() -> None:
    assert len(IMPORTS) >= 15


@pytest.mark.parametrize(("job", "flags"), _job_lines())
def test_every_job_and_flag_shown_exists(job: str, flags: list[str]) -> None:
    source = (ROOT / job).read_text()
    for flag in flags:
        assert flag in COMMON_FLAGS or f'"{flag}"' in source, f"{job} has no flag {flag}"


@pytest.mark.classic  # the blocks' Spark work once is enough; the APIs they use run on Connect in their own tests
@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_every_python_block_runs_as_written(spark, tmp_path: Path, capsys, index: int) -> None:
    """Each block is complete: it runs in a fresh namespace, its root a new directory; a block that defines tests
    (the plugin's example) has them called with the plugin's fixtures; `print(...)  # 3` prints 3."""
    block = PYTHON_BLOCKS[index].replace('"/tmp/spark_flows_example"', repr(str(tmp_path / "root")))
    namespace: dict[str, object] = {"__name__": f"readme_block_{index}"}
    exec(compile(block, f"README.md python block {index + 1}", "exec"), namespace)
    for name, test in [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]:
        fixtures = {"spark_flows_session": spark, "tmp_path": tmp_path / name}
        test(**{p: fixtures[p] for p in inspect.signature(test).parameters})
    printed = capsys.readouterr().out.split()
    for shown in re.findall(r"^print\(.*\)\s+# ([\d ]+)(?::.*)?$", PYTHON_BLOCKS[index], re.M):
        assert all(value in printed for value in shown.split()), f"the block shows {shown}, it printed {printed}"
