"""Legacy file drops: a landing zone with arrival conventions, atomic claims, an exactly-once ledger,
archive and quarantine, and readers for CSV, fixed-width text and COBOL copybook files.

See ``docs/file-drops.md``. The source kind is ``file_drop`` (:mod:`.source`).
"""
