"""Extract an IBM i file or query into a staging partition without a pipeline spec.

This is what :class:`~bulksync.operators.ibmi.IbmiExtractOperator` calls in hand-written DAGs: the
same source, conventions and atomic commit as a spec-driven extract, configured by arguments.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pydantic import ValidationError

from bulksync.errors import SpecError
from bulksync.settings import staging_root
from bulksync.spec.ibmi import IbmiSourceSpec
from bulksync.spec.loader import format_loc
from bulksync.staging.manifest import Manifest
from bulksync.staging.partition import Partition, Window
from bulksync.staging.writer import PartitionWriter

log = logging.getLogger(__name__)


def parse_bound(value: Any) -> dt.datetime | None:
    """A window bound from a rendered template (ISO text), a datetime or nothing (open)."""
    if value in (None, "", "None"):
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def source_spec(conn_id: str, options: dict[str, Any], where: str = "IbmiExtractOperator") -> IbmiSourceSpec:
    """Validate ``options`` as the options of an ``ibmi`` source.

    Raises:
        SpecError: naming each bad option.
    """
    try:
        return IbmiSourceSpec.model_validate({"kind": "ibmi", "conn_id": conn_id, "options": options})
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = tuple(e["loc"])
            loc = loc[1:] if loc[:1] == ("options",) else loc
            problems.append((where, format_loc(loc), str(e["msg"]).removeprefix("Value error, ")))
        raise SpecError(problems) from None


def extract_ibmi(
    spec: IbmiSourceSpec,
    *,
    tenant: str,
    pipeline: str,
    dataset: str,
    window: Window,
    run_id: str,
    try_number: int | None = None,
    chunk: dict[str, Any] | None = None,
) -> Manifest:
    """Read the source for ``window`` and commit it as the extract of ``tenant/pipeline/dataset``.

    Returns:
        The committed manifest (its :meth:`~Manifest.summary` is what an operator returns).
    """
    from bulksync.sources.ibmi import IbmiSource

    part = Partition(staging_root(), tenant, pipeline, dataset, window)
    source = IbmiSource(spec, window, chunk)
    try:
        count = source.source_count()
        with PartitionWriter(part, "extract", source.schema(), run_id=run_id, try_number=try_number) as writer:
            for batch in source.read():
                writer.write_batch(batch)
            manifest = writer.commit(
                window=window.to_json(),
                source_count=count,
                extra={"source_kind": "ibmi", "source_stats": source.stats},
            )
    finally:
        source.close()
    log.info("extracted %s from %s: %d rows (source says %d)", dataset, source.where, manifest.rows, count)
    return manifest
