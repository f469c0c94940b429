"""The internal API's routes for image data for the node's image cache."""
from __future__ import annotations
