"""Virtual-host style addressing: a Host of <bucket>.<s3_domain> names the bucket."""
from __future__ import annotations


import botocore.auth
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from liveutil import start_live


def signed(live, method, bucket, key, body=b"", signer="v4"):
    """Sign for http://<bucket>.s3.lab.test:<port>/<key> but send it to 127.0.0.1."""
    host = f"{bucket}.s3.lab.test:{live.port}"
    url = f"http://{host}/{key}"
    request = AWSRequest(method=method, url=url, data=body)
    credentials = Credentials(live.key_id, live.secret)
    if signer == "v4":
        botocore.auth.S3SigV4Auth(credentials, "s3", live.region).add_auth(request)
    else:
        # V2 signs the bucket into the resource, as botocore does for virtual hosts.
        request.auth_path = f"/{bucket}/{key}"
        botocore.auth.HmacV1Auth(credentials).add_auth(request)
    headers = dict(request.prepare().headers)
    headers["Host"] = host
    return requests.request(method, f"http://127.0.0.1:{live.port}/{key}", data=body,
                            headers=headers)


def test_virtual_host_requests(tmp_path, monkeypatch):
    with monkeypatch.context() as env:         # set while the server reads its config only
        env.setenv("EUCALITE_S3_DOMAIN", "s3.lab.test")
        live, server = start_live(tmp_path / "data")
    try:
        live.client("s3").create_bucket(Bucket="vhost")
        # A key that repeats the bucket name must not be mistaken for path style.
        assert signed(live, "PUT", "vhost", "vhost/inner.txt", b"virtual").status_code == 200
        got = signed(live, "GET", "vhost", "vhost/inner.txt")
        assert got.status_code == 200 and got.content == b"virtual"
        v2 = signed(live, "GET", "vhost", "vhost/inner.txt", signer="v2")
        assert v2.status_code == 200 and v2.content == b"virtual"
        listing = signed(live, "GET", "vhost", "?list-type=2")
        assert "<Key>vhost/inner.txt</Key>" in listing.text
        # Path style keeps working on the same server.
        path_style = live.client("s3").get_object(Bucket="vhost", Key="vhost/inner.txt")
        assert path_style["Body"].read() == b"virtual"
    finally:
        server.shutdown()
