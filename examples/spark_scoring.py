"""Score a Parquet table on Spark with an exported model; run by tests/deploy/test_spark.py.

python examples/spark_scoring.py runs/r/export/model_float32.tflite transactions/ scored/
"""

import sys

from pyspark.sql import SparkSession

import fraudkeras.spark


def score_table(spark: SparkSession, model: str, data: str, out: str) -> None:
    transactions = spark.read.parquet(data)  # the 30 features by name, any other columns
    scored = fraudkeras.spark.score(transactions, model)  # threshold=, keep=
    scored.write.mode("overwrite").parquet(out)  # + fraud_probability, is_fraud


if __name__ == "__main__":
    model, data, out = sys.argv[1:4]
    score_table(SparkSession.builder.master("local[2]").getOrCreate(), model, data, out)
