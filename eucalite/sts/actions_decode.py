"""STS DecodeAuthorizationMessage: the JSON behind the encoded message EC2 gives with an
UnauthorizedOperation (:func:`eucalite.access.decode_authorization_message`), for callers
whose policies allow ``sts:DecodeAuthorizationMessage``."""
from __future__ import annotations

from ..iam import common
from .actions import registry


@registry.action("DecodeAuthorizationMessage", params=("EncodedMessage",))
def decode_authorization_message(call):
    text = common.required(call.params, "EncodedMessage")
    return {"DecodedMessage": call.services.sts.decode_authorization_message(call.principal,
                                                                               text)}
