"""Alarm actions on EC2 instances: ``arn:aws:automate:<region>:ec2:stop|terminate|reboot``
(and the older ``arn:aws:swf:...:action/actions/AWS_EC2.InstanceId.<Verb>/1.0``) act on the
instance named by the alarm's ``InstanceId`` dimension, in the alarm's account, through the
cloud controller's service as that account's root would (AWS acts through a service-linked
role of the account). ``recover`` moves an instance to other hardware, which needs live
migration eucalite does not have: it fails, and the alarm's history says why.
"""
from __future__ import annotations

from ..accounts import root_principal
from ..db import db
from .alarms import EC2_ACTION, SWF_ACTION
from .evaluation import Actions, Transition


def _verb(action: str) -> str:
    match = EC2_ACTION.fullmatch(action)
    if match is not None:
        return match.group(2)
    return SWF_ACTION.fullmatch(action).group(3).lower()


def register(actions: Actions, compute) -> None:
    """Make *actions* carry out EC2 actions through *compute* (the ComputeService)."""

    def run(account_id: str, action: str, transition: Transition) -> None:
        instance_id = transition.dimensions.get("InstanceId")
        if not instance_id:
            raise RuntimeError("the alarm's metric has no InstanceId dimension")
        verb = _verb(action)
        principal = root_principal(account_id)
        if verb == "stop":
            compute.stop_or_start(principal, [instance_id], "stop")
        elif verb == "terminate":
            compute.terminate(principal, [instance_id])
        elif verb == "reboot":
            compute.reboot(principal, [instance_id])
        else:
            raise RuntimeError("eucalite cannot recover an instance onto other hardware "
                               "(no live migration)")
        db.session.commit()

    actions.register("arn:aws:automate:", run)
    actions.register("arn:aws:swf:", run)
