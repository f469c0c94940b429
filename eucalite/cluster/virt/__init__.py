"""Hypervisor drivers: the contract (driver.py), an in-memory fake and libvirt."""
