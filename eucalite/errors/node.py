"""Internal-API error codes (between the cluster controller and its nodes: see
:mod:`eucalite.cluster.internalapi`), one named class each. The internal API answers them
in its JSON error shape; codes every API shares are in :mod:`eucalite.errors`."""
from __future__ import annotations

from . import AwsError


class RequestReplayed(AwsError):
    """A signed request arrived a second time within its window."""

    code = "RequestReplayed"
    status = 403


class NodeAccessDenied(AwsError):
    """A node's key acting for another node."""

    code = "AccessDenied"
    status = 403


class InvalidJoinToken(AwsError):
    """The join token is unknown, used or expired (the node host must ask for a new one)."""

    code = "InvalidJoinToken"
    status = 403


class NodeAlreadyExists(AwsError):
    """A node of that name is already in the cloud."""

    code = "NodeAlreadyExists"
    status = 409


class CommandNotFound(AwsError):
    """A result for a command the controller is not waiting for (unknown, already answered,
    or its caller gave up)."""

    code = "CommandNotFound"
    status = 404


class CommandConflict(AwsError):
    """A result for a command that is not this node's, or that it has not taken."""

    code = "CommandConflict"
    status = 409


class NodeImageNotFound(AwsError):
    """The image a node asked for has no such bundle or part (the node may read it)."""

    code = "ImageNotFound"
    status = 404
