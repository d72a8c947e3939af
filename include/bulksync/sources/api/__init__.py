"""The ``api`` source: one engine for HTTP APIs (REST, OData, GraphQL), presets as data files.

Modules: :mod:`~bulksync.sources.api.client` (requests, retries, limits), ``paginate``, ``window``,
``records`` (JSON → Arrow), ``source`` (the Source), ``presets`` (the data files), ``protocol``
(named hooks), ``infer`` (``columns: infer``) and ``cli`` (``bulksync api``). See docs/api.md.
"""
