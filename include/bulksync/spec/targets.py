"""Spec models of target kinds (``target: {kind: postgres, ...}``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from bulksync.spec.common import Identifier, StrictModel
from bulksync.spec.lake import AzureLakeTargetSpec
from bulksync.spec.salesforce_target import SalesforceTargetSpec

LoadMode = Literal["append", "merge", "replace", "interval"]
TARGET_KINDS = ("postgres", "sqlite", "azure_lake", "salesforce")


class SqlTargetSpec(StrictModel):
    """Where a dataset lands and how.

    ``mode``: ``append`` inserts; ``merge`` upserts on ``keys``; ``replace`` is a full refresh in
    one transaction; ``interval`` deletes the run's window of ``interval_column`` and inserts.
    ``schema_changes``: ``evolve`` adds new source columns, ``freeze`` refuses them.
    """

    kind: Literal["postgres", "sqlite"]
    conn_id: str = Field(min_length=1, description="Airflow connection id of the target database.")
    table: Identifier
    db_schema: Identifier | None = Field(None, description="Database schema (PostgreSQL), default public.")
    mode: LoadMode = "append"
    keys: list[Identifier] = Field(default_factory=list)
    interval_column: Identifier | None = None
    schema_changes: Literal["evolve", "freeze"] = "evolve"
    delete_flag: Identifier | None = Field(
        None,
        description="merge only: a boolean staged column (e.g. IsDeleted); rows where it is true delete the "
        "target row with their keys instead of upserting it.",
    )

    @model_validator(mode="after")
    def _mode_needs(self) -> SqlTargetSpec:
        if self.mode == "merge" and not self.keys:
            raise ValueError("mode 'merge' needs 'keys' (the columns that identify a row)")
        if self.mode == "interval" and not self.interval_column:
            raise ValueError("mode 'interval' needs 'interval_column' (the column holding the window's time)")
        if self.delete_flag and self.mode != "merge":
            raise ValueError("'delete_flag' applies deletes in mode 'merge' only")
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("'keys' names a column twice")
        problems = _name_problems(
            self.kind,
            {
                "table": [self.table],
                "db_schema": [self.db_schema or ""],
                "key": list(self.keys),
                "interval_column": [self.interval_column or ""],
                "delete_flag": [self.delete_flag or ""],
            },
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _name_problems(kind: str, names: dict[str, list[str]]) -> list[str]:
    from bulksync.targets.capabilities import BY_KIND, identifier_problems

    caps = BY_KIND.get(kind)
    return identifier_problems(caps, names) if caps else []


def dataset_name_problems(ds: Any) -> list[str]:
    """Names a dataset's source declares or its transforms create that its SQL target would truncate
    (the target's own names are checked by :class:`SqlTargetSpec`); columns only the source knows
    at run time are checked again before the load."""
    target = ds.target
    if not isinstance(target, SqlTargetSpec):
        return []
    columns: list[str] = []
    declared = getattr(getattr(ds.source, "options", None), "columns", None) or []
    columns += [c if isinstance(c, str) else str(getattr(c, "name", "")) for c in declared]
    for step in ds.transforms:
        for attr, pick in (("rename", "values"), ("derive", "keys"), ("select", None)):
            value = getattr(step, attr, None)
            if isinstance(value, dict):
                columns += list(value.values() if pick == "values" else value.keys())
            elif isinstance(value, list):
                columns += [str(v) for v in value]
    return _name_problems(target.kind, {"column": sorted(set(columns))})


def _target_tag(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    # unknown kinds go to the SQL model, whose ``kind`` error lists the SQL kinds
    return {"azure_lake": "kind=azure_lake", "salesforce": "kind=salesforce"}.get(str(kind), "kind=sql")


TargetSpec = Annotated[
    Annotated[SqlTargetSpec, Tag("kind=sql")]
    | Annotated[AzureLakeTargetSpec, Tag("kind=azure_lake")]
    | Annotated[SalesforceTargetSpec, Tag("kind=salesforce")],
    Discriminator(_target_tag),
]
