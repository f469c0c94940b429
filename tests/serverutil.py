"""Helpers for tests that run ``eucalite`` as a user does: a subprocess (``eucalite serve``,
``eucalite credentials``, the aws CLI) and the ports and signals between them."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BIN = Path(sys.executable).parent
EUCALITE = str(BIN / "eucalite")
AWS = str(BIN / "aws") if (BIN / "aws").exists() else "aws"


def run(*args, env=None, check=True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command (text output captured, 120 s at most); with *check*, a non-zero exit
    fails the test showing both outputs."""
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def cli_env(**extra) -> dict[str, str]:
    """os.environ for a subprocess, with AWS clients that never retry and *extra* set."""
    env = dict(os.environ)
    env.update(AWS_MAX_ATTEMPTS="1", **extra)
    return env


def wait_until(condition, what: str, timeout: float = 30, *, interval: float = 0.1,
               show=lambda: ""):
    """Poll *condition* every *interval* s until it returns something truthy, and return
    that; after *timeout* s fail naming *what*, with ``show()`` (e.g. a console so far)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{show()}")
        time.sleep(interval)
    return value


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until *process* listens on loopback:*port*; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.communicate()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("server did not start listening")


def wait_ready(port: int, process: subprocess.Popen) -> None:
    """Wait until the server answers HTTP (it listens before its worker is ready)."""
    wait_for_port(port, process)

    def answers() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        except urllib.error.HTTPError:
            return True                    # an S3 error: the worker answered
        except OSError:
            return False
        return True
    wait_until(answers, "the server to answer")


def stop(process: subprocess.Popen) -> str:
    """SIGTERM *process* (killed after 30 s) and return everything it printed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def self_signed(directory) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files in *directory*."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eucalite test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)
