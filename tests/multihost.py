"""A real multi-host lab on one machine, for the multi-host end-to-end tests and benchmark.

Two node hosts and a controller, each a separate ``eucalite`` process:

* the **lab network**: bridge ``eumhbr0`` in the root namespace with 10.251.0.1/24 (the
  controller's and the storage host's address), and per node host a network namespace
  (``euca-nA``, ``euca-nB``) joined to it by a veth pair (``eumh-nA`` on the bridge,
  ``lab0`` inside, 10.251.0.11 and .12);
* per node host **its own libvirtd** (and virtlogd), started in the node's network namespace
  and in a mount namespace of its own where /run/libvirt, /var/lib/libvirt,
  /var/cache/libvirt, /var/log/libvirt and /etc/libvirt are bind mounts of the node's own
  directories (a copy of the host's /etc/libvirt without its networks; a copy of the
  host's QEMU capability cache, so the daemon answers at once). ``qemu:///system`` inside
  that mount namespace is the node's daemon, so each node's instance bridge, dnsmasq and
  QEMU processes live in its network namespace, as on a separate host;
* the **controller**: ``eucalite serve --no-node`` in the root namespace listening on
  10.251.0.1, its volumes exported by the host's tgtd with a portal added on 10.251.0.1:3260
  (``storage_address``), removed again at the end;
* each node host joins with the real CLI (``eucalite node token`` on the controller's data
  directory, ``eucalite join URL TOKEN --node-name ...`` entered into the node's namespaces
  with ``nsenter``), and restarts with ``eucalite serve --node-only``.

:class:`Lab` builds it and :meth:`Lab.close` removes everything it started (node processes,
domains, the daemons, dnsmasq and QEMU: every process of each node's network namespace),
the namespaces, the veths and the bridge, and the tgt portal; it also removes what a crashed
run left under these names first. Needs root; :func:`preflight` says why it cannot run.
Run it only under ``flock /tmp/realvm.lock`` (the real-VM tests share the host).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from botocore.config import Config
from guestutil import GUEST_DIR, REAL_URI, qemu_reachable_dir
from liveutil import aws_session
from serverutil import EUCALITE, wait_until

from eucalite import config as config_module
from eucalite.cluster.virt.driver import DOMAIN_PREFIX

BRIDGE = "eumhbr0"
CONTROLLER_IP = "10.251.0.1"
PREFIX = 24
STORAGE_PORTAL = f"{CONTROLLER_IP}:3260"
#: The instances' private subnet, one for the zone: every node's bridge is on it.
INSTANCE_SUBNET = "10.252.0.0/24"
ZONES = ["lab-1a", "lab-1b"]
#: Each node host's instance bridge (in its namespace).
NODE_BRIDGE = "eumhbr1"
#: The instance network of the controller's own node (node duty on: the benchmark).
CONTROLLER_NETWORK = "eucalite-lab-ctl"
#: (node id, namespace, lab address) of each node host.
NODE_HOSTS = (("node-a", "euca-nA", "10.251.0.11"), ("node-b", "euca-nB", "10.251.0.12"))
LIBVIRT_DIRS = {"run": "/run/libvirt", "lib": "/var/lib/libvirt",
                "cache": "/var/cache/libvirt", "log": "/var/log/libvirt", "etc": "/etc/libvirt"}
START_TIMEOUT = 60
#: How the controller sees a node fail: heartbeats every second, silent after 4 s.
HEARTBEAT_INTERVAL, NODE_TIMEOUT, RECONCILE_INTERVAL = 1, 4, 1


def preflight() -> str | None:
    """Why the lab cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "the lab's namespaces, bridge and per-node libvirtd need root"
    if not REAL_URI.startswith("qemu"):
        return ("needs real guests: set EUCALITE_TEST_LIBVIRT_URI=qemu:///system and "
                "EUCALITE_TEST_GUEST_DIR (./setup.sh test does)")
    if not GUEST_DIR:
        return "needs the tiny guest's cache: set EUCALITE_TEST_GUEST_DIR"
    if os.path.exists("/dev/kvm") and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "no access to /dev/kvm (chgrp kvm /dev/kvm && chmod 660 /dev/kvm)"
    for program in ("libvirtd", "virtlogd", "virsh", "ip", "unshare", "nsenter", "tgtadm"):
        if shutil.which(program) is None:
            return f"{program} is not installed (see setup.sh's real-VM packages)"
    return None


