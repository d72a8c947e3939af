"""Where staged data and lake files live: a local folder or an Azure container, one interface (fsspec)."""

from __future__ import annotations

from bulksync.storage.location import Location, open_location

__all__ = ["Location", "open_location"]
