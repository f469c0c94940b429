"""Cluster controller and node controller: zones and nodes (service.py, nodes.py, the
scheduler), the node boundary (node.py: the Node protocol and its plain records;
localnode.py: this host as a node), the instance network, the image cache, and the
hypervisor drivers (virt/)."""
