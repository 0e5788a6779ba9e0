"""Airflow-side adapters of the MSPA pipeline: hooks that turn Airflow connections into the
plain URLs, clients and stores that :mod:`mspa_tasks` takes. Airflow puts ``plugins/`` on
``sys.path``, so DAG files import this package as ``mspa_airflow``."""
