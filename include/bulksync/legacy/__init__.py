"""bulksync's COBOL copybook engine: EBCDIC / mainframe files to Arrow. Public API: :mod:`bulksync.legacy.reader`."""
