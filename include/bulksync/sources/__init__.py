"""Sources: one module per system, registered by kind (see :mod:`bulksync.sources.registry`)."""
