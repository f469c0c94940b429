"""Helpers the benchmark scripts share: progress lines, skipping, polling until a
condition holds, a free loopback port, waiting for a server, an in-process eucalite, where
the tiny guest is cached."""
from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# The tiny guest's build cache, shared with the real-VM tests: EUCALITE_TEST_GUEST_DIR
# (./setup.sh test sets it), else eucalite-guest in the system's temporary directory.
GUEST_DIR = (os.environ.get("EUCALITE_TEST_GUEST_DIR")
             or os.path.join(tempfile.gettempdir(), "eucalite-guest"))

T0 = time.monotonic()       # the benchmark's start (this module is imported first thing)


def progress(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the benchmark started."""
    print(f"  [{time.monotonic() - T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def skip(reason: str) -> None:
    """End the benchmark with exit status 0, saying why it did not run."""
    print(f"bench/{os.path.basename(sys.argv[0])} skipped: {reason}")
    raise SystemExit(0)


def until(condition, what: str, timeout: float, poll: float = 0.02) -> float:
    """perf_counter() when *condition()* first holds, polled every *poll* s; exits the
    benchmark naming *what* when it does not hold within *timeout* s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)
    return time.perf_counter()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen | None = None, name: str = "server",
             timeout: float = 60) -> None:
    """Return once something listens on *port*; exit the benchmark if *process* dies
    first or nothing listens within *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{name}: nothing listening on {port}")


class InProcessCloud:
    """eucalite served from this process (werkzeug, threads) and an EC2 client of the cloud
    admin, for the benchmarks that time eucalite against the raw operation beside it."""

    def __init__(self, data_dir, **config):
        import logging
        import threading

        import boto3
        from botocore.config import Config
        from werkzeug.serving import make_server

        from eucalite import accounts, config as config_module, create_app

        logging.getLogger("werkzeug").setLevel(logging.WARNING)    # no request log
        port = free_port()
        self.app = create_app({"data_dir": str(data_dir), "port": port, "host": "127.0.0.1",
                               "log_level": "WARNING", **config}, environ={})
        self.services = self.app.extensions["eucalite"]
        self.data_dir = data_dir
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        with self.app.app_context():
            key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
            key_id, secret = key.id, key.secret
        endpoint = config_module.endpoints(self.app.config["EUCALITE"])["ec2"]
        self.ec2 = boto3.session.Session().client(
            "ec2", endpoint_url=endpoint, region_name=self.app.config["EUCALITE"]["region"],
            aws_access_key_id=key_id, aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}))

    def start_node(self) -> str | None:
        """What ``eucalite serve`` starts for node duty (its reconcile pass touches only
        this cloud's domains); exits the benchmark if node duty cannot run. Returns why
        guests get no metadata service, or None."""
        from eucalite.server import start_node_services

        start_node_services(self.app)
        if self.services.cluster.node_problem:
            raise SystemExit(f"eucalite's node duty did not start: "
                             f"{self.services.cluster.node_problem}")
        return self.services.cluster.metadata_problem

    def close(self, instance_ids=(), network: str | None = None) -> None:
        """Stop serving, the jobs and the metadata listener; destroy *instance_ids*, remove
        what the node's data plane put on the host (eucalite's nft tables and public /32s
        on a real node) and remove *network* from libvirt. Keeps cleaning up past any one
        failure."""
        import contextlib
        import sys

        with contextlib.suppress(Exception):
            self.server.shutdown()
        with contextlib.suppress(Exception):
            self.services.compute.worker.shutdown()
        if self.services.compute.metadata_server is not None:
            with contextlib.suppress(Exception):
                self.services.compute.metadata_server.shutdown()
        driver = self.services.cluster.driver
        if driver is None:
            return
        for instance_id in instance_ids:
            try:
                driver.destroy(instance_id)
            except Exception as error:  # noqa: BLE001 - keep cleaning up
                print(f"cannot destroy {instance_id}: {error}", file=sys.stderr)
        firewall = self.services.cluster.local_node.firewall
        if firewall is not None:
            try:
                firewall.remove()
            except Exception as error:  # noqa: BLE001
                print(f"cannot remove eucalite's network rules: {error}", file=sys.stderr)
        if network:
            try:
                driver.remove_network(network)
            except Exception as error:  # noqa: BLE001
                print(f"cannot remove network {network}: {error}", file=sys.stderr)
        with contextlib.suppress(Exception):
            self.services.cluster.close_driver()


def serve_subprocess(data_dir: str, log_path: str, server: str | None = None,
                     settings: dict[str, str] | None = None
                     ) -> tuple[subprocess.Popen, int, dict[str, str]]:
    """`eucalite serve --no-node` on a free loopback port, with its default server model or
    *server* (`--server`) and *settings* (EUCALITE_* variables), in its own session (a
    Ctrl-C on the terminal reaches only the benchmark, which then stops it). Returns the
    process, the port and the variables `eucalite credentials` exports
    (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_S3, ...)."""
    import os
    import sys
    from pathlib import Path

    bin_dir = Path(sys.executable).parent
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "EUCALITE_"))}
    env["EUCALITE_LOG_LEVEL"] = "WARNING"
    env.update(settings or {})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(bin_dir / "eucalite"), "serve", "--no-node", "--host", "127.0.0.1",
             "--port", str(port), "--data-dir", data_dir,
             *(["--server", server] if server else [])],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(port, process, "eucalite serve")
    output = subprocess.run([str(bin_dir / "eucalite"), "credentials", "--data-dir", data_dir],
                            env=env, text=True, capture_output=True, check=True).stdout
    exported = {}
    for line in output.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            exported[name] = value.strip("'\"")
    return process, port, exported


def unwind_on_signals() -> None:
    """Make Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt, so a benchmark's `finally`
    stops the servers it started (SIGINT is set explicitly too: a shell starts background
    jobs with it ignored)."""
    import signal

    def interrupted(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)


def parse_runs(description: str):
    """The command line of a benchmark that repeats its cases: ``--runs N`` (default 5)
    and ``--quick`` (3 runs); the parsed arguments."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=5, help="runs of each case (default 5)")
    parser.add_argument("--quick", action="store_true", help="3 runs of each case")
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def run_cleaning_up(body, top) -> None:
    """Call ``body(cleanup)``, where *cleanup* is a list the body fills with clean-up
    steps; afterwards, also after Ctrl-C, SIGTERM or SIGHUP, every step runs in order (a
    failing one is printed and the rest still run) and the directory *top* is removed.
    Exits with 130 when interrupted."""
    import shutil
    import signal

    cleanup: list = []
    unwind_on_signals()
    interrupted = False
    try:
        body(cleanup)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)        # let the clean-up finish
        for step in cleanup:
            try:
                step()
            except Exception as error:  # noqa: BLE001 - keep cleaning up
                print(f"clean-up step failed: {error}", file=sys.stderr)
        shutil.rmtree(top, ignore_errors=True)
    if interrupted:
        raise SystemExit(130)


def timed(call, count: int, warm: int = 1) -> list[float]:
    """Seconds each of *count* calls of *call* took, after *warm* untimed calls (the
    connection and caches warmed, as a client's steady state)."""
    for _ in range(warm):
        call()
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def describe(samples: list[float], tail: float = 0.95) -> str:
    """``p50 … ms  p95 … ms  … req/s`` of *samples* (seconds), the tail percentile *tail*."""
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    high = ordered[max(0, int(len(ordered) * tail) - 1)] * 1000
    return (f"p50 {p50:6.2f} ms  p{round(tail * 100)} {high:6.2f} ms  "
            f"{len(samples) / sum(samples):6.0f} req/s")



def moto_subprocess() -> tuple[subprocess.Popen, str] | None:
    """`moto_server` (in memory) on a free loopback port, in its own session: the process
    and its URL; None when moto_server is not installed (``pip install moto[server]``)."""
    import os
    import shutil
    from pathlib import Path

    moto = (shutil.which("moto_server", path=str(Path(sys.executable).parent))
            or shutil.which("moto_server"))
    if moto is None:
        return None
    port = free_port()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_", "EUCALITE_"))}
    process = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    wait_for(port, process, "moto_server")
    return process, f"http://127.0.0.1:{port}"
