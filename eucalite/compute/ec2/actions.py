"""The registry of EC2 Query actions.

Each resource family's module (images, instances, volumes...) registers its handlers here
with ``@registry.action(...)``; the package (:mod:`eucalite.compute.ec2`) imports those
modules and serves the registry. Keeping the registry in its own module means the handler
modules never import the package that imports them.
"""
from __future__ import annotations

from ...query import ActionRegistry


class Ec2Registry(ActionRegistry):
    """Every EC2 action also accepts ``DryRun``."""

    def action(self, name, params=()):
        return super().action(name, tuple(params) + ("DryRun",))


registry = Ec2Registry("ec2")
