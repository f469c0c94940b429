"""File-system steps that make a write durable, shared by every role that keeps files."""
from __future__ import annotations

import os


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush *directory*'s entries, so a file just created or renamed in it survives a
    crash (fsync on the file alone does not persist its name)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
