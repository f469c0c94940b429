"""What a user's credentials look like to the tools that use them: the shell exports
(``eucarc``) and the aws CLI profile sections. Shared by ``eucalite credentials`` and the
console's credential downloads, so both always say the same."""
from __future__ import annotations

import shlex


def env_lines(key_id: str, secret: str, region: str, endpoints: dict[str, str]) -> list[str]:
    """``export NAME=value`` lines for boto3, the aws CLI and euca2ools."""
    values = {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL_EC2": endpoints["ec2"],
        "AWS_ENDPOINT_URL_S3": endpoints["s3"],
        "AWS_ENDPOINT_URL_IAM": endpoints["iam"],
        # Eucalyptus / euca2ools names
        "EC2_URL": endpoints["ec2"],
        "S3_URL": endpoints["s3"],
        "EUARE_URL": endpoints["iam"],
        "EC2_ACCESS_KEY": key_id,
        "EC2_SECRET_KEY": secret,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def eucarc_lines(key_id: str, secret: str, account_id: str, urls: dict[str, str],
                 cloud_cert: str) -> list[str]:
    """A euca2ools-style ``eucarc``: *urls* (``EC2_URL``, ``S3_URL``, ``EUARE_URL``,
    ``TOKEN_URL``, ``AWS_CLOUDWATCH_URL``, ``AWS_AUTO_SCALING_URL``…), the cloud's
    certificate file as ``EUCALYPTUS_CERT``, then the key under both of Eucalyptus' names and
    the account number as ``EC2_USER_ID``."""
    values = dict(urls)
    values.update({
        "EUCALYPTUS_CERT": cloud_cert,
        "EC2_ACCESS_KEY": key_id,
        "EC2_SECRET_KEY": secret,
        "AWS_ACCESS_KEY": key_id,
        "AWS_SECRET_KEY": secret,
        "EC2_USER_ID": account_id,
        "EC2_ACCOUNT_NUMBER": account_id,
    })
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def profile_sections(name: str, key_id: str, secret: str, region: str,
                     endpoints: dict[str, str]) -> tuple[dict, dict]:
    """The aws CLI profile *name*: ({section: values} for ~/.aws/credentials,
    {section: values} for ~/.aws/config, with a per-service endpoint block)."""
    section = "default" if name == "default" else f"profile {name}"
    config = {
        section: {"region": region, "services": f"eucalite-{name}"},
        # The aws CLI's per-service endpoint block (botocore >= 1.31).
        f"services eucalite-{name}": {service: f"\nendpoint_url = {url}"
                                      for service, url in endpoints.items()},
    }
    return {name: {"aws_access_key_id": key_id, "aws_secret_access_key": secret}}, config
