"""The console's credential downloads for euca2ools: the plain eucarc is what `eucalite
credentials --format eucarc` prints, and the credentials zip (Eucalyptus' own form: eucarc,
cloud-cert.pem and a new X.509 key pair signed by the cloud) works wherever it is unzipped.
Each is sourced by bash and its variables used against a live cloud."""
from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from consoleutil import PASSWORD, Console
from eucarcutil import EUCA_NAMES, check_euca2ools_values, sourced
from eucalite import accounts
from eucalite.cli import main
from eucalite.compute import cloudkey
from eucalite.config import SERVED_FILE
from eucalite.web.session import set_password


def _console(live) -> Console:
    with live.app.app_context():
        set_password(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER, PASSWORD)
    return Console(live.app)


def _download(console, path) -> bytes:
    response = console.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_data()


def test_the_plain_eucarc_is_the_cli_s(live, tmp_path):
    console = _console(live)
    body = _download(console, f"/console/access-keys/{live.key_id}/eucarc").decode()
    eucarc = tmp_path / "eucarc"
    eucarc.write_text(body)
    check_euca2ools_values(live, sourced(eucarc), live.key_id, live.secret)

    (tmp_path / "data" / SERVED_FILE).write_text(live.base_url)
    result = CliRunner().invoke(main, ["credentials", "--data-dir",
                                       live.app.config["EUCALITE"]["data_dir"],
                                       "--format", "eucarc"])
    assert result.exit_code == 0, result.output
    assert body == result.output
    # boto3 and the aws CLI find what they read too
    env = sourced(eucarc, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                           "AWS_ENDPOINT_URL_EC2", "AWS_DEFAULT_REGION"])
    assert env == {"AWS_ACCESS_KEY_ID": live.key_id, "AWS_SECRET_ACCESS_KEY": live.secret,
                   "AWS_ENDPOINT_URL_EC2": live.endpoints["ec2"],
                   "AWS_DEFAULT_REGION": live.region}


def test_the_credentials_zip_works_wherever_it_is_unzipped(live, tmp_path):
    console = _console(live)
    page = console.text("/console/credentials")
    zip_path = f"/console/access-keys/{live.key_id}/credentials.zip"
    assert zip_path in page
    archive = zipfile.ZipFile(io.BytesIO(_download(console, zip_path)))
    names = set(archive.namelist())
    [private_name] = [name for name in names if name.endswith("-pk.pem")]
    [cert_name] = [name for name in names if name.endswith("-cert.pem")
                   and name != "cloud-cert.pem"]
    assert names == {"eucarc", "cloud-cert.pem", private_name, cert_name}
    assert archive.getinfo(private_name).external_attr >> 16 == 0o600

    # unzipped (by unzip, as a user would) into a directory with a space, sourced from
    # elsewhere by a relative path
    where = tmp_path / "my creds"
    where.mkdir()
    (tmp_path / "c.zip").write_bytes(_download(console, zip_path))
    subprocess.run(["unzip", "-q", str(tmp_path / "c.zip")], cwd=where, check=True)
    assert (where / private_name).stat().st_mode & 0o777 == 0o600
    values = sourced(Path("'my creds'/eucarc"), EUCA_NAMES + ["EC2_PRIVATE_KEY", "EC2_CERT"],
                     cwd=tmp_path)
    private_path, cert_path = Path(values.pop("EC2_PRIVATE_KEY")), Path(values.pop("EC2_CERT"))
    assert Path(values["EUCALYPTUS_CERT"]) == (where / "cloud-cert.pem").resolve()
    assert (private_path, cert_path) == ((where / private_name).resolve(),
                                         (where / cert_name).resolve())
    check_euca2ools_values(live, values, live.key_id, live.secret)

    # the user's pair: the certificate is the private key's, issued and signed by the cloud
    cloud_cert = x509.load_pem_x509_certificate(Path(values["EUCALYPTUS_CERT"]).read_bytes())
    user_cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    user_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    assert user_cert.public_key().public_numbers() == user_key.public_key().public_numbers()
    assert user_cert.issuer == cloud_cert.subject
    cloudkey.cloud_public_key(live.app.config["EUCALITE"]["data_dir"]).verify(
        user_cert.signature, user_cert.tbs_certificate_bytes, padding.PKCS1v15(),
        user_cert.signature_hash_algorithm)
    assert user_cert.subject.get_attributes_for_oid(
        x509.NameOID.COMMON_NAME)[0].value == accounts.ADMIN_USER


def test_another_user_s_key_gets_no_zip(live):
    console = _console(live)
    with live.app.app_context():
        accounts.create_account("other")
        accounts.create_user("other", "bob")
        foreign = accounts.create_access_key("other", "bob").id
    assert console.get(f"/console/access-keys/{foreign}/credentials.zip").status_code == 200
    with live.app.app_context():
        set_password("other", "bob", PASSWORD)
    bob = Console(live.app, account="other", user="bob")
    assert bob.get(f"/console/access-keys/{live.key_id}/credentials.zip").status_code == 404
