"""`eucalite serve` and its data directory: one server per data directory, nothing touched on
the host when the port is taken, and store recovery by whichever worker starts, never while
another writer lives."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from liveutil import free_port
from serverutil import EUCALITE, cli_env, run, stop, wait_ready, wait_until

from eucalite import datadir


def _serve(env, port, *extra) -> subprocess.Popen:
    return subprocess.Popen([EUCALITE, "serve", "--no-node", "--port", str(port), *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(text[text.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_a_second_server_on_a_data_dir_is_refused_before_touching_the_store(tmp_path):
    data_dir = tmp_path / "data"
    env = cli_env(EUCALITE_DATA_DIR=str(data_dir))
    port = free_port()
    first = _serve(env, port)
    second = None
    try:
        wait_ready(port, first)
        in_flight = data_dir / "s3" / "tmp" / "an-upload-in-flight"
        in_flight.write_bytes(b"acknowledged soon")
        second = _serve(env, free_port())
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("a second server started on a data dir in use")
        output = stop(second)
        assert second.returncode != 0
        assert f"in use by pid {first.pid}" in output and "Traceback" not in output
        assert in_flight.exists()                     # no recovery ran on the live store
        assert "eucalyptus" in run("bash", "-c", f'eval "$({EUCALITE} credentials)" && '
                                   f'aws ec2 describe-regions --output text', env=env).stdout
    finally:
        if second is not None:
            stop(second)
        stop(first)


def test_a_taken_port_fails_before_anything_changes_on_the_host(tmp_path):
    data_dir = tmp_path / "data"
    env = cli_env(EUCALITE_DATA_DIR=str(data_dir), EUCALITE_HYPERVISOR="fake")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # node duty on (the fake hypervisor): a start that got further would register it
        result = run(EUCALITE, "serve", "--port", str(port), env=env, check=False)
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr and "in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert "no nodes" in run(EUCALITE, "node", "list", env=env).stdout


def test_a_respawned_worker_recovers_the_store_once_no_other_writer_is_left(tmp_path):
    data_dir = tmp_path / "data"
    env = cli_env(EUCALITE_DATA_DIR=str(data_dir))
    port = free_port()
    server = _serve(env, port)
    try:
        wait_ready(port, server)
        [worker] = _children(server.pid)
        left_behind = data_dir / "s3" / "tmp" / "write-of-the-killed-worker"
        left_behind.write_bytes(b"half an object")
        # another writer (as `eucalite image import` is) holds the store while the worker dies
        with datadir.store_writer(data_dir):
            os.kill(worker, signal.SIGKILL)
            wait_until(lambda: _children(server.pid) not in ([], [worker]), "a new worker")
            time.sleep(2)
            assert left_behind.exists()            # never removed under a live writer
        wait_until(lambda: not left_behind.exists(), "recovery in the new worker")
        result = run("bash", "-c", f'eval "$({EUCALITE} credentials)" && '
                     f'aws ec2 describe-regions --output text', env=env)
        assert "eucalyptus" in result.stdout
    finally:
        output = stop(server)
    assert server.returncode == 0, output
