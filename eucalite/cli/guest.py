"""``eucalite guest build``: build the tiny test guest (kernel, initramfs, root disk) offline
and optionally register it as images, so a new user has something to run at once.

The group is registered on the main command by :mod:`eucalite.cli.main`.
"""
from __future__ import annotations

from pathlib import Path

import click

from .. import config as config_module
from ..cluster import guest
from ..compute.imageimport import ImageFiles
from .common import app as make_app, data_dir_option, fail_on_aws_error
from .image import import_files

IMAGE_NAME = "eucalite-tiny-guest"

guest_group = click.Group(
    "guest",
    help="A tiny real guest (Debian cloud kernel + busybox initramfs) for tests and first "
         "steps: its console reports network, metadata and attached disks.")


def default_out_dir(data_dir: str | None) -> Path:
    """``<data_dir>/guest``, the data dir resolved as for ``eucalite serve``."""
    try:
        config = config_module.load({"data_dir": data_dir} if data_dir else {})
    except ValueError as error:              # a bad config file or environment value
        raise click.ClickException(str(error))
    return Path(config["data_dir"]) / "guest"


@guest_group.command("build")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Directory for vmlinuz, initrd.gz and root.img (default: DATA_DIR/guest). "
                   "A finished build there is reused.")
@click.option("--import", "do_import", is_flag=True,
              help=f"Then register the files as an EKI, ERI and EMI named {IMAGE_NAME} "
                   "(as `eucalite image import` does).")
@data_dir_option
def build_command(out_dir, do_import, data_dir):
    """Build the guest (downloads the kernel package with apt-get); print its three paths."""
    out = Path(out_dir) if out_dir else default_out_dir(data_dir)
    try:
        files = guest.build(out, log=lambda line: click.echo(line, err=True))
    except guest.GuestBuildError as error:
        raise click.ClickException(str(error))
    click.echo(f"kernel\t{files.kernel}")
    click.echo(f"ramdisk\t{files.ramdisk}")
    click.echo(f"root\t{files.root}")
    if do_import:
        # the very import `eucalite image import` runs; it prints kernel/ramdisk/machine ids
        fail_on_aws_error(import_files)(make_app(data_dir),
                                        ImageFiles(files.kernel, files.ramdisk, files.root),
                                        name=IMAGE_NAME)
