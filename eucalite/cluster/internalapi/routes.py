"""The internal API with every route on it: importing this module registers each route
module's routes on :data:`blueprint` (they import the package for its helpers, so the
package cannot import them back). The app registers ``routes.blueprint``."""
from __future__ import annotations

from . import blueprint, commands, images, network, nodes  # noqa: F401

__all__ = ["blueprint"]
