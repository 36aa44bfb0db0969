"""Dagster Pipes: a job launched by Dagster reports each output as a materialization of the asset it names.

When Dagster runs a bundled job or a user's job through Pipes (``PipesSubprocessClient``, say), the process
has ``$DAGSTER_PIPES_CONTEXT`` and spark_flows reports to it without being asked
(``pip install spark_flows[dagster]`` brings ``dagster-pipes``, the small package the job's side needs). At
the end of the run each output whose name (the last part of its path: ``tables/visits_cube`` is
``visits_cube``) is an asset in the Pipes context, or the only output of a run for one asset, is reported as
that asset's materialization: its metadata are the outcome (written, or skipped as a replay and why), rows,
path, table version and batch; its data version is the Delta table version (a files output's batch). A
merge's completeness is reported as the asset check ``spark_flows_completeness`` (passed when no parent is
missing; ``WARN`` severity) when the launching asset declares that check and says so with
``extras={"spark_flows_checks": True}`` (Dagster refuses a check an asset does not declare).

Example
-------
>>> asset_for("/data/tables/visits_cube/", ["visits_cube", "devices"], outputs=2)
'visits_cube'
>>> asset_for("/data/exports/devices.csv", ["cube"], outputs=2) is None
True
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

from spark_flows.errors import EnvironmentSetupError
from spark_flows.events.model import OutputEvent, RunReport

CHECK = "spark_flows_completeness"
#: the Pipes ``extras`` key by which the launching asset says it declares :data:`CHECK`
CHECKS_EXTRA = "spark_flows_checks"


def asset_for(path: str, asset_keys: Sequence[str], *, outputs: int) -> str | None:
    """The asset an output at ``path`` materializes among ``asset_keys``: the one named as the path's last
    part, else the only asset when the run wrote only one output, else none."""
    name = posixpath.basename(path.rstrip("/"))
    if name in asset_keys:
        return name
    return asset_keys[0] if len(asset_keys) == 1 and outputs == 1 else None


def metadata(output: OutputEvent) -> dict[str, Any]:
    """What Dagster shows beside the materialization."""
    facts: dict[str, Any] = {"outcome": output.outcome, "path": output.path, "format": output.format}
    if output.rows is not None:
        facts["rows"] = output.rows
    if output.table_version is not None:
        facts["table_version"] = output.table_version
    if output.batch is not None:
        facts["batch_app_id"], facts["batch_version"] = output.batch.app_id, output.batch.version
    if output.reason:
        facts["reason"] = output.reason
    if output.completeness is not None:
        facts["completeness_ratio"] = output.completeness.get("ratio")
    return facts


class PipesSink:
    """Report a run's outputs to the Dagster Pipes context that launched the process."""

    name = "dagster"

    def __init__(self, context: Any | None = None) -> None:
        if context is None:
            try:
                from dagster_pipes import open_dagster_pipes
            except ImportError as exc:
                raise EnvironmentSetupError("the dagster event sink needs dagster-pipes: "
                                            "pip install 'spark_flows[dagster]'") from exc
            context = open_dagster_pipes()
        self.context = context

    def emit(self, report: RunReport) -> None:
        if report.state == "START":
            self.context.log.info(f"spark_flows: {report.job} run {report.run_id} started")
            return
        try:
            keys = list(self.context.asset_keys or [])
            checks = bool((self.context.extras or {}).get(CHECKS_EXTRA))
            for output in report.outputs:
                asset = asset_for(output.path, keys, outputs=len(report.outputs))
                if asset is None:
                    continue
                version = output.table_version if output.table_version is not None else (
                    output.batch.label if output.batch else None)
                if output.outcome != "refused":
                    self.context.report_asset_materialization(metadata=metadata(output), asset_key=asset,
                                                              data_version=None if version is None else str(version))
                if output.completeness is not None and checks:
                    missing = dict(output.completeness.get("missing") or {})
                    self.context.report_asset_check(CHECK, passed=not output.partial, severity="WARN",
                                                    asset_key=asset, metadata={
                                                        "ratio": output.completeness.get("ratio"),
                                                        "missing": ", ".join(f"{p} ({r})" for p, r in missing.items())
                                                        or "none", "rule": output.rule or ""})
        finally:
            if report.error is not None:
                self.context.log.error(f"spark_flows: {report.job} failed: {report.error}")
            self.context.close()

