"""The internal API's routes for what a node's instance network needs from the controller (peers, metadata)."""
from __future__ import annotations
