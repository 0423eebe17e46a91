"""``fraudkeras.spark.score(df, model)``: scoring a Spark DataFrame (needs
``pip install 'fraudkeras[spark]'``). The code lives in
:mod:`fraudkeras.deploy.spark`; importing this module imports pyspark only when used."""

from __future__ import annotations

from fraudkeras.deploy.spark import our_error, score, score_files, spark_session

__all__ = ["our_error", "score", "score_files", "spark_session"]
