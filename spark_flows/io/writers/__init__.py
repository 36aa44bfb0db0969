"""Output writers with one write contract: a batch is written once, a replay is reported, never repeated.

The contract, the same for every writer (:class:`DeltaWriter`, :class:`FilesWriter` and its CSV/Parquet
classes):

* **One skip rule.** A :class:`Batch` is an app id and an int version. A batch whose version is ``<=`` the
  last one recorded for its app id on the output is *skipped*, and reported as such
  (:attr:`WriteResult.skipped`, :attr:`WriteResult.reason`), only when it is known to be committed: for
  Delta, a ``txn`` action of the table's log recorded it; for files, the output's ``_PUBLISHED.json``
  lists it. An older batch that no commit in the log recorded is refused with ``BATCH_OUT_OF_ORDER``
  (Delta would skip it *silently*), never reported as done. After Delta's log cleanup removed the old
  commits, the checkpoint still records the app's txn: the recorded version is skipped (its rows are no
  longer known, the reason says so), and an older one is skipped with a warning, as Delta skips it.
* **An empty batch is refused** (``EMPTY_BATCH``) unless the writer allows it: writing 0 rows would use
  up the batch's version, and the real data under the same version would then be skipped for ever.
* **Outputs never nest** inside another table or published output, and a path that spark_flows did not
  publish is never replaced unless the caller says so (``replace_foreign=True``).
* :class:`WriteResult` carries what consumers need: rows written by this call, the rows of the batch as
  committed (also for a skip), the Delta table version holding it.

:class:`DeltaWriter` passes ``txnAppId``/``txnVersion`` as writer options (never the session confs, which
all threads share), reads the txn facts from the table's log (:mod:`spark_flows.io.delta_log`, no Spark job),
and retries Delta's commit conflicts; ``replace={"date": "20240101"}`` replaces one partition.
:class:`FilesWriter` writes to ``<parent>/_staging/<name>/``, puts ``_PUBLISHED.json`` inside, and
publishes with one rename: readers see the old output or the whole new one, never a partial directory;
the previous output is moved aside and deleted only once the new one is in place, and a crash in between
is rolled back by the next write.

Example (needs a SparkSession ``spark``; run as a doctest)
----------------------------------------------------------
>>> import tempfile
>>> path = tempfile.mkdtemp() + "/devices"
>>> df = spark.createDataFrame([("mac", "MacBook", "14")], "type string, full_name string, version string")
>>> DeltaWriter().write(df, path, batch=Batch("loader", 7)).rows
1
>>> replay = DeltaWriter().write(df, path, batch=Batch("loader", 7))
>>> replay.skipped, replay.reason, replay.batch_rows, replay.table_version
(True, 'batch 7 already committed (app loader, table version 0)', 1, 0)
"""

from __future__ import annotations

from spark_flows.io.writers.contract import (
    PUBLISHED_MARKER,
    STAGING_DIR,
    Batch,
    PendingBatch,
    Writer,
    WriteResult,
    check_not_nested,
)
from spark_flows.io.writers.delta import DeltaWriter
from spark_flows.io.writers.files import CsvWriter, FilesWriter, ParquetWriter, flatten_nested, read_published

__all__ = [
    "PUBLISHED_MARKER", "STAGING_DIR", "Batch", "CsvWriter", "DeltaWriter", "FilesWriter", "ParquetWriter",
    "PendingBatch", "WriteResult", "Writer", "check_not_nested", "flatten_nested", "read_published",
]
