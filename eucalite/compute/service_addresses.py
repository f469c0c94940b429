"""ComputeService's public-address methods (a mixin; the rules live in
:mod:`eucalite.compute.addresses`)."""
from __future__ import annotations


class AddressesMixin:
    """Elastic and launch-time public IPs, for the EC2 adapter and the console."""
