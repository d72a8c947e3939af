"""Spec model of the ``azure_lake`` target: Hive-partitioned Parquet in an Azure container."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from bulksync.spec.common import Identifier, StrictModel

LakeMode = Literal["append", "replace_partition"]


class AzureLakeTargetSpec(StrictModel):
    """``target: {kind: azure_lake, conn_id: ..., path: abfs://lake/sales, table: orders, ...}``.

    Writes ``{path}/{table}/{col}={value}/.../part-*.parquet`` with a ``_SUCCESS`` marker per
    committed partition folder (only folders holding one count). ``append`` adds the run's files
    (a rerun of the same interval replaces that interval's files, never duplicates them);
    ``replace_partition`` replaces every partition folder the run writes into.
    """

    kind: Literal["azure_lake"]
    conn_id: str | None = Field(
        None, description="Airflow connection (type wasb) of the storage account; not needed for a local path."
    )
    path: str = Field(
        min_length=1,
        description="Lake root: abfs://container/prefix (or wasb://container@account.blob.core.windows.net/prefix), "
        "or a local folder for development.",
    )
    table: Identifier = Field(description="Folder of the dataset under the lake root.")
    mode: LakeMode = "append"
    partition_by: list[Identifier] = Field(
        default_factory=list, description="Columns whose values name the key=value/ folders, outermost first."
    )
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    row_group_rows: int = Field(
        128 * 1024, ge=1_000, le=4_000_000, description="Rows per row group: the most buffered per open partition."
    )
    max_open_partitions: int = Field(64, ge=1, le=4096, description="Partition files kept open at once while writing.")

    @property
    def db_schema(self) -> None:
        """Lakes have no database schema (kept for code that names targets generically)."""
        return None

    @property
    def keys(self) -> list[str]:
        """No merge keys in a lake."""
        return []

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if "://" in value:
            from bulksync.errors import ConfigurationError
            from bulksync.storage.location import split_azure_url

            try:
                split_azure_url(value)
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _needs(self) -> AzureLakeTargetSpec:
        if self.mode == "replace_partition" and not self.partition_by:
            raise ValueError("mode 'replace_partition' needs 'partition_by' (the columns naming the partition folders)")
        if len(set(self.partition_by)) != len(self.partition_by):
            raise ValueError("'partition_by' names a column twice")
        if "://" in self.path and not self.conn_id:
            raise ValueError(f"path {self.path} needs conn_id: the Airflow connection (type wasb) of the account")
        return self
