"""The console's join token: the admin makes one from the Nodes page, sees it once with
the command that joins a node host, and it joins a node exactly once; other users are
refused."""
from __future__ import annotations

import html
import re

from consoleutil import Console, console_app

from eucalite import accounts
from eucalite.cluster import joining
from eucalite.web.session import set_password


def test_admin_makes_a_join_token_that_joins_one_node(tmp_path):
    app = console_app(tmp_path, zones=["lab-1a", "lab-1b"])
    try:
        admin = Console(app)
        assert 'href="/console/nodes/token"' in admin.text("/console/nodes")
        form = admin.text("/console/nodes/token")
        assert '<option value="lab-1b">' in form
        page = admin.page("/console/nodes/token", {"zone": "lab-1b", "expires": "30m"},
                          follow=False)
        token = re.search(r"<code data-token>([^<]+)</code>", page).group(1)
        command = html.unescape(re.search(r"<pre data-command>([^<]+)</pre>", page).group(1))
        assert command.startswith("eucalite join http") and command.endswith(" " + token)
        assert "Zone lab-1b" in page
        assert "data-url-hint" in page and "public_url" in page    # served on loopback
        # shown once: the form page does not show it again
        assert token not in admin.text("/console/nodes/token")
        with app.app_context():
            joined = joining.exchange(token, "node-from-console")
            assert joined.zone == "lab-1b"

        bad = admin.page("/console/nodes/token", {"zone": "lab-1b", "expires": "9d"},
                         status=400, follow=False)
        assert "Invalid token lifetime" in html.unescape(bad)
        assert "data-token" not in bad

        with app.app_context():
            accounts.create_account("other")
            set_password("other", "admin", "password123")
        other = Console(app, account="other")
        assert other.get("/console/nodes/token").status_code == 403
        assert other.post("/console/nodes/token", {"zone": "lab-1a", "expires": "1h"},
                          follow=False).status_code == 403
    finally:
        app.extensions["eucalite"].compute.worker.shutdown()
