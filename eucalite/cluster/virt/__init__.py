"""Hypervisor drivers: the contract (driver.py), pure domain-XML builders (domain_xml.py), an
in-memory fake (fake.py) and libvirt (libvirt_driver.py, handing the network half to
libvirt_network.py, both over libvirt_conn.py's connection; libvirt-python is imported only
when a LibvirtDriver is made)."""
from .driver import (CONSOLE_TAIL, DOMAIN_PREFIX, DiskSpec, DomainSpec, DriverError,
                     HostCapacity, HypervisorDriver, NotSupported, PowerState)
from .fake import FakeDriver
from .libvirt_driver import LibvirtDriver

__all__ = ["CONSOLE_TAIL", "DOMAIN_PREFIX", "DiskSpec", "DomainSpec", "DriverError",
           "FakeDriver", "HostCapacity", "HypervisorDriver", "LibvirtDriver", "NotSupported",
           "PowerState"]
