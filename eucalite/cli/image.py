"""``eucalite image``: import kernel/ramdisk/root image files as registered images; list them.

``import`` bundles, uploads and registers the files through the cloud controller
(:meth:`eucalite.compute.service.ComputeService.import_images`), the same operation the
console's image upload runs, with a progress bar per upload. :mod:`eucalite.cli.main` adds
:data:`image_group` to the ``eucalite`` command.
"""
from __future__ import annotations

import sys

import click

from ..accounts import get_account, get_user, principal_of
from ..api import services
from ..compute.imageimport import DEFAULT_BUCKET, ImageFiles
from .common import app as make_app, data_dir_option, fail_on_aws_error, in_app

image_group = click.Group("image", help="Bundle, upload and register images (EMI/EKI/ERI); "
                                        "list registered images.")


def _progress(label: str, total: int):
    return click.progressbar(length=total, label=label, file=sys.stderr)


def import_files(app, files: ImageFiles, *, name: str | None = None, arch: str = "x86_64",
                 bucket: str = DEFAULT_BUCKET, account: str = "eucalyptus",
                 user: str = "admin") -> dict[str, str]:
    """Import *files* as *account*'s *user* in *app*; prints and returns ``{kind: id}``."""
    with app.app_context():
        registered = app.extensions["eucalite"].compute.import_images(
            principal_of(get_user(account, user)), files, name=name, arch=arch,
            bucket=bucket, progress=_progress)
    for kind, image_id in registered.items():
        click.echo(f"{kind}\t{image_id}")
    return registered


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
@data_dir_option
def import_images(kernel, ramdisk, root, name, arch, bucket, account, user, data_dir):
    """Bundle, upload and register KERNEL, RAMDISK (and ROOT), or a bootable ROOT disk
    alone; print the new image ids."""
    if not root and not (kernel and ramdisk):
        raise click.UsageError("give --kernel and --ramdisk (and optionally --root), or "
                               "--root alone for a bootable disk image")
    fail_on_aws_error(import_files)(make_app(data_dir), ImageFiles(kernel, ramdisk, root),
                                    name=name, arch=arch, bucket=bucket, account=account,
                                    user=user)


@image_group.command("list")
@click.option("--account", help="Only images this account owns (default: every image).")
@in_app
def list_images(account):
    """List registered images: id, type, state, owner, visibility, name, location."""
    owner_id = get_account(account).id if account else None
    for image in services().compute.all_images(owner_id):
        visibility = "public" if image.is_public else "private"
        click.echo("\t".join([image.id, image.kind, image.state, image.owner_id,
                              visibility, image.name, image.location or "-"]))
