"""What the libvirt driver and its network half share: the connection to libvirt, the
mapping of libvirt's errors onto the driver contract's, and which kind of domain the host
can run (kvm, qemu's TCG, or libvirt's in-process test driver).

libvirt-python is imported only when a :class:`LibvirtConnection` is made (it is an
optional package: without it eucalite runs everything but node duty).
"""
from __future__ import annotations

import os
import threading
import urllib.parse
import xml.etree.ElementTree as ET

from .driver import DriverError, NotSupported

INSTALL_HINT = ("install libvirt-python (apt install libvirt-dev pkg-config; "
                "pip install libvirt-python)")


def import_libvirt():
    """libvirt-python, imported on first use; DriverError with an install hint if missing."""
    try:
        import libvirt     # deferred: an optional package, needed only for node duty
    except ImportError as exc:
        raise DriverError(f"the libvirt driver needs libvirt-python: {INSTALL_HINT}") from exc
    # libvirt prints every error to stderr by default; we raise them as DriverError instead
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def is_remote(uri: str) -> bool:
    """Whether *uri* names a libvirt on another host (qemu+ssh://node/system)."""
    host = urllib.parse.urlsplit(uri).hostname
    return host not in (None, "", "localhost", "127.0.0.1")


# -- which domain type the host runs ------------------------------------------------------

def kvm_usable(dev: str = "/dev/kvm", sys_module: str = "/sys/module") -> bool:
    """Whether KVM can run an ordinary guest here.

    /dev/kvm must be readable and writable, and the host must not offer only PVM (kvm_pvm
    without kvm_intel/kvm_amd needs a special guest kernel: ordinary guests must use TCG).
    """
    if not os.access(dev, os.R_OK | os.W_OK):
        return False
    has = lambda mod: os.path.isdir(os.path.join(sys_module, mod))  # noqa: E731
    if has("kvm_pvm") and not (has("kvm_intel") or has("kvm_amd")):
        return False
    return True


def caps_offer_kvm(capabilities_xml: str, arch: str) -> bool:
    """Whether libvirt's host capabilities offer a kvm domain for *arch*."""
    root = ET.fromstring(capabilities_xml)
    for guest in root.findall("guest"):
        a = guest.find("arch")
        if a is not None and a.get("name") == arch and a.find("domain[@type='kvm']") is not None:
            return True
    return False


def default_domain_type(uri: str, capabilities_xml: str | None = None,
                        arch: str = "x86_64") -> str:
    """libvirt domain type for *uri*: test for test:///, kvm when usable, else qemu (TCG).

    For a remote qemu URI the local /dev/kvm says nothing: the remote host's capabilities
    (``capabilities_xml``) decide, and without them we pick TCG, which always works.
    """
    scheme = uri.split(":", 1)[0].split("+", 1)[0]
    if scheme == "test":
        return "test"
    if scheme != "qemu":
        return "qemu"
    if is_remote(uri):
        return "kvm" if capabilities_xml and caps_offer_kvm(capabilities_xml, arch) else "qemu"
    return "kvm" if kvm_usable() else "qemu"


# -- the connection ------------------------------------------------------------------------

class LibvirtConnection:
    """One libvirt connection to *uri*, reopened when it drops; ``lv`` is the libvirt
    module. DriverError when libvirt-python is missing."""

    def __init__(self, uri: str):
        self.lv = import_libvirt()
        self.uri = uri
        self._conn = None
        self._lock = threading.Lock()

    def get(self):
        """The open virConnect, (re)opened when there is none or it dropped."""
        with self._lock:
            conn = self._conn
            if conn is not None:
                try:
                    if conn.isAlive():
                        return conn
                except self.lv.libvirtError:
                    pass
                try:
                    conn.close()
                except self.lv.libvirtError:
                    pass
            try:
                self._conn = self.lv.open(self.uri)
            except self.lv.libvirtError as exc:
                self._conn = None
                raise DriverError(f"cannot connect to libvirt at {self.uri}: {exc}") from exc
            return self._conn

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except self.lv.libvirtError:
                pass

    @staticmethod
    def code(exc) -> int:
        """The libvirt error code of *exc* (a libvirtError)."""
        return exc.get_error_code()

    def error(self, what: str, exc) -> DriverError:
        """A DriverError (NotSupported for unsupported calls) saying what failed and why."""
        cls = NotSupported if self.code(exc) == self.lv.VIR_ERR_NO_SUPPORT else DriverError
        return cls(f"{what}: {exc}")
