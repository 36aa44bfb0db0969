"""Spark Connect: no JVM on this side; groups are operation tags, and the server's logging is the server's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class Connect:
    """The :class:`~spark_flows.core.backend.base.Backend` of a Spark Connect session."""

    spark: SparkSession

    def master(self) -> str | None:
        return None

    def connect_url(self) -> str | None:
        """Connection parameters (tokens) are not carried over."""
        try:
            return f"sc://{self.spark.client._builder.endpoint}"  # type: ignore[attr-defined]
        except AttributeError:  # a client whose internals moved: children then need --remote or $SPARK_REMOTE
            return None

    def class_loadable(self, name: str) -> bool:
        return True

    def local_property(self, key: str) -> str | None:
        return None

    def set_local_property(self, key: str, value: str | None) -> None:
        return None

    def enter_group(self, group: str, description: str, pool: str) -> None:
        self.spark.addTag(group)

    def leave_group(self, group: str) -> None:
        self.spark.removeTag(group)

    def cancel_group(self, group: str) -> None:
        self.spark.interruptTag(group)

    def running_jobs(self) -> list[str] | None:
        return None  # the client has no status tracker

    def quiet(self, *, debug: bool = False) -> None:
        return None
