"""Airflow hooks: a connection in, a client out, nothing else."""
