"""Real S3 clients against `eucalite serve`, black box: the aws CLI, s3cmd and rclone.

One `eucalite serve` subprocess (gunicorn) per module, with its own data directory and port;
the clients get the cloud admin's keys from `eucalite credentials`, as a user would. Every
test moves real bytes up and down and compares them; a failing client command shows its
output and the tail of the server log.

s3cmd and rclone are Debian packages (`./setup.sh test` installs them); a missing client
skips its tests and says so.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

BIN = Path(sys.executable).parent
EUCALITE = str(BIN / "eucalite")
AWS = str(BIN / "aws") if (BIN / "aws").exists() else shutil.which("aws")

BIG = 20 * 1024 * 1024          # above every client's multipart threshold (aws 8 MiB,
                                # s3cmd 15 MiB); rclone gets a lowered cutoff for it

#: Nested directories, spaces, unicode, characters S3 clients and signers trip over
#: (+ & = % ~ ' ( ) ; , @ $ ! [ ] { } ^), an empty file and a binary one of odd size.
TREE = {
    "top.txt": b"top level\n",
    "empty.txt": b"",
    "a/b c/with space.txt": b"spaces in dir and name\n",
    "a/b c/d\u00e9/\u00fcn\u00ef c\u00f6d\u00e9 \u2603.txt": "unicode \u2603\n".encode(),
    "a/b c/d\u00e9/\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb.txt": "\u65e5\u672c\n".encode(),
    "a+b&c=d.txt": b"query-ish characters\n",
    "100% done.txt": b"percent\n",
    "x+y/q&a/t~i'lde (1).txt": b"tilde, quote, parens\n",
    "punct;comma,at@dollar$bang!.txt": b"punctuation\n",
    "brackets[1]{2}^.txt": b"brackets\n",
    "deep/1/2/3/4/5/leaf.bin": bytes(range(256)) * 7 + b"odd",
    "bin/random.dat": os.urandom(300_001),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env() -> dict[str, str]:
    """os.environ without anything that would point a client elsewhere: AWS_* (keys,
    profiles, endpoints, AWS_CA_BUNDLE, which rclone's SDK also reads), EUCALITE_*,
    RCLONE_* and S3CMD_*; aws CLI config files that do not exist."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "EUCALITE_", "RCLONE_", "S3CMD"))
           and name not in ("EC2_URL", "S3_URL", "EUARE_URL", "EC2_ACCESS_KEY",
                            "EC2_SECRET_KEY")}
    return env


