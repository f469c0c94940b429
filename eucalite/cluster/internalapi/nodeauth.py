"""Who may call the internal API: SigV4 (service ``eucalite-node``) with a node's own key,
never a user's, and never the same signed request twice.

The signature is checked by :func:`eucalite.auth.authenticate` (one V4 verifier for every
API) with the node-key table as its only key lookup (:func:`..joining.credential_for`), so a
user's access key is unknown here, as a node key is unknown to every user API. The request
date must be within :data:`REPLAY_WINDOW` of now, and :class:`ReplayCache` remembers every
signature accepted within that window: a captured request replayed inside the window is
refused, one replayed after it fails the date check.
"""
from __future__ import annotations

import datetime as dt
import heapq
import threading

from ...auth import RequestView, authenticate
from ...errors import AuthError, AwsError
from ...errors.node import NodeAccessDenied, RequestReplayed
from ...requesttime import amz_date
from .. import joining
from ..joining import NodeIdentity
from ..nodeclient import SERVICE

#: Seconds a request's X-Amz-Date may differ from the controller's clock.
REPLAY_WINDOW = 300
#: Signatures remembered at most: 100 nodes heartbeating every 10 s fill 6,000 in a window.
REPLAY_CAPACITY = 65536


class ReplayCache:
    """Signatures seen within their request's window, in bounded memory.

    Each is kept until its request date plus the window (later the date check refuses the
    request anyway). When *capacity* live signatures are held, new requests are refused
    (503) rather than an old signature forgotten early, which would let it be replayed.
    """

    def __init__(self, window: int = REPLAY_WINDOW, capacity: int = REPLAY_CAPACITY):
        self.window = dt.timedelta(seconds=window)
        self.capacity = capacity
        self._seen: set[str] = set()
        self._expiry: list[tuple[dt.datetime, str]] = []      # a heap, soonest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, signature: str, when: dt.datetime, now: dt.datetime) -> None:
        """Record *signature* of a request dated *when*; RequestReplayed if it was seen."""
        with self._lock:
            while self._expiry and self._expiry[0][0] < now:
                self._seen.discard(heapq.heappop(self._expiry)[1])
            if signature in self._seen:
                raise RequestReplayed("This signed request was already received; sign each "
                                      "request anew.")
            if len(self._seen) >= self.capacity:
                raise AwsError("Too many signed requests within the replay window; retry.",
                               code="SlowDown", status=503)
            self._seen.add(signature)
            heapq.heappush(self._expiry, (when + self.window, signature))


def authenticate_node(environ, body: bytes, replay: ReplayCache,
                      now: dt.datetime | None = None) -> NodeIdentity:
    """The node that signed this request (raises AuthError, RequestReplayed)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        result = authenticate(RequestView.from_environ(environ), SERVICE, body=body,
                              lookup=joining.credential_for, now=now,
                              max_skew=REPLAY_WINDOW)
    except AuthError as error:
        raise error.for_service(SERVICE)
    if result.scheme != "v4-header":
        raise AuthError("incomplete", "The internal API takes SigV4 Authorization headers "
                        "only.").for_service(SERVICE)
    replay.remember(result.seed_signature, amz_date(result.amz_date), now)
    return result.principal


def require_node(identity: NodeIdentity, node_id: str) -> None:
    """A node key acts for its own node only."""
    if identity.node_id != node_id:
        raise NodeAccessDenied(f"Node {identity.node_id} may not act for node {node_id}.")
