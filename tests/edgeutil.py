"""A lab network for the EDGE tests and benchmark: a client in a network namespace, joined
to the host by a veth pair, standing where a lab's machines stand on a real cloud.

Host side ``eulab0`` has 198.51.100.1/24 (TEST-NET-2: traffic never leaves the host); the
namespace ``eulab`` has 198.51.100.2/24 on ``eulab1`` and no other route, so it reaches
instances only through the public addresses the cloud puts on ``eulab0`` (its pool is
198.51.100.10-198.51.100.20). :class:`Lab` makes it, serves and dials from inside it
(sockets are created in the namespace by a short-lived thread that enters it, then used
from any thread) and removes it, including what a crashed run left. Needs root.
"""
from __future__ import annotations

import ctypes
import http.server
import itertools
import json
import os
import socket
import struct
import subprocess
import threading
from dataclasses import dataclass

from liveutil import serve_in_background

NAMESPACE = "eulab"
HOST_IF, CLIENT_IF = "eulab0", "eulab1"
HOST_IP, CLIENT_IP, PREFIX = "198.51.100.1", "198.51.100.2", 24
CIDR = "198.51.100.0/24"
POOL = ("198.51.100.10", "198.51.100.20")
PUBLIC_IPS = [f"{POOL[0]}-{POOL[1]}"]
CLONE_NEWNET = 0x40000000
_echo_ids = itertools.cycle(range(1, 0x10000))


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``ip ARGS`` (output captured); with *check*, fail showing its stderr."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def in_namespace(function, namespace: str = NAMESPACE):
    """Call *function* in a thread that has entered *namespace*'s network namespace and
    return its result (or raise its exception). Sockets it creates stay in the namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    outcome: dict = {}

    def run() -> None:
        try:
            with open(f"/run/netns/{namespace}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {namespace}")
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@dataclass(frozen=True)
class Hit:
    """One request a lab listener answered: who sent it (the source address it saw) and
    the path asked for."""

    source: str
    path: str


class Listener:
    """An HTTP server in the lab namespace on CLIENT_IP:*port*: answers every GET with
    ``lab`` and records each request as a :class:`Hit`."""

    def __init__(self, port: int):
        self.port = port
        self.hits: list[Hit] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                hits.append(Hit(self.client_address[0], self.path))
                body = b"lab\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = in_namespace(
            lambda: http.server.ThreadingHTTPServer((CLIENT_IP, port), Handler))
        serve_in_background(self.server)

    def sources(self, path: str) -> list[str]:
        """The source addresses of the requests for *path*, in order."""
        return [hit.source for hit in list(self.hits) if hit.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Lab:
    """The lab client's namespace and veth pair (see the module docstring). Use as a
    context manager, or call :meth:`close` (it runs even after a partial start)."""

    def __init__(self):
        self.listeners: list[Listener] = []

    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self.close()                        # what a crashed run left behind
        ip("netns", "add", NAMESPACE)
        ip("link", "add", HOST_IF, "type", "veth", "peer", "name", CLIENT_IF,
           "netns", NAMESPACE)
        ip("address", "add", f"{HOST_IP}/{PREFIX}", "dev", HOST_IF)
        ip("link", "set", HOST_IF, "up")
        ip("-n", NAMESPACE, "address", "add", f"{CLIENT_IP}/{PREFIX}", "dev", CLIENT_IF)
        ip("-n", NAMESPACE, "link", "set", CLIENT_IF, "up")
        ip("-n", NAMESPACE, "link", "set", "lo", "up")

    def close(self) -> None:
        """Stop the listeners and remove the namespace and the veth pair; nothing else."""
        for listener in self.listeners:
            listener.close()
        self.listeners.clear()
        ip("netns", "delete", NAMESPACE, check=False)     # takes eulab1, hence eulab0
        ip("link", "delete", HOST_IF, check=False)

    def listen(self, port: int) -> Listener:
        """An HTTP listener in the namespace (see :class:`Listener`), closed with the lab."""
        listener = Listener(port)
        self.listeners.append(listener)
        return listener

    def get(self, address: str, port: int = 80, path: str = "/",
            timeout: float = 2.0) -> str | None:
        """The body of ``GET path`` from *address*:*port*, asked from the lab client; None
        when no connection is made within *timeout* s or it is refused or reset."""
        try:
            sock = in_namespace(socket.socket)
            with sock:
                sock.settimeout(timeout)
                sock.connect((address, port))
                sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return None
        head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
        return body if head.startswith("HTTP/1.") else None

    def ping(self, address: str, timeout: float = 1.0) -> bool:
        """Whether *address* answers one ICMP echo from the lab client within *timeout* s.
        Each call is a new flow (its own echo id, as each run of ``ping`` is), so no
        connection-tracking entry of an earlier call decides where it goes."""
        ident = next(_echo_ids)
        header = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"eucalite"
        packet = header[:2] + struct.pack("!H", _checksum(header)) + header[4:]
        sock = in_namespace(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW,
                                                  socket.IPPROTO_ICMP))
        with sock:
            sock.settimeout(timeout)
            sock.sendto(packet, (address, 0))
            try:
                while True:
                    data, (source, _) = sock.recvfrom(2048)
                    icmp = data[(data[0] & 0x0F) * 4:]
                    if source == address and icmp[0] == 0 and \
                            struct.unpack("!H", icmp[4:6])[0] == ident:
                        return True
            except OSError:
                return False


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def host_addresses(interface: str = HOST_IF) -> list[str]:
    """The IPv4 addresses (with prefix) on *interface* of the host."""
    shown = json.loads(ip("-j", "-4", "address", "show", "dev", interface).stdout or "[]")
    return [f"{a['local']}/{a['prefixlen']}" for link in shown for a in link.get("addr_info", [])]


def nft_tables() -> dict[tuple[str, str], list]:
    """The host's whole nftables ruleset as {(family, table): [its objects]}, each object
    normalised (handles and counter values removed: they change without a rule changing)."""
    listed = json.loads(subprocess.run(["nft", "-j", "list", "ruleset"], capture_output=True,
                                       text=True, check=True).stdout)
    tables: dict[tuple[str, str], list] = {}
    for item in listed.get("nftables", []):
        kind, body = next(iter(item.items()))
        if kind == "metainfo":
            continue
        key = (body["family"], body["name"] if kind == "table" else body["table"])
        tables.setdefault(key, []).append({kind: _normalised(body)})
    return tables


def _normalised(value):
    if isinstance(value, dict):
        return {key: (None if key == "counter" else _normalised(item))
                for key, item in value.items() if key != "handle"}
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    return value


def sysctl(name: str) -> str | None:
    """A sysctl's value (``net.ipv4.ip_forward`` style), None when it does not exist."""
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as handle:
            return handle.read().strip()
    except OSError:
        return None


def is_root() -> bool:
    return os.geteuid() == 0
