"""The internal API's routes for the command channel: a node long-polls for the commands its RemoteNode queued
and posts their results."""
from __future__ import annotations
