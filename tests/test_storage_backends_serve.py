"""What a lab admin sees of the storage backends before any request: config mistakes in
one line, and the serve banner naming where objects and volumes live and whether the
backend answers (the Ceph-backed halves are in tests/test_s3_backend*.py and
tests/test_ebs_rbd*.py)."""
from __future__ import annotations

import subprocess

import pytest
from liveutil import free_port
from serverutil import AWS, EUCALITE, cli_env, run, stop, wait_ready

from eucalite import config


@pytest.mark.parametrize("settings, says", [
    ({"s3_backend": "rados"}, "s3_backend: expected file or s3"),
    ({"ebs_backend": "iscsi"}, "ebs_backend: expected file or rbd"),
    ({"rbd_snapshots": "s3"}, "rbd_snapshots: expected ceph or objectstore"),
    ({"s3_backend": "s3"}, "needs s3_backend_url, s3_backend_access_key, s3_backend_secret_key"),
    ({"s3_backend": "s3", "s3_backend_url": "http://rgw:7480", "s3_backend_access_key": "K"},
     "needs s3_backend_secret_key"),
])
def test_a_backend_config_mistake_is_one_line(tmp_path, settings, says):
    with pytest.raises(ValueError, match=says):
        config.load({"data_dir": str(tmp_path), **settings}, environ={})


def test_backend_names_are_read_case_blind(tmp_path):
    loaded = config.load({"data_dir": str(tmp_path)},
                         environ={"EUCALITE_EBS_BACKEND": "RBD", "EUCALITE_S3_BACKEND": "File"})
    assert (loaded["ebs_backend"], loaded["s3_backend"]) == ("rbd", "file")


def test_serve_banner_names_unreachable_backends_and_still_serves(tmp_path):
    """An s3 backend nobody answers for and a Ceph config that is not there: the banner says
    both are unreachable and why, and the cloud serves the rest."""
    port = free_port()
    env = cli_env(EUCALITE_DATA_DIR=str(tmp_path / "data"), EUCALITE_S3_BACKEND="s3",
                  EUCALITE_S3_BACKEND_URL="http://127.0.0.1:9",
                  EUCALITE_S3_BACKEND_ACCESS_KEY="K", EUCALITE_S3_BACKEND_SECRET_KEY="S",
                  EUCALITE_S3_BACKEND_BUCKET="eucalite-walrus",
                  EUCALITE_EBS_BACKEND="rbd", EUCALITE_CEPH_CONF=str(tmp_path / "no.conf"))
    process = subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(port, process)
        result = run("bash", "-c", f'eval "$({EUCALITE} credentials)" && '
                     f"{AWS} ec2 describe-regions --output text", env=env)
        assert "eucalyptus" in result.stdout
    finally:
        output = stop(process)
    lines = output.splitlines()
    objects = next(line for line in lines if line.startswith("  objects"))
    volumes = next(line for line in lines if line.startswith("  volumes"))
    assert "s3 bucket eucalite-walrus at http://127.0.0.1:9 (UNREACHABLE" in objects
    assert "RBD images in pool eucalite-volumes" in volumes
    assert f"UNREACHABLE: no Ceph config file {tmp_path / 'no.conf'}" in volumes
