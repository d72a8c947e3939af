"""Transforms: declarative pandas steps applied chunk by chunk, and named Python transforms.

Importing this package is cheap (no pandas): specs parse expressions at DAG parse time.
"""
