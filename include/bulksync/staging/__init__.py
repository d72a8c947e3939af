"""Staging partitions: Parquet parts plus a manifest, committed atomically."""

from __future__ import annotations

from bulksync.staging.manifest import FileEntry, Manifest
from bulksync.staging.partition import Partition, Window
from bulksync.staging.reader import iter_batches, read_manifest
from bulksync.staging.writer import PartitionWriter

__all__ = ["FileEntry", "Manifest", "Partition", "PartitionWriter", "Window", "iter_batches", "read_manifest"]
