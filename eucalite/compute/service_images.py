"""ComputeService's image and key pair operations (a mixin composed into
:class:`eucalite.compute.service.ComputeService`).

Each method is the adapters' one way to an operation of :mod:`eucalite.compute.images`,
:mod:`eucalite.compute.imageimport`, :mod:`eucalite.compute.createimage` or
:mod:`eucalite.compute.keypairs`: a Principal and
plain values in, rows or plain values out, with the errors those modules raise.
"""
from __future__ import annotations

from typing import Iterable

from .. import tags
from ..accounts import Principal
from ..db import db
from ..errors import AwsError
from ..errors.ec2 import InvalidSnapshotInUse
from . import createimage, imageflags, imageimport, images, keypairs
from .images import PermissionChange
from .models import Image, KeyPair


class ImagesMixin:
    """Images: register, create from instances, copy, describe, deregister, and their
    attributes. Needs ``self.s3``, ``self.ebs`` and ``self.regions()``."""

    def register_image(self, principal: Principal,
                       request: imageimport.Registration) -> Image:
        """RegisterImage: from a bundle's manifest in Walrus, or from block device mappings."""
        return imageimport.register(principal, self.s3.store, request)

    def create_image(self, principal: Principal, request: createimage.ImageRequest) -> Image:
        """CreateImage: a pending EMI from the caller's EBS-backed instance, a snapshot of
        each of its volumes on the way (:mod:`eucalite.compute.createimage`)."""
        return createimage.create(principal, self.ebs, request)

    def copy_image(self, principal: Principal, request: createimage.CopyRequest) -> Image:
        """CopyImage within this region: the caller's copy of an image it may launch."""
        source_tags = tags.tags_for(principal.account_id, [request.source_image_id]).get(
            request.source_image_id, {}) if request.copy_tags else {}
        return createimage.copy(principal, self.regions()[0].name, request, source_tags)

    def images_last_launched(self, image_ids: Iterable[str]) -> dict:
        """When an instance was last launched from each image (lastLaunchedTime), by id;
        absent for an image nothing was launched from."""
        return images.last_launched(image_ids)

    def describe_images(self, principal: Principal, image_ids: Iterable[str] = (),
                        owners: Iterable[str] = (),
                        executable_by: Iterable[str] = ()) -> list[Image]:
        """The images *principal* may see, by id (:func:`eucalite.compute.images.describe`)."""
        return images.describe(principal, image_ids, owners, executable_by)

    def image(self, principal: Principal, image_id: str) -> Image:
        """One image *principal* may see, or InvalidAMIID.NotFound."""
        return images.visible(principal, image_id)

    def all_images(self, account_id: str | None = None) -> list[Image]:
        """Every registered image (only *account_id*'s, if given), oldest first: the host
        admin's listing, which no principal's visibility narrows."""
        query = db.select(Image).order_by(Image.created, Image.id)
        if account_id:
            query = query.where(Image.owner_id == account_id)
        return list(db.session.execute(query).scalars())

    def launch_permissions(self, image: Image) -> list[str]:
        """The account ids (besides its owner) that may launch *image*."""
        return images.launch_permissions(image)

    def image_attribute(self, principal: Principal, image_id: str, name: str) -> Image:
        """The image whose attribute *name* (checked) *principal* may read."""
        return images.attribute(principal, image_id, name)

    def modify_launch_permission(self, principal: Principal, image_id: str,
                                 change: PermissionChange) -> None:
        """Grant or revoke launch permission (owner only); an empty change only checks."""
        images.modify_launch_permission(principal, image_id, change)

    def modify_image(self, principal: Principal, image_id: str, name: str,
                     value: str | None) -> None:
        """Set the image's description, kernel or ramdisk (owner only)."""
        images.modify(principal, image_id, name, value)

    def set_imds_support(self, principal: Principal, image_id: str,
                         value: str | None) -> None:
        """ModifyImageAttribute ImdsSupport (owner only): ``v2.0``, for good."""
        imageflags.set_imds_support(images.owned(principal, image_id), value)

    def enable_deregistration_protection(self, principal: Principal, image_id: str,
                                         with_cooldown: bool = False) -> str:
        """EnableImageDeregistrationProtection (owner only); the new protection, as
        DescribeImages shows it."""
        return imageflags.enable_protection(images.owned(principal, image_id), with_cooldown)

    def disable_deregistration_protection(self, principal: Principal, image_id: str) -> str:
        """DisableImageDeregistrationProtection (owner only); the protection left (a
        cooldown keeps it for a day), as DescribeImages shows it."""
        return imageflags.disable_protection(images.owned(principal, image_id))

    def deregistration_protection(self, image: Image) -> str:
        """*image*'s deregistrationProtection as EC2 renders it."""
        return imageflags.protection(image)

    def reset_image_attribute(self, principal: Principal, image_id: str, name: str) -> None:
        """ResetImageAttribute (owner only)."""
        images.reset(principal, image_id, name)

    def deregister_image(self, principal: Principal, image_id: str,
                         delete_snapshots: bool = False) -> list[tuple[str, str]]:
        """DeregisterImage (owner only): the row and its tags go; the bundle stays. With
        *delete_snapshots* (DeleteAssociatedSnapshots) the snapshots its mapping names are
        deleted too: (snapshot id, AWS's return code) for each."""
        snapshot_ids = images.snapshot_ids(images.owned(principal, image_id))
        images.deregister(principal, image_id)
        if not delete_snapshots:
            return []
        return [(snapshot_id, self._delete_image_snapshot(principal, snapshot_id))
                for snapshot_id in snapshot_ids]

    def _delete_image_snapshot(self, principal: Principal, snapshot_id: str) -> str:
        """DeleteSnapshot for a deregistered image: ``success``, ``missing-permissions``
        (not the caller's), ``skipped`` (another image still maps it) or ``client-error``."""
        snapshot = self.ebs.find_snapshot(snapshot_id)
        if snapshot is None or snapshot.owner_id != principal.account_id:
            return "missing-permissions"
        try:
            self.ebs.delete_snapshot(principal, snapshot_id)
        except InvalidSnapshotInUse:
            return "skipped"
        except AwsError:
            return "client-error"
        return "success"


class KeyPairsMixin:
    """An account's key pairs."""

    def create_key_pair(self, principal: Principal, name: str, key_type: str = "rsa",
                        key_format: str = "pem", tag_map: dict[str, str] | None = None
                        ) -> tuple[KeyPair, str]:
        """A new key pair and its private key material (returned this once, never stored)."""
        return keypairs.create(principal, name, key_type=key_type, key_format=key_format,
                               tag_map=tag_map)

    def import_key_pair(self, principal: Principal, name: str, material: bytes,
                        tag_map: dict[str, str] | None = None) -> KeyPair:
        """Store a public key given as OpenSSH or PEM text."""
        return keypairs.import_key(principal, name, material, tag_map=tag_map)

    def delete_key_pair(self, principal: Principal, name: str | None = None,
                        key_pair_id: str | None = None) -> str | None:
        """Delete by name or id (a missing one is no error); the deleted key pair's id."""
        return keypairs.delete(principal, name=name, key_pair_id=key_pair_id)

    def describe_key_pairs(self, principal: Principal, names: list[str] = (),
                           key_pair_ids: list[str] = ()) -> list[KeyPair]:
        """The caller's account's key pairs, optionally only those named or with those ids."""
        return keypairs.describe(principal.account_id, names, key_pair_ids)
