"""The storage layer: filesystems by guarantee (local disk, HDFS, S3-compatible), ``Storage``, the Delta log facts
(``delta_log``, one module), sources, the partition layout and the writers. Imports ``core`` and ``errors``."""
