"""The flow made visible: one structure shape, rendering, jobs' declared flows drawn without Spark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.render_graphs import FLOW_PAGE, rendered
from spark_flows.apps.cli import main as cli
from spark_flows.apps.graphs import job_graph
from spark_flows.book.transforms import devices_sequence
from spark_flows.errors import InputNotFoundError, SparkFlowsValueError
from spark_flows.flow.graph import Edge, Graph, Node, Structure, note, note_route, recording
from spark_flows.flow.render import to_dot, to_json, to_mermaid

JOBS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "jobs").glob("[a-z]*.py"))


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("drawing a flow must not start Spark")

    monkeypatch.setattr("spark_flows.core.session.get_session", refuse)
    monkeypatch.setattr("spark_flows.apps.harness.job_session", refuse)


def test_the_readme_shows_each_bundled_job_s_declared_flow(no_spark: None) -> None:
    text = FLOW_PAGE.read_text()
    drawn = {line.split()[2] for line in text.splitlines() if line.startswith("<!-- graph: ")}
    assert drawn == {f"jobs/{job}.py" for job in JOBS}, "every bundled job's graph is in docs/flow.md"
    assert rendered(text) == text, "docs/flow.md's graphs differ from the jobs' flows: run `make graphs`"


@pytest.mark.parametrize("job", JOBS)
def test_every_bundled_job_draws_its_flow_without_spark_in_every_format(no_spark: None, job: str, capsys) -> None:
    assert cli(["graph", f"jobs/{job}.py", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["name"] == job and record["nodes"] and record["edges"]
    assert cli(["graph", f"jobs/{job}.py", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith(f'digraph "{job}" {{')


def test_the_rules_are_on_the_edges(no_spark: None) -> None:
    cube = job_graph("jobs/visits_cube.py", ["--trigger-rule", "min_success=20", "--min-completeness", "0.8"])
    assert {e.rule for e in cube.edges if e.target == "hours"} == {"min_success=20"}
    assert [e.rule for e in cube.edges if e.source == "published_to"] == ["completeness >= 0.8", "default"]
    loader = job_graph("jobs/devices_loader.py", ["--batch-id", "7"])
    assert {e.rule for e in loader.edges if e.source == "devices_loader"} == {
        "Delta txnAppId/txnVersion devices_loader@7"}
    sequence = devices_sequence().graph()
    assert sequence.node("devices.validate").kind == "boundary"
    assert sequence.edges[0].rule == "restart point: a rerun resumes after validate"
    trend = job_graph("jobs/visits_trend_generator.py", ["--no-depends-on-past"])
    assert trend.node("single_run").rules == {"at_most": 1, "depends_on_past": False}


def test_bad_job_arguments_are_a_usage_error_naming_the_job(capsys) -> None:
    assert cli(["graph", "jobs/devices_loader.py", "--", "--concurrency", "many"]) == 2
    err = capsys.readouterr().err
    assert "invalid int value: 'many'" in err and "job devices_loader gave no flow" in err
    with pytest.raises(InputNotFoundError, match=r"job file jobs/no_such_job.py does not exist"):
        job_graph("jobs/no_such_job.py")


def test_a_run_s_facts_are_laid_over_the_declared_graph_and_strays_are_listed() -> None:
    from spark_flows.patterns.choice import choice_graph

    flow = Graph.chain("job", Graph.single("read", "input", "raw"), choice_graph("route", [("a", "x > 1"),
                                                                                            ("b", "default")]))
    with recording() as run:
        note("read", status="ran", rows=3)
        note_route("b", ("a", "b"), "no condition held")
        note("not_declared", status="ran")
    note("read", rows=99)  # outside any recording: ignored
    annotated = flow.annotate(run)
    assert annotated.node("read").facts == {"status": "ran", "rows": 3}
    assert annotated.node("route.b").facts["status"] == "taken"
    assert annotated.node("route.a").facts["status"] == "not taken"
    assert annotated.unmatched == ("not_declared",)
    mermaid = to_mermaid(annotated)
    assert 'n0[("raw<br/><small>rows 3</small>")]' in mermaid and "class n2 not_taken" in mermaid
    assert 'style=dashed' in to_dot(annotated)
    assert Graph.from_record(json.loads(to_json(annotated))) == annotated


def test_graphs_refuse_duplicate_and_undeclared_nodes() -> None:
    with pytest.raises(SparkFlowsValueError, match=r"declares node ids twice: \['a'\]"):
        Graph("g", (Node("a", "step", "a"), Node("a", "step", "a")))
    with pytest.raises(SparkFlowsValueError, match=r"undeclared node\(s\) \['b'\]"):
        Graph("g", (Node("a", "step", "a"),), (Edge("a", "b"),))


def test_blocks_offer_the_structure_protocol() -> None:
    from spark_flows.patterns.choice import OutputFactory, Router

    assert isinstance(devices_sequence(), Structure)
    assert isinstance(OutputFactory.default(), Structure) and isinstance(Router([], default="x"), Structure)
    assert not isinstance(object(), Structure)


def test_every_block_runs_and_draws_from_one_value_whose_settings_are_its_graph_s_rules() -> None:
    import datetime as dt

    import spark_flows as sf

    blocks = [
        sf.Split("s", (sf.branch("a", lambda df: None),), concurrency=3),
        sf.FanIn("f", (sf.Parent("00", path="/in/00"),), rule="min_success=1"),
        sf.DateChoice(dt.date(2024, 3, 1), before="old", on_or_after="new", name="c"),
        sf.ReadinessWait("/lake/devices", sf.Wait(timeout=5)),
        sf.SingleRunner("trend", lock_root="/l", ledger_path="/r", depends_on_past=False),
        sf.ConcurrentRunner("backfill", ("d1", "d2"), concurrency=4),
    ]
    assert all(isinstance(b, Structure) and callable(getattr(b, "run", None)) for b in blocks)
    split, fan_in, choice, ready, single, concurrent = (b.graph() for b in blocks)
    assert split.node("s").rules["concurrency"] == 3
    assert [e.rule for e in fan_in.edges] == ["min_success=1"]
    assert [e.rule for e in choice.edges] == ["execution_date < 2024-03-01", "execution_date >= 2024-03-01"]
    assert ready.node("marker.devices").rules == {"role": "wait", "timeout_seconds": 5}
    assert single.node("single_run").rules == {"at_most": 1, "depends_on_past": False}
    assert concurrent.children("backfill") == ["backfill.d1", "backfill.d2"]
    assert {e.rule for e in concurrent.edges} == {"at most 4 at once"}
