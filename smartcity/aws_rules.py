"""AWS's own rules for the names the aws profile uses, and the platform's storage lifecycle, checked when the
settings load so a bad value fails at once, naming its variable, instead of halfway through a deployment."""

from __future__ import annotations

import re

RAW_TO_STANDARD_IA_DAYS = 30
RAW_TO_GLACIER_IR_DAYS = 90
QUARANTINE_EXPIRY_DAYS = 30
ATHENA_RESULTS_EXPIRY_DAYS = 7
INCOMPLETE_UPLOAD_DAYS = 1
NONCURRENT_VERSION_DAYS = 7
MIN_ATHENA_BYTES_SCANNED_CUTOFF = 10_000_000  # Athena's own minimum per-query limit, 10 MB

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_UUID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
_KMS_KEY = re.compile(
    rf"^(?:{_UUID}|alias/[A-Za-z0-9/_-]{{1,250}}"
    rf"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{{12}}:(?:key/{_UUID}|alias/[A-Za-z0-9/_-]{{1,250}}))$"
)
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def bucket_name(value: str) -> str:
    """An S3 bucket name as AWS accepts it (3-63 lowercase letters, digits, '.', '-'; not like an IP address)."""
    if (
        not _BUCKET.match(value)
        or ".." in value
        or _IP_ADDRESS.match(value)
        or value.startswith(("xn--", "sthree-"))
        or value.endswith(("-s3alias", "--ol-s3"))
    ):
        raise ValueError(
            f"'{value}' is not a valid S3 bucket name: 3-63 lowercase letters, digits, '.' or '-', starting and "
            "ending with a letter or digit, not shaped like an IP address"
        )
    return value


def region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(f"'{value}' is not an AWS region name, such as us-east-1 or eu-west-2")
    return value


def kms_key(value: str) -> str:
    """A KMS key id, key ARN, alias name or alias ARN."""
    if not _KMS_KEY.match(value):
        raise ValueError(
            "a KMS key is a key id (UUID or mrk-…), a key ARN (arn:aws:kms:region:account:key/…), "
            "an alias (alias/name) or an alias ARN"
        )
    return value


def environment(value: str) -> str:
    if not _ENVIRONMENT.match(value):
        raise ValueError("1-20 lowercase letters, digits or '-', starting with a letter (it names AWS resources)")
    return value


def role_arn(value: str) -> str:
    """An IAM role ARN, as Redshift's ``COPY … IAM_ROLE`` takes it."""
    if not _ROLE_ARN.match(value):
        raise ValueError(f"'{value}' is not an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>")
    return value
