"""The instance metadata listener guests share runs on the same front end as the APIs: an
idle or trickling guest is cut off instead of holding a thread for ever."""
from __future__ import annotations

import socket
import urllib.error
import urllib.request

from liveutil import free_port
from serverutil import read_all

from eucalite.compute import metadata


def test_the_metadata_listener_cuts_off_idle_and_trickling_guests(cloud):
    port = free_port()
    server = metadata.serve(cloud.app, "127.0.0.1", port)
    try:
        idle = socket.create_connection(("127.0.0.1", port), timeout=30)
        slow = socket.create_connection(("127.0.0.1", port), timeout=30)
        slow.sendall(b"GET /latest/meta-data/ HTTP/1.1\r\nX-Never-Ends: ")
        with idle, slow:
            assert read_all(idle) == b""
            answer = read_all(slow)
        assert answer.startswith(b"HTTP/1.1 400 ") and b"RequestTimeout" in answer
        try:                                     # a guest asking properly gets its answer
            status = urllib.request.urlopen(f"http://127.0.0.1:{port}/latest/meta-data/",
                                            timeout=10).status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status < 500
    finally:
        server.shutdown()
