"""What a user's credentials look like to the tools that use them: the shell exports, the
euca2ools ``eucarc`` (with Eucalyptus' classic service URLs), the user's X.509 key pair a
Eucalyptus credentials zip carries, and the aws CLI profile sections. Shared by ``eucalite
credentials`` and the console's credential downloads, so both always say the same."""
from __future__ import annotations

import datetime as dt
import shlex
from typing import Any, Mapping

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .httpserver.errors import WALRUS_PATH

#: The first line of a eucarc that names files beside it (a credentials zip's): the directory
#: the eucarc is in, whether it is sourced from bash (``BASH_SOURCE``) or another shell.
KEY_DIR_LINE = 'EUCA_KEY_DIR=$(cd "$(dirname "${BASH_SOURCE:-$0}")" && pwd -P)'
#: How long a user certificate issued for a credentials zip is valid.
USER_CERT_DAYS = 3650


def _env_values(key_id: str, secret: str, region: str,
                endpoints: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL_EC2": endpoints["ec2"],
        "AWS_ENDPOINT_URL_S3": endpoints["s3"],
        "AWS_ENDPOINT_URL_IAM": endpoints["iam"],
        "AWS_ENDPOINT_URL_STS": endpoints["sts"],
        "AWS_ENDPOINT_URL_CLOUDWATCH": endpoints["cloudwatch"],
        "AWS_ENDPOINT_URL_AUTO_SCALING": endpoints["autoscaling"],
        # Eucalyptus / euca2ools names
        "EC2_URL": endpoints["ec2"],
        "S3_URL": endpoints["s3"],
        "EUARE_URL": endpoints["iam"],
        "EC2_ACCESS_KEY": key_id,
        "EC2_SECRET_KEY": secret,
    }


def _exports(values: Mapping[str, str]) -> list[str]:
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def env_lines(key_id: str, secret: str, region: str, endpoints: dict[str, str]) -> list[str]:
    """``export NAME=value`` lines for boto3, the aws CLI and euca2ools."""
    return _exports(_env_values(key_id, secret, region, endpoints))


def classic_urls(endpoints: dict[str, str], ec2_path: str) -> dict[str, str]:
    """Eucalyptus' service URLs on this cloud, as a eucarc names them: ``EC2_URL`` at
    *ec2_path*, ``S3_URL`` at Walrus' path, ``EUARE_URL``, ``TOKEN_URL`` (STS),
    ``AWS_CLOUDWATCH_URL`` and ``AWS_AUTO_SCALING_URL``."""
    base = endpoints["s3"]
    return {"EC2_URL": base + ec2_path, "S3_URL": base + WALRUS_PATH,
            "EUARE_URL": endpoints["iam"], "TOKEN_URL": endpoints["sts"],
            "AWS_CLOUDWATCH_URL": endpoints["cloudwatch"],
            "AWS_AUTO_SCALING_URL": endpoints["autoscaling"]}


def eucarc_text(user: str, account: str, account_id: str, key_id: str, secret: str,
                region: str, endpoints: dict[str, str], urls: dict[str, str], *,
                cloud_cert: str | None = None,
                beside: Mapping[str, str] | None = None) -> str:
    """A euca2ools-style ``eucarc`` for *user* of *account*: what boto3 and the aws CLI read
    (:func:`env_lines`), then *urls* (:func:`classic_urls`) in place of the plain EC2/S3
    URLs, the key under both of Eucalyptus' names and the account number as
    ``EC2_USER_ID``. The cloud's certificate is ``EUCALYPTUS_CERT``: the path *cloud_cert*,
    or a file named in *beside* (``{variable: file name}``, files next to the eucarc, as in
    a credentials zip; the eucarc then finds its own directory as Eucalyptus' did)."""
    values = _env_values(key_id, secret, region, endpoints)
    values.update(urls)
    if cloud_cert is not None:
        values["EUCALYPTUS_CERT"] = cloud_cert
    values.update({
        "AWS_ACCESS_KEY": key_id,
        "AWS_SECRET_KEY": secret,
        "EC2_USER_ID": account_id,
        "EC2_ACCOUNT_NUMBER": account_id,
    })
    lines = [f"# eucarc for user {user} in account {account}",
             "# Use as: source eucarc   (euca2ools, the aws CLI and boto3 then need nothing "
             "else)"]
    if beside:
        lines.append(KEY_DIR_LINE)
    lines += _exports(values)
    lines += [f'export {name}="${{EUCA_KEY_DIR}}/"{shlex.quote(file)}'
              for name, file in (beside or {}).items()]
    return "\n".join(lines) + "\n"


def signed_certificate(subject: x509.Name, issuer: x509.Name, public_key: Any,
                       signing_key: Any, days: int) -> x509.Certificate:
    """An X.509 certificate of *public_key* for *subject*, signed by *issuer*'s
    *signing_key* (SHA-256), valid from a day ago (clocks differ) for *days*."""
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .sign(signing_key, hashes.SHA256()))


def user_certificate(cloud_key: Any, cloud_cert_pem: bytes, account_id: str,
                     user: str) -> tuple[bytes, bytes]:
    """A new X.509 key pair for *user* of *account_id*, signed by the cloud (*cloud_key*,
    the private half of *cloud_cert_pem*): (private key PEM, certificate PEM), what a
    Eucalyptus credentials zip carries as ``EC2_PRIVATE_KEY`` and ``EC2_CERT`` (euca2ools
    sign bundles with them). Nothing keeps it: each zip holds a fresh pair."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = x509.load_pem_x509_certificate(cloud_cert_pem).subject
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, user),
                         x509.NameAttribute(x509.NameOID.ORGANIZATIONAL_UNIT_NAME, account_id),
                         x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "eucalite")])
    cert = signed_certificate(subject, issuer, key.public_key(), cloud_key, USER_CERT_DAYS)
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


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
