"""Spec models of transform steps: each step is a one-key mapping, e.g. ``- rename: {a: b}``.

Steps are declarative; the only code a spec can reach is a *named* transform registered with
:func:`bulksync.transform.registry.transform` from ``include/transforms/``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from bulksync.spec.columns import TypeName
from bulksync.spec.common import Identifier, StrictModel
from bulksync.transform.expressions import parse_expression


class RenameStep(StrictModel):
    """Rename columns: ``rename: {OldName: new_name}``."""

    rename: dict[str, Identifier] = Field(min_length=1)


class SelectStep(StrictModel):
    """Keep only these columns, in this order: ``select: [a, b]``."""

    select: list[Identifier] = Field(min_length=1)


class DropStep(StrictModel):
    """Drop columns: ``drop: [a, b]``."""

    drop: list[Identifier] = Field(min_length=1)


class CastStep(StrictModel):
    """Cast columns to declared types: ``cast: {amount: decimal(18,2)}``."""

    cast: dict[Identifier, TypeName] = Field(min_length=1)


class TrimStep(StrictModel):
    """Strip surrounding whitespace: ``trim: [name]`` or ``trim: all`` (every string column)."""

    trim: list[Identifier] | Literal["all"]


class FillStep(StrictModel):
    """Replace nulls with defaults: ``fill: {country: US, score: 0}``."""

    fill: dict[Identifier, str | int | float | bool] = Field(min_length=1)


class MapArgs(StrictModel):
    column: Identifier
    values: dict[str, str | int | float | bool | None] = Field(min_length=1)
    default: str | int | float | bool | None = None
    keep_unmapped: bool = Field(True, description="Keep values not in 'values' (else use 'default').")


class MapStep(StrictModel):
    """Map values: ``map: {column: status, values: {A: active, I: inactive}}``."""

    map: MapArgs


class FilterStep(StrictModel):
    """Keep rows where an expression is true: ``filter: "amount > 0 and status != 'X'"``."""

    filter: str

    @field_validator("filter")
    @classmethod
    def _parse(cls, value: str) -> str:
        parse_expression(value)
        return value


class DeriveStep(StrictModel):
    """Derive columns from expressions: ``derive: {full_name: "concat(first, ' ', last)"}``."""

    derive: dict[Identifier, str] = Field(min_length=1)

    @field_validator("derive")
    @classmethod
    def _parse(cls, value: dict[str, str]) -> dict[str, str]:
        for expr in value.values():
            parse_expression(expr)
        return value


class DedupeArgs(StrictModel):
    keys: list[Identifier] = Field(min_length=1)
    latest_by: Identifier | None = Field(None, description="Keep the row with the highest value here.")


class DedupeStep(StrictModel):
    """Keep one row per key, the latest by a column: ``dedupe: {keys: [id], latest_by: updated_at}``."""

    dedupe: DedupeArgs


class SaltSpec(StrictModel):
    """Where the salt comes from: an Airflow Variable or a connection's password, never the spec."""

    variable: str | None = None
    conn_id: str | None = None

    @model_validator(mode="after")
    def _one(self) -> SaltSpec:
        if (self.variable is None) == (self.conn_id is None):
            raise ValueError("give exactly one of 'variable' or 'conn_id' for the salt")
        return self


class HashArgs(StrictModel):
    columns: list[Identifier] = Field(min_length=1)
    salt: SaltSpec


class HashStep(StrictModel):
    """Salted SHA-256 of PII columns (hex): ``hash: {columns: [email], salt: {variable: pii_salt}}``."""

    hash: HashArgs


class PythonArgs(StrictModel):
    name: str = Field(description="Name a function was registered under with @transform.")
    options: dict[str, Any] = Field(default_factory=dict)


class PythonStep(StrictModel):
    """A named transform from ``include/transforms/``: ``python: {name: normalize_phone}``."""

    python: PythonArgs


STEP_MODELS: dict[str, type[StrictModel]] = {
    "rename": RenameStep,
    "select": SelectStep,
    "drop": DropStep,
    "cast": CastStep,
    "trim": TrimStep,
    "fill": FillStep,
    "map": MapStep,
    "filter": FilterStep,
    "derive": DeriveStep,
    "dedupe": DedupeStep,
    "hash": HashStep,
    "python": PythonStep,
}


def _step_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = list(value)
        return f"step={keys[0]}" if len(keys) == 1 and keys[0] in STEP_MODELS else None
    for op, model in STEP_MODELS.items():
        if isinstance(value, model):
            return f"step={op}"
    return None


TransformStep = Annotated[
    Annotated[RenameStep, Tag("step=rename")]
    | Annotated[SelectStep, Tag("step=select")]
    | Annotated[DropStep, Tag("step=drop")]
    | Annotated[CastStep, Tag("step=cast")]
    | Annotated[TrimStep, Tag("step=trim")]
    | Annotated[FillStep, Tag("step=fill")]
    | Annotated[MapStep, Tag("step=map")]
    | Annotated[FilterStep, Tag("step=filter")]
    | Annotated[DeriveStep, Tag("step=derive")]
    | Annotated[DedupeStep, Tag("step=dedupe")]
    | Annotated[HashStep, Tag("step=hash")]
    | Annotated[PythonStep, Tag("step=python")],
    Discriminator(
        _step_tag,
        custom_error_type="unknown_transform",
        custom_error_message=("a transform step is a mapping with exactly one of: " + ", ".join(STEP_MODELS)),
    ),
]


def step_op(step: StrictModel) -> str:
    """Return the operation name of a parsed step (``rename``, ``cast`` …)."""
    tag = _step_tag(step)
    assert tag is not None
    return tag.removeprefix("step=")
