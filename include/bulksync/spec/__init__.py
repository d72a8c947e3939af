"""Pipeline specs: pydantic models and loading with errors that name the file and field."""

from __future__ import annotations

from bulksync.spec.loader import load_spec, load_specs, spec_files
from bulksync.spec.models import DatasetSpec, PipelineSpec

__all__ = ["DatasetSpec", "PipelineSpec", "load_spec", "load_specs", "spec_files"]
