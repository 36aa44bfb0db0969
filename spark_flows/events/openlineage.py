"""OpenLineage run events from the client: the same code on classic Spark and Spark Connect.

OpenLineage's Spark agent lives in the driver JVM and does not follow Spark Connect applications
(OpenLineage#4288), and it knows jobs, not what spark_flows decided. :class:`OpenLineageSink` sends a run's
START, and COMPLETE or FAIL, through ``openlineage-python`` (``pip install spark_flows[openlineage]``; the
transport is configured as that client configures it: ``$OPENLINEAGE_URL``, ``$OPENLINEAGE_CONFIG``,
``openlineage.yml``). Each output dataset is named as the OpenLineage Spark integration names a path
(:func:`dataset_name`) and carries the standard ``outputStatistics`` and ``version`` facets and spark_flows' own:

- ``spark_flows_batch`` (output): the outcome (written, skipped as a replay, refused), the batch's app id and
  version, why it was skipped or refused, the partition replaced;
- ``spark_flows_completeness`` (output): a fan-in's ratio, its expected and present parents, each missing
  parent with its reason, and the trigger rule;
- ``spark_flows_route`` (run): the branches Exclusive Choices took, among which, and why;
- ``spark_flows_run`` (run): a Single Runner's attempt, first run and lock, or its refusal.

Their JSON schemas ship in ``spark_flows/events/schemas/`` (:func:`facet_schema`). The parent run comes from
``$OPENLINEAGE_PARENT_ID`` (``namespace/job/run id``, what Airflow's ``lineage_parent_id`` macro gives) and
``$OPENLINEAGE_ROOT_PARENT_ID``; the job's namespace from ``$OPENLINEAGE_NAMESPACE`` (default ``default``).

Example
-------
>>> dataset_name("s3a://lake/tables/cube"), dataset_name("/data/tables/cube")
(('s3://lake', 'tables/cube'), ('file', '/data/tables/cube'))
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any, ClassVar
from urllib.parse import urlsplit

from spark_flows.errors import EnvironmentSetupError, SparkFlowsValueError
from spark_flows.events.model import OutputEvent, RunReport

PRODUCER = "https://pypi.org/project/spark_flows/"
#: where the facets' schemas are published (the files ship in ``spark_flows/events/schemas/``), shaped as
#: OpenLineage's own: ``<base><facet>.json#/$defs/<Facet>``
SCHEMA_BASE = "https://spark-flows.github.io/spark_flows/spec/facets/1-0-0/"
FACETS = ("spark_flows_batch", "spark_flows_completeness", "spark_flows_route", "spark_flows_run")


def facet_schema(name: str) -> dict[str, Any]:
    """The published JSON schema of one of spark_flows' :data:`FACETS`."""
    if name not in FACETS:
        raise SparkFlowsValueError(f"no facet named {name!r}: one of {', '.join(FACETS)}", parameters={"facet": name})
    text = resources.files("spark_flows.events").joinpath(f"schemas/{name}.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def dataset_name(path: str) -> tuple[str, str]:
    """``(namespace, name)`` of a path, as OpenLineage's naming spec and its Spark integration give them:
    ``file`` and the absolute path on local disk, ``s3://bucket`` and the key for ``s3a://`` (and ``s3://``),
    ``scheme://authority`` and the path for ``hdfs://``, ``gs://``, ``abfss://``."""
    parts = urlsplit(path)
    if parts.scheme in ("", "file"):
        return "file", os.path.abspath(parts.path if parts.scheme else path)
    if parts.scheme in ("s3", "s3a", "s3n"):
        return f"s3://{parts.netloc}", parts.path.lstrip("/")
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def parent_from(value: str) -> tuple[str, str, str] | None:
    """``(namespace, job, run id)`` of a ``namespace/job/run id`` value (a job name may hold ``/``)."""
    namespace, _, rest = value.strip().partition("/")
    job, _, run_id = rest.rpartition("/")
    return (namespace, job, run_id) if namespace and job and run_id else None


class OpenLineageSink:
    """Send each :class:`~spark_flows.events.model.RunReport` as an OpenLineage ``RunEvent``."""

    name = "openlineage"
    _facet_classes: ClassVar[dict[str, Any]] = {}

    def __init__(self, client: Any | None = None, *, namespace: str | None = None) -> None:
        try:
            from openlineage.client import OpenLineageClient
        except ImportError as exc:
            raise EnvironmentSetupError("the openlineage event sink needs openlineage-python: "
                                        "pip install 'spark_flows[openlineage]'") from exc
        self.client = client if client is not None else OpenLineageClient()
        self.namespace = namespace or os.environ.get("OPENLINEAGE_NAMESPACE", "default")

    def emit(self, report: RunReport) -> None:
        # the HTTP transport retries an unreachable endpoint; its retries are not the job's warnings to print
        retries = logging.getLogger("urllib3.connectionpool")
        level = retries.level
        retries.setLevel(logging.ERROR)
        try:
            self.client.emit(self.event(report))
        finally:
            retries.setLevel(level)

    def event(self, report: RunReport) -> Any:
        """The OpenLineage ``RunEvent`` of ``report``."""
        from openlineage.client.event_v2 import Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job

        run_facets: dict[str, Any] = {}
        parent = _parent_facet()
        if parent is not None:
            run_facets["parent"] = parent
        if report.routes:
            run_facets["spark_flows_route"] = _facet("spark_flows_route", "RunFacet", routes=[
                {"branch": r.branch, "candidates": list(r.candidates), "reason": r.reason} for r in report.routes])
        if report.facts:
            run_facets["spark_flows_run"] = _facet("spark_flows_run", "RunFacet", **{
                k: v for k, v in report.facts.items() if k in ("status", "attempt", "first_run", "run_id", "reason")})
        if report.error is not None:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=report.error,
                                                                               programmingLanguage="python")
        job_type = job_type_job.JobTypeJobFacet(processingType="BATCH", integration="SPARK_FLOWS", jobType="JOB")
        job_facets: dict[str, Any] = {"jobType": job_type}
        outputs = [OutputDataset(*dataset_name(o.path), facets=_dataset_facets(o), outputFacets=_output_facets(o))
                   for o in report.outputs]
        return RunEvent(eventType=RunState[report.state], eventTime=report.time.isoformat(),
                        run=Run(runId=report.run_id, facets=run_facets),
                        job=Job(namespace=self.namespace, name=report.job, facets=job_facets),
                        producer=PRODUCER, inputs=[], outputs=outputs)


