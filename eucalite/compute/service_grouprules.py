"""ComputeService's security-group rule methods (a mixin; the rules live in
:mod:`eucalite.compute.secrules`)."""
from __future__ import annotations


class SecurityGroupRulesMixin:
    """Authorising, revoking and describing security-group rules."""