def run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a command (output captured); with *check*, fail showing its output."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: "
                           f"{result.stdout.strip()} {result.stderr.strip()}")
    return result


def _free_lab_port() -> int:
    with socket.socket() as sock:
        sock.bind((CONTROLLER_IP, 0))
        return sock.getsockname()[1]


def _terminate(process: subprocess.Popen | None, timeout: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _env() -> dict[str, str]:
    """The environment of the lab's eucalite processes: no config file or data dir of the
    calling shell, INFO logs."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("EUCALITE_")}
    env.update(EUCALITE_LOG_LEVEL="INFO", AWS_MAX_ATTEMPTS="1")
    return env


def _toml(values: dict) -> str:
    """*values* as TOML lines, keeping only settings this eucalite knows (a key another
    slice adds later is left out until it exists, never an error)."""
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()
                   if key in config_module.DEFAULTS)


class NodeHost:
    """One simulated node host: its namespace, its libvirtd and its eucalite process."""

    def __init__(self, node_id: str, namespace: str, address: str, top: Path):
        self.node_id, self.namespace, self.address = node_id, namespace, address
        self.veth = "eumh-" + namespace[-2:]
        self.top = top
        self.data_dir = top / "data"
        self.log_path = top / "eucalite.log"
        self.libvirtd_pid: int | None = None
        self.process: subprocess.Popen | None = None

    # -- network ------------------------------------------------------------------------

    def plug(self) -> None:
        """The namespace and its veth into the lab bridge, with the node's lab address."""
        run("ip", "netns", "add", self.namespace)
        run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "lab0",
            "netns", self.namespace)
        run("ip", "link", "set", self.veth, "master", BRIDGE, "up")
        run("ip", "-n", self.namespace, "address", "add", f"{self.address}/{PREFIX}",
            "dev", "lab0")
        run("ip", "-n", self.namespace, "link", "set", "lab0", "up")
        run("ip", "-n", self.namespace, "link", "set", "lo", "up")

    # -- libvirt --------------------------------------------------------------------------

    def start_libvirt(self) -> None:
        """virtlogd then libvirtd in the node's network namespace and a mount namespace of
        its own (see the module docstring); returns once the daemon answers."""
        for name in LIBVIRT_DIRS:
            (self.top / name).mkdir(parents=True, exist_ok=True)
        shutil.copytree("/etc/libvirt", self.top / "etc", dirs_exist_ok=True, symlinks=True)
        for leftover in (self.top / "etc/qemu/networks").glob("**/*.xml"):
            leftover.unlink()               # the host's networks are not this node's
        shutil.copytree("/var/cache/libvirt", self.top / "cache", dirs_exist_ok=True,
                        symlinks=True)
        mounts = "; ".join(f"mount --bind {self.top / name} {target}"
                           for name, target in LIBVIRT_DIRS.items())
        pids = self.top / "virtlogd.pid", self.top / "libvirtd.pid"
        script = (f"set -e; {mounts}; virtlogd -d -p {pids[0]}; libvirtd -d -p {pids[1]}")
        run("ip", "netns", "exec", self.namespace, "unshare", "-m", "--propagation",
            "private", "sh", "-c", script)
        self.libvirtd_pid = int(wait_until(lambda: pids[1].exists() and pids[1].read_text()
                                           .strip(), f"{self.node_id}'s libvirtd", 30))
        wait_until(lambda: self.run("virsh", "-c", "qemu:///system", "version",
                                    check=False).returncode == 0,
                   f"{self.node_id}'s libvirtd to answer", START_TIMEOUT, interval=0.2)

    def command(self, *args: str) -> list[str]:
        """*args* as a command line run in the node's namespaces (network and mount)."""
        return ["nsenter", "-t", str(self.libvirtd_pid), "-m", "-n", *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(*self.command(*args), check=check)

    def virsh(self, *args: str) -> str:
        return self.run("virsh", "-c", "qemu:///system", *args).stdout

    def domains(self) -> list[str]:
        """The instance ids of the domains running on this node's libvirtd."""
        return [name[len(DOMAIN_PREFIX):] for name in self.virsh("list", "--name").split()
                if name.startswith(DOMAIN_PREFIX)]

    def domain_names(self) -> list[str]:
        """Every domain this node's libvirtd has, running or not."""
        return [name for name in self.virsh("list", "--all", "--name").split() if name]

    # -- eucalite -------------------------------------------------------------------------

    def configure(self, firewall: str = "auto") -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "eucalite.toml").write_text(_toml({"firewall": firewall,
            "hypervisor": "libvirt", "libvirt_uri": "qemu:///system",
            "instance_subnet": INSTANCE_SUBNET, "instance_network": "eucalite-lab",
            "instance_bridge": NODE_BRIDGE, "reconcile_interval": RECONCILE_INTERVAL,
            "node_address": self.address}))

    def _start(self, *args: str) -> None:
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            self.command(EUCALITE, *args, "--data-dir", str(self.data_dir)), env=_env(),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def join(self, url: str, token: str) -> None:
        """``eucalite join URL TOKEN`` on this host (it then serves node duty)."""
        self._start("join", url, token, "--node-name", self.node_id)

    def serve(self) -> None:
        """``eucalite serve --node-only`` on this host (after a join)."""
        self._start("serve", "--node-only")

    def kill(self) -> None:
        """SIGKILL the node's eucalite process, as a crash would (its guests run on)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    # -- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything this host started and remove its namespace and veth."""
        _terminate(self.process)
        if self.libvirtd_pid is not None and Path(f"/proc/{self.libvirtd_pid}").exists():
            for name in self.domain_names():
                self.run("virsh", "-c", "qemu:///system", "destroy", name, check=False)
            for network in self.virsh("net-list", "--all", "--name").split():
                self.run("virsh", "-c", "qemu:///system", "net-destroy", network, check=False)
        remove_namespace(self.namespace)
        run("ip", "link", "delete", self.veth, check=False)


