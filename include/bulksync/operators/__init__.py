"""Thin Airflow operators that call the bulksync package."""