def _facet(name: str, base: str, **fields: Any) -> Any:
    """An instance of spark_flows' facet ``name``: an attrs class over OpenLineage's ``base`` facet whose
    ``_schemaURL`` is the published schema."""
    cls = OpenLineageSink._facet_classes.get(name)
    if cls is None:
        import attr
        from openlineage.client.generated import base as generated

        schema_url = f"{SCHEMA_BASE}{name}.json#/$defs/{_title(name)}"
        properties = facet_schema(name)["$defs"][_title(name)]["allOf"][1]["properties"]
        cls = attr.make_class(_title(name), {key: attr.field(default=None, kw_only=True) for key in properties},
                              bases=(getattr(generated, base),))
        cls._get_schema = staticmethod(lambda: schema_url)  # type: ignore[attr-defined]
        OpenLineageSink._facet_classes[name] = cls
    return cls(**fields)


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) + "Facet"


def _dataset_facets(output: OutputEvent) -> dict[str, Any]:
    from openlineage.client.facet_v2 import dataset_version_dataset

    if output.table_version is None:
        return {}
    return {"version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(output.table_version))}


def _output_facets(output: OutputEvent) -> dict[str, Any]:
    from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

    facets: dict[str, Any] = {
        "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(
            rowCount=output.rows if output.outcome == "written" else 0),
        "spark_flows_batch": _facet("spark_flows_batch", "OutputDatasetFacet", outcome=output.outcome,
                                    appId=output.batch.app_id if output.batch else None,
                                    version=output.batch.version if output.batch else None,
                                    batchRows=output.rows, reason=output.reason or None,
                                    partition=dict(output.partition) or None),
    }
    if output.completeness is not None:
        record: Mapping[str, Any] = output.completeness
        missing = record.get("missing") or {}
        facets["spark_flows_completeness"] = _facet(
            "spark_flows_completeness", "OutputDatasetFacet", ratio=record.get("ratio"),
            expected=record.get("expected"), present=record.get("present"),
            isApproximate=bool(record.get("is_approximate")), rule=output.rule,
            missing=[{"parent": p, "reason": r} for p, r in dict(missing).items()])
    return facets


def _parent_facet() -> Any | None:
    from openlineage.client.facet_v2 import parent_run

    parent = parent_from(os.environ.get("OPENLINEAGE_PARENT_ID", ""))
    if parent is None:
        return None
    root = parent_from(os.environ.get("OPENLINEAGE_ROOT_PARENT_ID", ""))
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent[2]), job=parent_run.Job(namespace=parent[0], name=parent[1]),
        root=None if root is None else parent_run.Root(run=parent_run.RootRun(runId=root[2]),
                                                       job=parent_run.RootJob(namespace=root[0], name=root[1])))