@dataclass
class Served:
    process: subprocess.Popen
    port: int
    data_dir: Path
    log: Path
    creds: dict[str, str]       # what `eval "$(eucalite credentials)"` exports
    home: Path                  # scratch home for client config files

    @property
    def endpoint(self) -> str:
        return self.creds["AWS_ENDPOINT_URL_S3"]

    @property
    def key_id(self) -> str:
        return self.creds["AWS_ACCESS_KEY_ID"]

    @property
    def secret(self) -> str:
        return self.creds["AWS_SECRET_ACCESS_KEY"]

    def env(self, **extra) -> dict[str, str]:
        env = clean_env()
        env.update(self.creds)
        env.update(AWS_CONFIG_FILE=str(self.home / "aws-config"),
                   AWS_SHARED_CREDENTIALS_FILE=str(self.home / "aws-credentials"),
                   AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="1",
                   AWS_PAGER="", HOME=str(self.home))
        env.update(extra)
        return env

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def run(self, *args, env=None, check=True, input=None, timeout=300, cwd=None,
            text=True) -> subprocess.CompletedProcess:
        """Run a client; on an unexpected exit code fail with its output and the server's."""
        result = subprocess.run([str(arg) for arg in args], capture_output=True, text=text,
                                env=env or self.env(), input=input, timeout=timeout, cwd=cwd)
        if check and result.returncode != 0:
            pytest.fail(f"{shlex.join(str(arg) for arg in args)} exited {result.returncode}\n"
                        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n"
                        f"--- server log (tail)\n{self.log_tail()}", pytrace=False)
        return result


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`eucalite serve --no-node` on a free port with a fresh data directory."""
    base = tmp_path_factory.mktemp("s3-clients")
    data_dir, home, log = base / "data", base / "home", base / "server.log"
    home.mkdir()
    port = free_port()
    env = clean_env()
    with open(log, "wb") as log_file:
        process = subprocess.Popen([EUCALITE, "serve", "--no-node", "--host", "127.0.0.1",
                                    "--port", str(port), "--data-dir", str(data_dir)],
                                   env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"eucalite serve exited {process.returncode}:\n"
                                     f"{log.read_text(errors='replace')}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"eucalite serve did not listen on {port}")
            time.sleep(0.1)
        output = subprocess.run([EUCALITE, "credentials", "--data-dir", str(data_dir)],
                                env=env, capture_output=True, text=True, check=True).stdout
        creds = {}
        for line in output.splitlines():
            if line.startswith("export "):
                name, _, value = line[len("export "):].partition("=")
                creds[name] = shlex.split(value)[0] if value else ""
        assert creds["AWS_ENDPOINT_URL_S3"] == f"http://127.0.0.1:{port}", output
        yield Served(process, port, data_dir, log, creds, home)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def require(tool: str | None, name: str, how: str) -> str:
    """The client's path, or skip the test saying why (setup.cfg runs pytest with -ra, so
    the reason is printed in the summary)."""
    path = shutil.which(tool) if tool else None
    if path is None:
        pytest.skip(f"{name} is not installed ({how}); its tests are skipped")
    return path


@pytest.fixture
def aws():
    return require(AWS, "aws CLI", "pip install awscli, or ./setup.sh test")


@pytest.fixture
def s3cmd():
    return require("s3cmd", "s3cmd", "apt-get install s3cmd, or ./setup.sh test")


@pytest.fixture
def rclone():
    return require("rclone", "rclone", "apt-get install rclone, or ./setup.sh test")


# -- helpers --------------------------------------------------------------------------------

def write_tree(root: Path, files: dict[str, bytes] = TREE) -> Path:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


def assert_same_tree(expected: dict[str, bytes], root: Path) -> None:
    actual = read_tree(root)
    assert sorted(actual) == sorted(expected), (
        f"missing {sorted(set(expected) - set(actual))}, "
        f"unexpected {sorted(set(actual) - set(expected))}")
    for name, data in expected.items():
        assert actual[name] == data, f"{name}: {len(actual[name])} bytes differ " \
                                     f"from the {len(data)} sent"


def big_file(path: Path, size: int = BIG) -> Path:
    with open(path, "wb") as out:
        block = os.urandom(1024 * 1024)
        for index in range(size // len(block)):
            out.write(bytes([index % 256]) + block[1:])   # no two MiB alike
        out.write(block[: size % len(block)])
    return path


def same_file(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def s3_keys(served: Served, bucket: str, prefix: str = "") -> dict[str, int]:
    """{key: size} through boto3 (an independent view of what the clients did)."""
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3", endpoint_url=served.endpoint, region_name=served.creds["AWS_DEFAULT_REGION"],
        aws_access_key_id=served.key_id, aws_secret_access_key=served.secret,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    keys = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return keys


# -- aws CLI (awscli v1) --------------------------------------------------------------------

def test_aws_cli_mb_and_cp_small_and_multipart(served, aws, tmp_path):
    served.run(aws, "s3", "mb", "s3://cli-cp")
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello walrus\n")
    served.run(aws, "s3", "cp", small, "s3://cli-cp/dir/small.txt", "--only-show-errors")
    served.run(aws, "s3", "cp", "s3://cli-cp/dir/small.txt", tmp_path / "small.down",
               "--only-show-errors")
    assert (tmp_path / "small.down").read_bytes() == small.read_bytes()

    big = big_file(tmp_path / "big.bin")
    served.run(aws, "s3", "cp", big, "s3://cli-cp/big.bin", "--only-show-errors")
    head = json.loads(served.run(aws, "s3api", "head-object", "--bucket", "cli-cp",
                                 "--key", "big.bin").stdout)
    assert head["ContentLength"] == BIG
    assert head["ETag"].strip('"').endswith("-3"), head   # 8 MiB parts: sent multipart
    served.run(aws, "s3", "cp", "s3://cli-cp/big.bin", tmp_path / "big.down",
               "--only-show-errors")   # ranged GETs in parallel
    assert same_file(big, tmp_path / "big.down")

    # From stdin (multipart of unknown length) and back to stdout.
    with open(big, "rb") as source:
        result = subprocess.run([aws, "s3", "cp", "-", "s3://cli-cp/stdin.bin",
                                 "--only-show-errors"], stdin=source, capture_output=True,
                                env=served.env(), timeout=300)
    assert result.returncode == 0, (result.stderr, served.log_tail())
    streamed = served.run(aws, "s3", "cp", "s3://cli-cp/stdin.bin", "-", text=False).stdout
    assert streamed == big.read_bytes()

    # Server-side copy of a multipart object (the CLI uses UploadPartCopy above 8 MiB).
    served.run(aws, "s3", "cp", "s3://cli-cp/big.bin", "s3://cli-cp/copy of big.bin",
               "--only-show-errors")
    served.run(aws, "s3", "cp", "s3://cli-cp/copy of big.bin", tmp_path / "copy.down",
               "--only-show-errors")
    assert same_file(big, tmp_path / "copy.down")


def test_aws_cli_sync_tree_up_and_down(served, aws, tmp_path):
    source = write_tree(tmp_path / "source")
    served.run(aws, "s3", "mb", "s3://cli-sync")
    served.run(aws, "s3", "sync", source, "s3://cli-sync/tree", "--only-show-errors")
    assert s3_keys(served, "cli-sync") == {f"tree/{name}": len(data)
                                           for name, data in TREE.items()}
    again = served.run(aws, "s3", "sync", source, "s3://cli-sync/tree")
    assert again.stdout.strip() == "", f"second sync re-uploaded:\n{again.stdout}"

    down = tmp_path / "down"
    served.run(aws, "s3", "sync", "s3://cli-sync/tree", down, "--only-show-errors")
    assert_same_tree(TREE, down)
    again = served.run(aws, "s3", "sync", "s3://cli-sync/tree", down)
    assert again.stdout.strip() == "", f"second sync re-downloaded:\n{again.stdout}"

    # --delete removes what the source no longer has.
    (source / "top.txt").unlink()
    served.run(aws, "s3", "sync", source, "s3://cli-sync/tree", "--delete",
               "--only-show-errors")
    assert "tree/top.txt" not in s3_keys(served, "cli-sync")


def test_aws_cli_ls_recursive_and_not(served, aws, tmp_path):
    source = write_tree(tmp_path / "source")
    served.run(aws, "s3", "mb", "s3://cli-ls")
    served.run(aws, "s3", "sync", source, "s3://cli-ls", "--only-show-errors")

    buckets = served.run(aws, "s3", "ls").stdout
    assert "cli-ls" in buckets.split()

    top = served.run(aws, "s3", "ls", "s3://cli-ls").stdout.splitlines()
    prefixes = sorted(line.split("PRE ", 1)[1] for line in top if " PRE " in line)
    assert prefixes == ["a/", "bin/", "deep/", "x+y/"]
    objects = {line[31:]: int(line[19:30]) for line in top if " PRE " not in line}
    assert objects == {name: len(data) for name, data in TREE.items() if "/" not in name}

    inner = served.run(aws, "s3", "ls", "s3://cli-ls/a/b c/").stdout
    assert "PRE d\u00e9/" in inner and "with space.txt" in inner

    listed = served.run(aws, "s3", "ls", "--recursive", "s3://cli-ls").stdout.splitlines()
    recursive = {line[31:]: int(line[19:30]) for line in listed}
    assert recursive == {name: len(data) for name, data in TREE.items()}

    summary = served.run(aws, "s3", "ls", "--recursive", "--summarize",
                         "s3://cli-ls/deep/").stdout
    assert "Total Objects: 1" in summary


def test_aws_cli_rm_recursive_then_rb(served, aws, tmp_path):
    source = write_tree(tmp_path / "source")
    served.run(aws, "s3", "mb", "s3://cli-rm")
    served.run(aws, "s3", "sync", source, "s3://cli-rm", "--only-show-errors")

    served.run(aws, "s3", "rm", "--recursive", "s3://cli-rm/a/", "--only-show-errors")
    assert sorted(s3_keys(served, "cli-rm")) == sorted(n for n in TREE if not n.startswith("a/"))
    full = served.run(aws, "s3", "rb", "s3://cli-rm", check=False)
    assert full.returncode != 0 and "BucketNotEmpty" in full.stderr, full

    served.run(aws, "s3", "rm", "--recursive", "s3://cli-rm", "--only-show-errors")
    assert served.run(aws, "s3", "ls", "--recursive", "s3://cli-rm").stdout == ""
    served.run(aws, "s3", "rb", "s3://cli-rm")
    assert "cli-rm" not in served.run(aws, "s3", "ls").stdout.split()


def test_aws_cli_presign_fetched_with_requests(served, aws, tmp_path):
    served.run(aws, "s3", "mb", "s3://cli-presign")
    name = "d\u00e9/a+b & c 100%.txt"
    data = os.urandom(70_000)
    (tmp_path / "object").write_bytes(data)
    served.run(aws, "s3", "cp", tmp_path / "object", f"s3://cli-presign/{name}",
               "--only-show-errors")

    url = served.run(aws, "s3", "presign", f"s3://cli-presign/{name}",
                     "--expires-in", "300").stdout.strip()
    assert url.startswith(served.endpoint + "/cli-presign/") and "X-Amz-Signature=" in url
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == data

    tampered = url.replace("X-Amz-Expires=300", "X-Amz-Expires=301")
    assert requests.get(tampered, timeout=30).status_code == 403

    short = served.run(aws, "s3", "presign", f"s3://cli-presign/{name}",
                       "--expires-in", "1").stdout.strip()
    time.sleep(2.1)
    expired = requests.get(short, timeout=30)
    assert expired.status_code == 403 and b"expired" in expired.content.lower(), expired.text


def test_aws_s3api_put_head_list_delete(served, aws, tmp_path):
    served.run(aws, "s3api", "create-bucket", "--bucket", "cli-api")
    body = tmp_path / "body.json"
    body.write_bytes(b'{"hello": "walrus"}\n')
    key = "api/k\u00e9y with space.json"
    put = json.loads(served.run(
        aws, "s3api", "put-object", "--bucket", "cli-api", "--key", key, "--body", body,
        "--content-type", "application/json", "--metadata", "colour=blue,owner=lab",
        "--cache-control", "max-age=60").stdout)
    etag = put["ETag"]
    assert etag == f'"{hashlib.md5(body.read_bytes()).hexdigest()}"'

    head = json.loads(served.run(aws, "s3api", "head-object", "--bucket", "cli-api",
                                 "--key", key).stdout)
    assert head["ContentLength"] == body.stat().st_size
    assert head["ETag"] == etag
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"colour": "blue", "owner": "lab"}
    assert head["CacheControl"] == "max-age=60"

    for index in range(3):
        served.run(aws, "s3api", "put-object", "--bucket", "cli-api",
                   "--key", f"api/n{index}", "--body", body)
    listed = json.loads(served.run(aws, "s3api", "list-objects-v2", "--bucket", "cli-api",
                                   "--prefix", "api/", "--no-paginate").stdout)
    listed_keys = ["api/k\u00e9y with space.json", "api/n0", "api/n1", "api/n2"]
    assert [item["Key"] for item in listed["Contents"]] == listed_keys
    assert listed["KeyCount"] == 4
    assert {item["Size"] for item in listed["Contents"]} == {body.stat().st_size}
    paged = json.loads(served.run(aws, "s3api", "list-objects-v2", "--bucket", "cli-api",
                                  "--max-items", "2", "--page-size", "1").stdout)
    assert [item["Key"] for item in paged["Contents"]] == listed_keys[:2] and paged["NextToken"]
    rest = json.loads(served.run(aws, "s3api", "list-objects-v2", "--bucket", "cli-api",
                                 "--page-size", "1", "--starting-token",
                                 paged["NextToken"]).stdout)
    assert [item["Key"] for item in rest["Contents"]] == listed_keys[2:]
    everything = json.loads(served.run(aws, "s3api", "list-objects-v2", "--bucket",
                                       "cli-api", "--page-size", "1").stdout)
    assert [item["Key"] for item in everything["Contents"]] == listed_keys  # 4 requests
    grouped = json.loads(served.run(aws, "s3api", "list-objects-v2", "--bucket", "cli-api",
                                    "--delimiter", "/").stdout)
    assert grouped["CommonPrefixes"] == [{"Prefix": "api/"}] and "Contents" not in grouped

    served.run(aws, "s3api", "get-object", "--bucket", "cli-api", "--key", key,
               "--range", "bytes=2-6", tmp_path / "range.out")
    assert (tmp_path / "range.out").read_bytes() == body.read_bytes()[2:7]

    served.run(aws, "s3api", "delete-object", "--bucket", "cli-api", "--key", key)
    gone = served.run(aws, "s3api", "head-object", "--bucket", "cli-api", "--key", key,
                      check=False)
    assert gone.returncode != 0 and "404" in gone.stderr, gone
    missing = served.run(aws, "s3api", "get-object", "--bucket", "cli-api", "--key", key,
                         tmp_path / "missing.out", check=False)
    assert missing.returncode != 0 and "NoSuchKey" in missing.stderr, missing


# -- s3cmd ----------------------------------------------------------------------------------

def s3cmd_config(served: Served, path: Path, signature_v2: bool) -> Path:
    path.write_text(f"""[default]
