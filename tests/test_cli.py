"""The `eucalite` command as a user runs it: serve, credentials with the aws CLI, accounts."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from awsutil import error_code
from liveutil import free_port
from serverutil import AWS, EUCALITE, cli_env, run, wait_for_port


@pytest.fixture
def served(tmp_path):
    """`eucalite serve` as a subprocess (gunicorn), configured through the environment."""
    port = free_port()
    data_dir = tmp_path / "data"
    env = cli_env(EUCALITE_DATA_DIR=str(data_dir))
    # The port is given on the command line only: `eucalite credentials` must learn it
    # from the data directory.
    process = subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_for_port(port, process)
    yield process, env, port
    if process.poll() is None:
        process.kill()
        process.wait()


def test_help_for_every_command():
    for args in ([], ["serve"], ["credentials"], ["account"], ["account", "create"],
                 ["account", "user-create"], ["account", "key-create"], ["db"]):
        result = run(EUCALITE, *args, "--help")
        assert "Usage:" in result.stdout and len(result.stdout.splitlines()) > 3


def test_serve_then_aws_cli_with_eval_credentials_then_sigterm(served):
    process, env, port = served
    shell = f'eval "$({EUCALITE} credentials)" && {AWS} ec2 describe-regions --output text'
    result = run("bash", "-c", shell, env=env)
    assert "eucalyptus" in result.stdout
    result = run("bash", "-c", f'eval "$({EUCALITE} credentials)" && {sys.executable} -c '
                 '"import boto3; print(boto3.client(\'ec2\').describe_availability_zones()'
                 '[\'AvailabilityZones\'][0][\'ZoneName\'])"', env=env)
    assert result.stdout.strip() == "eucalyptus-1a"

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "eval \"$(eucalite credentials" in output            # how to get credentials
    assert "/services/compute" in output                         # endpoint URLs
    assert "node duty      off" in output
    assert output.count('"POST /services/compute HTTP/1.1" 200') == 2   # one line a request


def test_data_survives_restart_and_ctrl_c_stops(served, tmp_path):
    process, env, port = served
    first = run(EUCALITE, "credentials", env=env).stdout
    run(EUCALITE, "account", "create", "lab", env=env)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 0

    restarted = subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, restarted)
        assert run(EUCALITE, "credentials", env=env).stdout == first
        assert "lab" in run(EUCALITE, "account", "list", env=env).stdout
        result = run("bash", "-c", f'eval "$({EUCALITE} credentials --account lab)" && '
                     f'{AWS} ec2 describe-regions --output text', env=env)
        assert "eucalyptus" in result.stdout
    finally:
        restarted.terminate()
        restarted.wait(timeout=30)


def test_credentials_output_is_shell_exports(tmp_path):
    env = cli_env(EUCALITE_DATA_DIR=str(tmp_path / "d"))
    output = run(EUCALITE, "credentials", env=env).stdout
    names = [line.split("=")[0].split()[1] for line in output.splitlines()
             if line.startswith("export ")]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                 "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_IAM",
                 "EC2_URL", "S3_URL"):
        assert name in names
    printed = run("bash", "-c", f'eval "$({EUCALITE} credentials)"; echo "$AWS_ENDPOINT_URL_EC2"',
                  env=env).stdout.strip()
    assert printed == "http://127.0.0.1:8773/services/compute"


def test_accounts_users_and_keys(live, tmp_path):
    env = cli_env(EUCALITE_DATA_DIR=live.app.config["EUCALITE"]["data_dir"])
    created = run(EUCALITE, "account", "create", "research", env=env).stdout
    assert created.startswith("account research ")
    user = run(EUCALITE, "account", "user-create", "research", "alice", env=env).stdout
    key_line = [line for line in user.splitlines() if line.startswith("access key")][0]
    key_id, secret = key_line.split()[2:4]
    # the key signs; alice has no policy, so EC2 refuses her (AWS's default for a user)
    assert error_code(live.client("ec2", key_id=key_id, secret=secret)
                      .describe_availability_zones) == "UnauthorizedOperation"

    users = run(EUCALITE, "account", "users", "research", env=env).stdout
    assert "admin" in users and "alice" in users
    assert key_id in run(EUCALITE, "account", "keys", "research", "alice", env=env).stdout

    run(EUCALITE, "account", "key-status", key_id, "Inactive", env=env)
    with pytest.raises(ClientError) as excinfo:
        live.client("ec2", key_id=key_id, secret=secret).describe_regions()
    assert error_code(excinfo) == "InvalidClientTokenId"

    duplicate = run(EUCALITE, "account", "create", "research", env=env, check=False)
    assert duplicate.returncode == 1 and "EntityAlreadyExists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    missing = run(EUCALITE, "credentials", "--account", "nobody", env=env, check=False)
    assert missing.returncode == 1 and "NoSuchEntity" in missing.stderr
    bad = run(EUCALITE, "account", "create", "Bad_Name", env=env, check=False)
    assert bad.returncode == 1 and "ValidationError" in bad.stderr

    run(EUCALITE, "account", "delete", "research", env=env)
    with pytest.raises(ClientError):
        live.client("ec2", key_id=key_id, secret=secret).describe_regions()


def test_profile_for_the_aws_cli(live, tmp_path):
    env = cli_env(EUCALITE_DATA_DIR=live.app.config["EUCALITE"]["data_dir"],
                  EUCALITE_PORT=str(live.port))
    config_file = Path(env["AWS_CONFIG_FILE"])
    config_file.write_text("[profile other]\nregion = us-west-2\n")
    run(EUCALITE, "credentials", "--profile", "euca", env=env)
    assert "[profile other]" in config_file.read_text()
    result = run(AWS, "--profile", "euca", "ec2", "describe-availability-zones",
                 "--output", "text", env=env)
    assert "eucalyptus-1a" in result.stdout


def test_bad_configuration_is_one_clear_line(tmp_path):
    env = cli_env(EUCALITE_DATA_DIR=str(tmp_path), EUCALITE_PORT="eighty")
    result = run(EUCALITE, "serve", env=env, check=False)
    assert result.returncode != 0
    assert "EUCALITE_PORT" in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_public_ip_pool_stops_serve_with_one_clear_line(tmp_path):
    env = cli_env(EUCALITE_DATA_DIR=str(tmp_path), EUCALITE_PUBLIC_INTERFACE="eulab0",
                  EUCALITE_PUBLIC_IPS="198.51.100.20-198.51.100.10")
    result = run(EUCALITE, "serve", env=env, check=False)
    assert result.returncode != 0
    assert "198.51.100.20-198.51.100.10" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "eucalite.db").exists()      # stopped before touching anything
