"""AWS client failures told as one line that names the fix, instead of botocore's traceback.

Every command that reaches S3, Glue or IAM may meet them (the aws profile, an S3 lake), so the command line's
entry point asks :func:`explain` before letting an exception through.
"""

from __future__ import annotations

from smartcity.errors import ExitCode

TESTBED = 'to try the aws profile on this machine: eval "$(smartcity aws testbed start | grep ^export)"'


def explain(error: BaseException) -> str | None:
    """A message for an AWS client error, or None when ``error`` is not one."""
    if not type(error).__module__.startswith("botocore"):
        return None  # not an AWS client's: botocore is not even imported for it
    from botocore import exceptions as aws

    if isinstance(error, aws.NoCredentialsError | aws.PartialCredentialsError):
        return (
            f"no AWS credentials ({error}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            f"or run where an instance role applies; {TESTBED}"
        )
    if isinstance(error, aws.NoRegionError):
        return "no AWS region: set AWS_DEFAULT_REGION (SMARTCITY_AWS_REGION names the lake's)"
    if isinstance(error, aws.SSLError):
        return f"TLS verification failed ({error}): for a test bed or a private endpoint, set AWS_CA_BUNDLE to its CA"
    if isinstance(error, aws.EndpointConnectionError | aws.ConnectTimeoutError):
        return (
            f"cannot reach the AWS endpoint ({error}): check AWS_ENDPOINT_URL_<SERVICE> and SMARTCITY_S3_ENDPOINT_URL, "
            f"or start the test bed; {TESTBED}"
        )
    if isinstance(error, aws.ClientError):
        return _refused(error)
    return None


def exit_code(error: BaseException) -> ExitCode:
    """UNAVAILABLE when the endpoint could not be reached, FAILURE for the rest."""
    from botocore import exceptions as aws

    unreachable = isinstance(error, aws.EndpointConnectionError | aws.ConnectTimeoutError)
    return ExitCode.UNAVAILABLE if unreachable else ExitCode.FAILURE


def _refused(error: BaseException) -> str:
    """A request the service answered with an error: which, and what usually fixes it."""
    details = getattr(error, "response", {}).get("Error", {})
    code = details.get("Code", "unknown")
    operation = getattr(error, "operation_name", "a request")
    message = f"AWS refused {operation}: {code}: {details.get('Message', '')}".rstrip(": ")
    if code in ("NoSuchBucket", "EntityNotFoundException"):
        return f"{message}; create the infrastructure first: smartcity aws plan, then smartcity aws apply"
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return f"{message}; the credentials in use lack this permission (docs/aws.md lists each role's)"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidClientTokenId"):
        return f"{message}; the AWS credentials in use are wrong or expired"
    return message