access_key = {served.key_id}
secret_key = {served.secret}
host_base = 127.0.0.1:{served.port}
host_bucket = 127.0.0.1:{served.port}
bucket_location = {served.creds["AWS_DEFAULT_REGION"]}
use_https = False
signature_v2 = {signature_v2}
check_ssl_certificate = False
progress_meter = False
""")
    return path


@pytest.mark.parametrize("signature_v2", [False, True], ids=["sigv4", "sigv2"])
def test_s3cmd_mb_put_get_ls_sync_del_rb(served, s3cmd, tmp_path, signature_v2):
    config = s3cmd_config(served, tmp_path / "s3cfg", signature_v2)
    bucket = f"s3cmd-{'v2' if signature_v2 else 'v4'}"
    env = served.env()

    def s3(*args, check=True):
        return served.run(s3cmd, "-c", config, *args, env=env, check=check)

    s3("mb", f"s3://{bucket}")
    assert f"s3://{bucket}" in s3("ls").stdout

    small = tmp_path / "small name \u00e9.txt"
    small.write_bytes(b"s3cmd was here\n")
    s3("put", small, f"s3://{bucket}/one/small \u00e9.txt")
    s3("get", f"s3://{bucket}/one/small \u00e9.txt", tmp_path / "small.down")
    assert (tmp_path / "small.down").read_bytes() == small.read_bytes()

    big = big_file(tmp_path / "big.bin")     # 2 parts of s3cmd's 15 MiB chunks
    s3("put", big, f"s3://{bucket}/big.bin")
    s3("get", f"s3://{bucket}/big.bin", tmp_path / "big.down")
    assert same_file(big, tmp_path / "big.down")
    info = s3("info", f"s3://{bucket}/big.bin").stdout
    assert f"File size: {BIG}" in info, info

    source = write_tree(tmp_path / "source")
    s3("sync", f"{source}/", f"s3://{bucket}/tree/")
    assert s3_keys(served, bucket, "tree/") == {f"tree/{name}": len(data)
                                                for name, data in TREE.items()}
    again = s3("sync", f"{source}/", f"s3://{bucket}/tree/").stdout
    assert "upload:" not in again, f"second sync re-uploaded:\n{again}"
    down = tmp_path / "down"
    s3("sync", f"s3://{bucket}/tree/", f"{down}/")
    assert_same_tree(TREE, down)

    listing = s3("ls", f"s3://{bucket}/").stdout
    assert re.search(rf"DIR\s+s3://{bucket}/one/$", listing, re.M), listing
    assert f"s3://{bucket}/big.bin" in listing
    recursive = s3("ls", "--recursive", f"s3://{bucket}").stdout
    for name in TREE:
        assert f"s3://{bucket}/tree/{name}" in recursive, (name, recursive)

    s3("del", f"s3://{bucket}/big.bin")
    assert "big.bin" not in s3("ls", f"s3://{bucket}/").stdout
    refused = s3("rb", f"s3://{bucket}", check=False)
    assert refused.returncode != 0 and "BucketNotEmpty" in refused.stderr, refused
    s3("del", "--recursive", "--force", f"s3://{bucket}/")
    assert s3_keys(served, bucket) == {}
    s3("rb", f"s3://{bucket}")
    assert f"s3://{bucket}" not in s3("ls").stdout


# -- rclone ---------------------------------------------------------------------------------

def rclone_env(served: Served, tmp_path: Path, **extra) -> dict[str, str]:
    config = tmp_path / "rclone.conf"
    config.touch()
    return served.env(
        RCLONE_CONFIG=str(config),
        RCLONE_CONFIG_EUCA_TYPE="s3",
        RCLONE_CONFIG_EUCA_PROVIDER="Other",
        RCLONE_CONFIG_EUCA_ENDPOINT=served.endpoint,
        RCLONE_CONFIG_EUCA_ACCESS_KEY_ID=served.key_id,
        RCLONE_CONFIG_EUCA_SECRET_ACCESS_KEY=served.secret,
        RCLONE_CONFIG_EUCA_REGION=served.creds["AWS_DEFAULT_REGION"],
        RCLONE_CONFIG_EUCA_FORCE_PATH_STYLE="true",
        RCLONE_RETRIES="1", RCLONE_LOW_LEVEL_RETRIES="1",
        **extra)


def test_rclone_mkdir_copy_check_ls_purge(served, rclone, tmp_path):
    env = rclone_env(served, tmp_path)

    def rc(*args, check=True):
        return served.run(rclone, *args, env=env, check=check)

    rc("mkdir", "euca:rclone-tree")
    assert "rclone-tree" in rc("lsd", "euca:").stdout
    source = write_tree(tmp_path / "source")
    rc("copy", source, "euca:rclone-tree/tree")
    assert s3_keys(served, "rclone-tree") == {f"tree/{name}": len(data)
                                              for name, data in TREE.items()}
    down = tmp_path / "down"
    rc("copy", "euca:rclone-tree/tree", down)
    assert_same_tree(TREE, down)
    rc("check", source, "euca:rclone-tree/tree")               # sizes and MD5 (ETag)
    rc("check", "--download", source, "euca:rclone-tree/tree")  # byte for byte

    listed = {}
    for line in rc("ls", "euca:rclone-tree").stdout.splitlines():
        size, name = line.strip().split(" ", 1)
        listed[name] = int(size)
    assert listed == {f"tree/{name}": len(data) for name, data in TREE.items()}
    dirs = rc("lsd", "euca:rclone-tree/tree").stdout
    assert {line.split()[-1] for line in dirs.splitlines()} == {"a", "bin", "deep", "x+y"}

    (source / "top.txt").write_bytes(b"changed\n")
    differs = rc("check", source, "euca:rclone-tree/tree", check=False)
    assert differs.returncode != 0 and "1 differences found" in differs.stderr, differs

    rc("purge", "euca:rclone-tree")
    assert "rclone-tree" not in rc("lsd", "euca:").stdout


def test_rclone_multipart_list_v2_and_server_side_copy(served, rclone, tmp_path):
    """A 20 MiB file in 5 MiB parts, ListObjectsV2 and CopyObject (rclone copyto)."""
    env = rclone_env(served, tmp_path, RCLONE_S3_UPLOAD_CUTOFF="5M",
                     RCLONE_S3_CHUNK_SIZE="5M", RCLONE_S3_LIST_VERSION="2")

    def rc(*args, check=True):
        return served.run(rclone, *args, env=env, check=check)

    rc("mkdir", "euca:rclone-big")
    source = tmp_path / "source"
    source.mkdir()
    big = big_file(source / "big file.bin")
    rc("copy", source, "euca:rclone-big/up")
    assert s3_keys(served, "rclone-big") == {"up/big file.bin": BIG}
    rc("check", source, "euca:rclone-big/up")     # MD5 from rclone's own metadata
    rc("copyto", "euca:rclone-big/up/big file.bin", "euca:rclone-big/copied.bin")
    down = tmp_path / "down"
    rc("copy", "euca:rclone-big", down)
    assert same_file(big, down / "up" / "big file.bin")
    assert same_file(big, down / "copied.bin")
    rc("purge", "euca:rclone-big")
    assert "rclone-big" not in rc("lsd", "euca:").stdout
