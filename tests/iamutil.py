"""Helpers the IAM, STS, enforcement and quota tests share: walking a Marker/MaxItems
listing, a new account signing as its root, and the aws CLI's ``iam`` commands."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

from eucalite import accounts


def all_pages(call, member, **kwargs) -> tuple[list, int]:
    """Every item of a Marker/MaxItems listing, and how many pages it took (a last page
    carries no Marker)."""
    items, pages, marker = [], 0, None
    while True:
        answer = call(**kwargs, **({"Marker": marker} if marker else {}))
        items += answer[member]
        pages += 1
        if not answer["IsTruncated"]:
            assert "Marker" not in answer
            return items, pages
        marker = answer["Marker"]


def account_root(live, name: str) -> Callable[[str], object]:
    """A new account and a client factory (``factory("ec2")``) signing as its root."""
    with live.app.app_context():
        accounts.create_account(name)
        key = accounts.create_access_key(name, "admin")
        key_id, secret = key.id, key.secret
    return lambda service: live.client(service, key_id=key_id, secret=secret)


def iam_cli(live) -> Callable[..., dict]:
    """``cli("create-user", "--user-name", "u")``: the aws CLI's iam command against *live*
    (it must succeed), its JSON answer as a dict ({} when it prints nothing)."""
    aws = str(Path(sys.executable).parent / "aws")

    def cli(*args) -> dict:
        done = subprocess.run([aws, "iam", *args, "--output", "json"], env=live.env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}
    return cli
