"""The airflow DAG of the pipeline spec acme__writeback.yaml beside this file.

One DAG file per spec, written by `bulksync dags sync` (do not edit): a broken spec is an import error of this
file only, and every other DAG keeps loading (docs/operations.md).
"""

from bulksync.factory import spec_dag

dag = spec_dag(__file__)