def namespace_pids(namespace: str) -> list[int]:
    result = run("ip", "netns", "pids", namespace, check=False)
    return [int(pid) for pid in result.stdout.split()] if result.returncode == 0 else []


def remove_namespace(namespace: str) -> None:
    """End every process of *namespace* (TERM, then KILL after 20 s) and delete it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = namespace_pids(namespace)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGTERM and pids:
            try:
                wait_until(lambda: not namespace_pids(namespace),
                           f"the processes of {namespace} to end", 20, interval=0.2)
            except AssertionError:
                continue
    run("ip", "netns", "delete", namespace, check=False)


class Controller:
    """``eucalite serve --no-node`` in the root namespace on the lab address."""

    def __init__(self, top: Path):
        self.data_dir = top / "data"
        self.log_path = top / "eucalite.log"
        self.port = _free_lab_port()
        self.url = f"http://{CONTROLLER_IP}:{self.port}"
        self.process: subprocess.Popen | None = None
        self.node = False
        self.credentials: dict[str, str] = {}

    def start(self, node: bool = False, firewall: str = "auto") -> None:
        """Serve; with *node*, node duty on too, on the host's libvirtd, in zone
        ZONES[1] (the node hosts join ZONES[0]), with *firewall*."""
        self.node = node
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "eucalite.toml").write_text(_toml({
            "node_zone": ZONES[1], "firewall": firewall,
            "host": CONTROLLER_IP, "port": self.port, "public_url": self.url,
            "zones": ZONES, "heartbeat_interval": HEARTBEAT_INTERVAL,
            "node_timeout": NODE_TIMEOUT, "reconcile_interval": RECONCILE_INTERVAL,
            "instance_subnet": INSTANCE_SUBNET, "instance_network": CONTROLLER_NETWORK,
            "instance_bridge": "eumhbr2", "ebs_export": "tgt",
            "storage_address": CONTROLLER_IP}))
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [EUCALITE, "serve", "--node" if node else "--no-node", "--data-dir",
             str(self.data_dir)], env=_env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(self._answers, "the controller to answer", START_TIMEOUT,
                   show=self.log)
        self.credentials = self._credentials()

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the controller exited {self.process.returncode}:\n"
                                 f"{self.log()}")
        try:
            urllib.request.urlopen(self.url + "/", timeout=5)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``eucalite ARGS --data-dir`` the controller's (as its admin runs it)."""
        result = subprocess.run([EUCALITE, *args, "--data-dir", str(self.data_dir)],
                                capture_output=True, text=True, env=_env(), timeout=300)
        if check and result.returncode:
            raise AssertionError(f"eucalite {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def _credentials(self) -> dict[str, str]:
        exported = self.cli("credentials").stdout
        return dict(re.findall(r"^export (\w+)=['\"]?([^'\"\n]*)['\"]?$", exported, re.M))

    def client(self, service: str = "ec2"):
        """A boto3 client of the cloud admin that never retries."""
        creds = self.credentials
        return aws_session(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"],
                           creds["AWS_DEFAULT_REGION"]).client(
            service, endpoint_url=creds[f"AWS_ENDPOINT_URL_{service.upper()}"],
            config=Config(retries={"max_attempts": 1}))

    def token(self, zone: str) -> str:
        """A join token for *zone* made by ``eucalite node token``."""
        printed = self.cli("node", "token", "--zone", zone).stdout
        return re.search(r"^token (\S+)$", printed, re.M).group(1)

    def nodes(self) -> dict[str, list[str]]:
        """``eucalite node list`` as {node id: its columns}."""
        listed = self.cli("node", "list").stdout.splitlines()[1:]
        return {row.split("\t")[0]: row.split("\t") for row in listed if "\t" in row}

    def node_state(self, node_id: str) -> str | None:
        row = self.nodes().get(node_id)
        return row[2] if row else None

    def import_guest(self, name: str = "tiny") -> dict[str, str]:
        """The tiny guest imported with ``eucalite image import`` as *name* (each import
        a new name): {kind: image id}."""
        guest = Path(GUEST_DIR)
        printed = self.cli("image", "import", "--kernel", str(guest / "vmlinuz"),
                           "--ramdisk", str(guest / "initrd.gz"), "--root",
                           str(guest / "root.img"), "--name", name,
                           "--bucket", "lab-images").stdout
        found = {image_id[:3]: image_id
                 for image_id in re.findall(r"\b(?:emi|eki|eri)-[0-9a-f]+", printed)}
        if set(found) != {"emi", "eki", "eri"}:
            raise AssertionError(f"eucalite image import printed no image ids:\n{printed}")
        return found

    def volume_path(self, volume_id: str) -> Path:
        return self.data_dir / "volumes" / f"{volume_id}.raw"

    def stop(self) -> None:
        """Stop serving; with node duty on, terminate every instance first (so no domain
        of it is left on the host's libvirtd) and remove its instance network after."""
        if self.node and self.process is not None and self.process.poll() is None:
            try:
                self.terminate_all()
            except Exception as error:  # noqa: BLE001 - keep cleaning up
                print(f"multihost: cannot terminate the instances: {error}")
        _terminate(self.process)
        if self.node:
            for action in ("net-destroy", "net-undefine"):
                run("virsh", "-c", "qemu:///system", action, CONTROLLER_NETWORK, check=False)

    def terminate_all(self) -> None:
        ec2 = self.client()
        ids = [item["InstanceId"] for page in ec2.get_paginator("describe_instances").paginate()
               for reservation in page["Reservations"] for item in reservation["Instances"]
               if item["State"]["Name"] != "terminated"]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            wait_until(lambda: all(item["State"]["Name"] == "terminated" for reservation in
                                   ec2.describe_instances(InstanceIds=ids)["Reservations"]
                                   for item in reservation["Instances"]),
                       "the instances to end", 120, interval=0.5)

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""


class Lab:
    """The lab network, the controller and the node hosts (see the module docstring). Use
    as a context manager, or call :meth:`close` (it runs after a partial start too)."""

    def __init__(self):
        self.top: Path | None = None
        self.controller: Controller | None = None
        self.nodes: dict[str, NodeHost] = {}
        self.portal_added = False
        #: Why node hosts cannot reach volumes (None when the lab's tgt portal is up).
        self.storage_problem: str | None = None

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, *, controller_node: bool = False, firewall: str = "auto") -> "Lab":
        """Everything: the network, the controller (with node duty on in ZONES[1] when
        *controller_node*), and every node host joined in ZONES[0] and registered; every
        node's data plane is *firewall* (``fake``: the host's and namespaces' nftables
        untouched)."""
        self.cleanup_leftovers()
        self.top = qemu_reachable_dir("eucalite-multihost-")
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "address", "add", f"{CONTROLLER_IP}/{PREFIX}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        self._add_portal()
        for node_id, namespace, address in NODE_HOSTS:
            host = NodeHost(node_id, namespace, address, self.top / node_id)
            self.nodes[node_id] = host
            host.plug()
            host.start_libvirt()
            host.configure(firewall)
        self.controller = Controller(self.top / "controller")
        self.controller.start(node=controller_node, firewall=firewall)
        for host in self.nodes.values():
            host.join(self.controller.url, self.controller.token(ZONES[0]))
        for host in self.nodes.values():
            wait_until(lambda: self.controller.node_state(host.node_id) == "enabled",
                       f"{host.node_id} to join and register", START_TIMEOUT, interval=0.5,
                       show=host.log)
        return self

    def _add_portal(self) -> None:
        """A portal of the host's tgtd on the lab address, so node hosts reach volumes
        (the daemon keeps serving its own portals)."""
        result = run("tgtadm", "--lld", "iscsi", "--op", "new", "--mode", "portal",
                     "--param", f"portal={STORAGE_PORTAL}", check=False)
        self.portal_added = result.returncode == 0
        shown = run("tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "portal",
                    check=False).stdout
        if STORAGE_PORTAL not in shown:
            self.storage_problem = (f"tgtd serves no portal on {STORAGE_PORTAL} (is tgtd "
                                    f"running? tgtd --iscsi portal=127.0.0.1:3260): "
                                    f"{(result.stderr or result.stdout).strip()}")

    def _remove_portal(self) -> None:
        run("tgtadm", "--lld", "iscsi", "--op", "delete", "--mode", "portal",
            "--param", f"portal={STORAGE_PORTAL}", check=False)

    def close(self) -> None:
        """Stop and remove everything the lab started; nothing else."""
        if self.controller is not None:
            self.controller.stop()
        for host in self.nodes.values():
            host.close()
        self.nodes.clear()
        self.cleanup_leftovers()
        if self.top is not None:
            shutil.rmtree(self.top, ignore_errors=True)
            self.top = None

    def leftovers(self, top: Path) -> list[str]:
        """What of a lab that ran in *top* is still on the host (after :meth:`close`):
        its links, namespaces, portal and processes; empty when it left nothing."""
        names = {BRIDGE} | {"eumh-" + namespace[-2:] for _, namespace, _ in NODE_HOSTS}
        links = json.loads(run("ip", "-j", "link").stdout or "[]")
        found = [f"link {link['ifname']}" for link in links if link["ifname"] in names]
        namespaces = run("ip", "netns", "list").stdout.split()
        found += [f"netns {namespace}" for _, namespace, _ in NODE_HOSTS
                  if namespace in namespaces]
        portals = run("tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "portal",
                      check=False).stdout
        found += [f"portal {STORAGE_PORTAL}"] if STORAGE_PORTAL in portals else []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, UnicodeDecodeError):
                continue
            if str(top) in cmdline:
                found.append(f"process {entry.name}: {cmdline[:120]}")
        return found

    def cleanup_leftovers(self) -> None:
        """Remove the lab's namespaces, veths and bridge (a crashed run's too), and the
        portal when this lab added it or a crashed run left the bridge it was on."""
        if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
            self.portal_added = True
        for _, namespace, _ in NODE_HOSTS:
            remove_namespace(namespace)
            run("ip", "link", "delete", "eumh-" + namespace[-2:], check=False)
        run("ip", "link", "delete", BRIDGE, check=False)
        if self.portal_added:
            self._remove_portal()
            self.portal_added = False
