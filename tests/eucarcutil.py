"""A euca2ools eucarc as a shell sees it: source it in bash and read back the variables
Eucalyptus' tools and scripts use, then check they reach this cloud (for the CLI's eucarc and
the console's downloads alike)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from liveutil import aws_session

from eucalite.compute import cloudkey

#: What euca2ools and scripts written for Eucalyptus read from a eucarc.
EUCA_NAMES = ["EC2_URL", "S3_URL", "EUARE_URL", "TOKEN_URL", "AWS_CLOUDWATCH_URL",
              "AWS_AUTO_SCALING_URL", "EC2_ACCESS_KEY", "EC2_SECRET_KEY", "AWS_ACCESS_KEY",
              "AWS_SECRET_KEY", "EC2_USER_ID", "EUCALYPTUS_CERT"]


def sourced(eucarc: Path, names=EUCA_NAMES, cwd: Path | None = None) -> dict[str, str]:
    """*names* as bash has them after ``. eucarc`` (run in *cwd*; each empty if unset)."""
    shell = f". {eucarc} && " + " && ".join(f'echo "${name}"' for name in names)
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=True,
                         cwd=cwd).stdout
    return dict(zip(names, out.splitlines()))


def check_euca2ools_values(live, values: dict[str, str], key_id: str, secret: str) -> None:
    """*values* (:func:`sourced`) are Eucalyptus' classic URLs of *live*, the key, and a
    cloud certificate holding the key the cloud unbundles with; the URLs and key work."""
    base = live.base_url
    assert values == {
        "EC2_URL": base + "/services/Eucalyptus", "S3_URL": base + "/services/Walrus",
        "EUARE_URL": base + "/services/Euare", "TOKEN_URL": base + "/services/Tokens",
        "AWS_CLOUDWATCH_URL": base + "/services/CloudWatch",
        "AWS_AUTO_SCALING_URL": base + "/services/AutoScaling",
        "EC2_ACCESS_KEY": key_id, "EC2_SECRET_KEY": secret,
        "AWS_ACCESS_KEY": key_id, "AWS_SECRET_KEY": secret,
        "EC2_USER_ID": values["EC2_USER_ID"], "EUCALYPTUS_CERT": values["EUCALYPTUS_CERT"]}
    # The certificate euca-bundle-image encrypts to holds the key the cloud unbundles with.
    cert = x509.load_pem_x509_certificate(Path(values["EUCALYPTUS_CERT"]).read_bytes())
    assert cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == cloudkey.cloud_public_key_pem(live.app.config["EUCALITE"]["data_dir"])
    # The URLs and keys work as a Eucalyptus script would use them.
    session = aws_session(values["EC2_ACCESS_KEY"], values["EC2_SECRET_KEY"], live.region)
    ec2 = session.client("ec2", endpoint_url=values["EC2_URL"])
    assert ec2.describe_regions()["Regions"]
    s3 = session.client("s3", endpoint_url=values["S3_URL"],
                        config=Config(s3={"addressing_style": "path"}))
    bucket = f"from-eucarc-{key_id[-6:].lower()}"
    s3.create_bucket(Bucket=bucket)
    assert bucket in [found["Name"] for found in s3.list_buckets()["Buckets"]]
    owner = ec2.describe_security_groups()["SecurityGroups"][0]["OwnerId"]
    assert values["EC2_USER_ID"] == owner
