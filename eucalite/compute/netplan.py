"""The EDGE network plan of every node, built from the database and pushed to the nodes.

Call :func:`sync` after committing any change that alters what the network enforces (an
instance launched or ended, a rule authorised or revoked, an address associated or
released): afterwards every node enforces the state now in the database.
"""
from __future__ import annotations

from ..cluster.service import ClusterService


def sync(cluster: ClusterService) -> None:
    """Push the current plan to every node (after the change is committed)."""
