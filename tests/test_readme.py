"""The README's and the docs' examples must not drift: every python block runs as written, every spark_flows
name they import or write as ``sf.X`` exists, every job they run exists and takes the flags they show."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = {path.relative_to(ROOT).as_posix(): path.read_text()
         for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]}
#: (page, n-th python block of the page, its text)
BLOCKS = [(page, n, block) for page, text in PAGES.items()
          for n, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S), 1)]
PYTHON_BLOCKS = [block for _, _, block in BLOCKS]
BASH_BLOCKS = [b for text in PAGES.values() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]
#: ``print(...)  # 3 True EMPTY_BATCH``: values (numbers, booleans, conditions) the block shows it prints
SHOWN = r"^print\(.*\)\s+# ((?:\d+|True|False|[A-Z][A-Z_]+)(?: (?:\d+|True|False|[A-Z][A-Z_]+))*)\s*(?::.*)?$"
SF_NAMES = sorted({name for text in PAGES.values() for name in re.findall(r"\bsf\.([A-Za-z_]\w*)", text)})
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
    assert hasattr(importlib.import_module(module), name), f"the docs import {name} from {module}"


def test_the_docs_imports_were_found() -> None:
    assert len(IMPORTS) >= 15


@pytest.mark.parametrize("name", SF_NAMES)
def test_every_sf_name_the_docs_write_is_public(name: str) -> None:
    import spark_flows as sf

    assert name in sf.__all__, f"the docs write sf.{name}, which `import spark_flows as sf` does not export"


def test_every_page_the_readme_links_exists() -> None:
    linked = re.findall(r"\]\(((?:docs|examples)/[^)#]+)\)", README)
    assert linked and all((ROOT / path).exists() for path in linked), [p for p in linked if not (ROOT / p).exists()]


def test_the_readme_stays_short() -> None:
    assert len(README.encode()) <= 15 * 1024, "README.md is over 15 KB: move the manual into docs/"


@pytest.mark.parametrize(("job", "flags"), _job_lines())
def test_every_job_and_flag_shown_exists(job: str, flags: list[str]) -> None:
    source = (ROOT / job).read_text()
    for flag in flags:
        assert flag in COMMON_FLAGS or f'"{flag}"' in source, f"{job} has no flag {flag}"


@pytest.mark.classic  # the blocks' Spark work once is enough; the APIs they use run on Connect in their own tests
@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)), ids=[f"{p}#{n}" for p, n, _ in BLOCKS])
def test_every_python_block_runs_as_written(spark, tmp_path: Path, capsys, index: int) -> None:
    """Each block is complete: it runs in a fresh namespace, its root a new directory; a block that defines tests
    (the plugin's example) has them called with the plugin's fixtures; `print(...)  # 3` prints 3."""
    block = PYTHON_BLOCKS[index].replace('"/tmp/spark_flows_example"', repr(str(tmp_path / "root")))
    namespace: dict[str, object] = {"__name__": f"readme_block_{index}"}
    page, n, _ = BLOCKS[index]
    exec(compile(block, f"{page} python block {n}", "exec", dont_inherit=True), namespace)  # as a user runs it
    for name, test in [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]:
        fixtures = {"spark_flows_session": spark, "tmp_path": tmp_path / name}
        test(**{p: fixtures[p] for p in inspect.signature(test).parameters})
    printed = capsys.readouterr().out.split()
    for shown in re.findall(SHOWN, PYTHON_BLOCKS[index], re.M):
        assert all(value in printed for value in shown.split()), f"the block shows {shown}, it printed {printed}"
