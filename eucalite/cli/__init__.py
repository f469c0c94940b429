"""The ``eucalite`` command. :mod:`.main` holds the top-level group and the host commands
(serve, credentials, account, db); each other module adds one command group; :mod:`.common`
holds what they share. The CLI sits above every role and calls their service objects."""
from .main import main

__all__ = ["main"]
