"""EDGE networking on a node: security groups, public IPs and outbound NAT in the kernel.

The cloud controller decides *what* the network must enforce and hands each node a
:class:`~.plan.NetworkPlan` (plain values); the node makes its data plane enforce exactly
that plan (:mod:`.plan` holds the records; the nftables renderer and applier live beside it).
"""
