"""IBM i (AS/400, Db2 for i) specifics: object names, the SQL the source sends, data conventions.

Nothing here opens a connection by itself: :mod:`bulksync.hooks.ibmi` connects and
:mod:`bulksync.sources.ibmi` puts the parts together.
"""
