"""The Spark settings of the processing step, wherever its session runs (a local session or the platform's Spark
Connect server); plain dictionaries, so reading them starts no JVM."""

from __future__ import annotations

from smartcity.jars import SPARK_S3, classpath
from smartcity.ports import LOOPBACK
from smartcity.settings import Settings
from smartcity.spark_s3 import spark_s3_conf, trust_options

SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}
"""SQL settings the step depends on, set on whatever session it is given (one may already exist in the process)."""

RUNTIME_SETTINGS = {
    **SESSION_SETTINGS,
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.parquet.compression.codec": "zstd",
}
"""Runtime SQL settings, so each Spark Connect session sets its own (a Connect session cannot change static ones)."""


def driver_settings(settings: Settings, app_name: str) -> dict[str, str]:
    """Static settings of a JVM that runs the processing step: a local session's, or the server's (with S3A, its
    jars and the trust it needs, for a lake on S3)."""
    s3 = spark_s3_conf(settings)
    if s3:
        s3["spark.jars"] = ",".join(str(jar) for jar in classpath(settings, SPARK_S3))
        if trust := trust_options(settings):
            s3["spark.driver.extraJavaOptions"] = " ".join(trust)
    return {
        **s3,
        "spark.master": settings.spark_master,
        "spark.app.name": app_name,
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.host": LOOPBACK,
        "spark.driver.bindAddress": LOOPBACK,
        "spark.ui.enabled": "false",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        **RUNTIME_SETTINGS,
    }
