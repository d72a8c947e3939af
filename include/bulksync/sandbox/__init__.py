"""Local stand-ins of enterprise systems for demos, tests and benches."""
