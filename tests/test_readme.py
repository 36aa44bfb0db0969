"""The README's examples must not drift: every spark_flows name it imports exists, every job it runs exists
and takes the flags it shows."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.S)
IMPORTS = sorted({(m, n.strip()) for block in PYTHON_BLOCKS
                  for m, names in re.findall(r"from (spark_flows[\w.]*) import ([\w, ]+)", block)
                  for n in names.split(",")})
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
