"""A wheel install carries everything the server needs at run time."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_migrations_templates_and_static(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    wheel = next(tmp_path.glob("eucalite-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "eucalite/migrations/env.py" in names
    assert any(name.startswith("eucalite/migrations/versions/0001_") for name in names)
    assert any(name.startswith("eucalite/templates/") for name in names)
    assert any(name.startswith("eucalite/static/") for name in names)
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "eucalite = eucalite.cli:main" in text
