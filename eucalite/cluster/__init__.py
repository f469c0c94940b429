"""Cluster controller and node controller: nodes, scheduling, the instance network, VMs."""
