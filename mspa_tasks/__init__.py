"""MSPA pipeline library: the Airflow-free core that every task, test, CLI and pod calls.

Nothing in this package imports Airflow. Functions take a partition ``ds``, URLs, URIs and
typed config objects, and return small references (URIs, counts, versions).
"""

from __future__ import annotations

__version__ = "0.1.0"
