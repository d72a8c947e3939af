"""Data quality: GX suites, the validation gate, quarantine, reconciliation, reports.

Only :mod:`bulksync.quality.suites` is imported at DAG parse time (no GX import there); the gate
imports Great Expectations inside the task.
"""
