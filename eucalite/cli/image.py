"""``eucalite image``: import kernel/ramdisk/root image files as registered images; list them.

``import`` does in-process what euca-bundle-image + euca-upload-bundle + euca-register do
against a cloud: bundle each file (unencrypted: the data never leaves this host), upload the
manifest and parts to a bucket through the object store, and register an EKI, an ERI and
(with ``--root``) an EMI booting that kernel and ramdisk. :mod:`eucalite.cli.main` adds
:data:`image_group` to the ``eucalite`` command.
"""
from __future__ import annotations

import os
import sys

import click

from .common import app as _app, fail_on_aws_error as _fail_on_aws_error

DATA_DIR_HELP = "Data directory (default as for `eucalite serve`)."
DEFAULT_BUCKET = "eucalite-images"

image_group = click.Group("image", help="Bundle, upload and register images (EMI/EKI/ERI); "
                                        "list registered images.")


def _upload_bundle(store, principal, path: str, bucket: str, prefix: str, kind: str,
                   arch: str) -> str:
    """Bundle *path*, upload it under ``bucket/prefix/`` with a progress bar; returns the
    manifest's ImageLocation."""
    from ..s3 import objects
    from ..s3.store import HashingReader
    from ..compute import bundle

    base = os.path.basename(path)
    manifest_xml, parts = bundle.make_bundle(path, base, kind, arch)
    total = bundle.parse_manifest(manifest_xml).bundled_size or 0
    with click.progressbar(length=total, label=f"uploading {base} ({kind})",
                           file=sys.stderr) as bar:
        for filename, data in parts:
            objects.put(store, principal, bucket, f"{prefix}/{filename}",
                        HashingReader(iter([data])),
                        objects.Attributes(content_type="application/octet-stream"))
            bar.update(len(data))
    key = f"{prefix}/{base}.manifest.xml"
    objects.put(store, principal, bucket, key, HashingReader(iter([manifest_xml])),
                objects.Attributes(content_type="application/xml"))
    return f"{bucket}/{key}"


@image_group.command("import")
@click.option("--kernel", type=click.Path(exists=True, dir_okay=False),
              help="Kernel file (vmlinuz), registered as an EKI.")
@click.option("--ramdisk", type=click.Path(exists=True, dir_okay=False),
              help="Initial ramdisk file (initrd), registered as an ERI.")
@click.option("--root", type=click.Path(exists=True, dir_okay=False),
              help="Root filesystem/disk image (raw or qcow2), registered as an EMI using "
                   "that kernel and ramdisk; without them, a bootable disk (an HVM image, "
                   "e.g. a distribution's cloud image).")
@click.option("--name", help="Image name (default: the root file's name); the kernel and "
                             "ramdisk get NAME-kernel and NAME-ramdisk.")
@click.option("--arch", type=click.Choice(["x86_64", "i386"]), default="x86_64",
              show_default=True)
@click.option("--bucket", default=DEFAULT_BUCKET, show_default=True,
              help="Bucket for the bundles, created if missing.")
@click.option("--account", default="eucalyptus", show_default=True,
              help="Account that will own the images.")
@click.option("--user", default="admin", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def import_images(kernel, ramdisk, root, name, arch, bucket, account, user, data_dir):
    """Bundle, upload and register KERNEL, RAMDISK (and ROOT), or a bootable ROOT disk
    alone; print the new image ids."""

    if not root and not (kernel and ramdisk):
        raise click.UsageError("give --kernel and --ramdisk (and optionally --root), or "
                               "--root alone for a bootable disk image")

    _fail_on_aws_error(_import)(kernel, ramdisk, root, name, arch, bucket, account, user,
                                _app(data_dir))


def _import(kernel, ramdisk, root, name, arch, bucket, account, user, app) -> list[str]:
    """Bundle, upload and register; prints and returns the ids [eki, eri(, emi)]."""
    from ..compute import images

    from ..datadir import store_writer

    name = name or os.path.basename(root or kernel)
    store = app.extensions["eucalite"].s3.store
    # a writer beside the server: its recovery must not remove this upload's files
    with store_writer(app.config["EUCALITE"]["data_dir"]), app.app_context():
        from ..accounts import get_user, principal_of
        from ..s3 import buckets

        principal = principal_of(get_user(account, user))
        buckets.ensure(principal, bucket)
        registered = []
        plan = [(kind, path, image_name) for kind, path, image_name in (
            ("kernel", kernel, f"{name}-kernel"), ("ramdisk", ramdisk, f"{name}-ramdisk"),
            ("machine", root, name)) if path]
        parts: dict[str, str] = {}
        for kind, path, image_name in plan:
            location = _upload_bundle(store, principal, path, bucket, image_name, kind, arch)
            request = images.Registration(name=image_name, location=location,
                                          architecture=arch)
            if kind == "machine":
                request.kernel_id, request.ramdisk_id = parts.get("kernel"), parts.get("ramdisk")
            parts[kind] = images.register(principal, store, request).id
            registered.append(parts[kind])
    for kind, image_id in parts.items():
        click.echo(f"{kind}\t{image_id}")
    return registered


@image_group.command("list")
@click.option("--account", help="Only images this account owns (default: every image).")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def list_images(account, data_dir):
    """List registered images: id, type, state, owner, visibility, name, location."""

    _fail_on_aws_error(_list)(account, _app(data_dir))


def _list(account, app) -> None:
    from ..accounts import get_account
    from ..db import db
    from ..compute.models import Image

    with app.app_context():
        query = db.select(Image).order_by(Image.created, Image.id)
        if account:
            query = query.where(Image.owner_id == get_account(account).id)
        for image in db.session.execute(query).scalars():
            visibility = "public" if image.is_public else "private"
            click.echo("\t".join([image.id, image.kind, image.state, image.owner_id,
                                  visibility, image.name, image.location or "-"]))
