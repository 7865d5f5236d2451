"""How a Spark JVM reaches a lake on S3: Hadoop's S3A with the same endpoint, region, encryption and credentials
as boto3, its jars, and trust in the certificate authority a private endpoint uses (the test bed's).

Shared by the stream and the processing step; nothing here holds a secret: credentials come from the standard
chain, a profile (``AWS_PROFILE``) included, resolved inside the JVM.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from smartcity.errors import PlatformError
from smartcity.java import find_java
from smartcity.settings import Settings

TRUSTSTORE_PASSWORD = "changeit"  # protects nothing secret: the store holds public certificates only
# S3A's default credential chain, with the SDK's profile provider added: the test bed, and many a laptop, point
# AWS_PROFILE at a credentials file.
CREDENTIAL_PROVIDERS = ",".join([
    "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
    "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",
    "software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider",
    "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
])  # fmt: skip


def hadoop_s3a_options(settings: Settings) -> dict[str, str]:
    """Hadoop S3A settings: the same endpoint, region and server-side encryption as boto3."""
    options = {
        "fs.s3a.endpoint.region": settings.aws_region,
        "fs.s3a.encryption.algorithm": "SSE-KMS" if settings.s3_kms_key_id else "AES256",
        "fs.s3a.aws.credentials.provider": CREDENTIAL_PROVIDERS,
        # one request per file (a multipart completion carries no encryption header for a bucket policy to see)
        "fs.s3a.multipart.threshold": "2G",
    }
    if settings.s3_kms_key_id:
        options["fs.s3a.encryption.key"] = settings.s3_kms_key_id
    if settings.s3_endpoint:
        endpoint = urlparse(settings.s3_endpoint)
        options |= {
            "fs.s3a.endpoint": settings.s3_endpoint,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.connection.ssl.enabled": str(endpoint.scheme == "https").lower(),
        }
    return options


def spark_s3_conf(settings: Settings) -> dict[str, str]:
    """``spark.hadoop.*`` settings for S3A; empty for a local lake."""
    if not settings.lake_on_s3:
        return {}
    return {f"spark.hadoop.{key}": value for key, value in hadoop_s3a_options(settings).items()}


def trust_options(settings: Settings) -> list[str]:
    """JVM options that trust the certificate authority of ``AWS_CA_BUNDLE`` besides the JDK's own, as boto3 does;
    none when it is unset."""
    bundle = os.environ.get("AWS_CA_BUNDLE")
    if not bundle or not settings.lake_on_s3:
        return []
    store = truststore(settings, Path(bundle))
    return [f"-Djavax.net.ssl.trustStore={store}", "-Djavax.net.ssl.trustStoreType=PKCS12",
            f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}"]  # fmt: skip


def truststore(settings: Settings, bundle: Path) -> Path:
    """A PKCS12 store of the JDK's certificate authorities and ``bundle``'s, made once per bundle under var/."""
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()[:12]
    store = settings.paths.root / "tls" / f"truststore-{digest}.p12"
    if store.exists():
        return store
    java = find_java(settings.java_home)
    keytool = java.executable.with_name("keytool")
    store.parent.mkdir(parents=True, exist_ok=True)
    staging = store.with_suffix(".tmp")
    staging.unlink(missing_ok=True)
    commands = [
        [str(keytool), "-importkeystore", "-srckeystore", str(java.home / "lib" / "security" / "cacerts"),
         "-srcstorepass", TRUSTSTORE_PASSWORD, "-destkeystore", str(staging), "-deststoretype", "PKCS12",
         "-deststorepass", TRUSTSTORE_PASSWORD, "-noprompt"],
        [str(keytool), "-importcert", "-alias", f"aws-ca-bundle-{digest}", "-file", str(bundle), "-keystore",
         str(staging), "-storetype", "PKCS12", "-storepass", TRUSTSTORE_PASSWORD, "-noprompt"],
    ]  # fmt: skip
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PlatformError(f"could not make a Java trust store of {bundle}: {result.stdout}{result.stderr}")
    staging.rename(store)
    return store
