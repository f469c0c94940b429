"""ComputeService's security-group methods (a mixin; the rules live in
:mod:`eucalite.compute.secgroups`)."""
from __future__ import annotations


class SecurityGroupsMixin:
    """Security groups and their rules, for the EC2 adapter and the console."""
