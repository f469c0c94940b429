"""Helpers every ``eucalite`` command shares: the data-dir option, building the app, and
showing service errors as one line instead of a traceback."""
from __future__ import annotations

import functools
from typing import Any

import click

from .. import accounts, create_app
from ..errors import AwsError

DATA_DIR_HELP = ("Data directory (database, objects, volumes). Default: $EUCALITE_DATA_DIR, "
                 "else /var/lib/eucalite for root, ~/.local/share/eucalite for others.")


def overrides(**options: Any) -> dict[str, Any]:
    """The options given on the command line (None means not given), as config overrides."""
    return {key: value for key, value in options.items() if value is not None}


def app(data_dir: str | None):
    """The application on *data_dir* (built as ``eucalite serve`` builds it); a bad
    configuration is one line on the terminal, not a traceback."""
    try:
        return create_app(overrides(data_dir=data_dir))
    except ValueError as error:            # a bad config file or environment value
        raise click.ClickException(str(error))


def fail_on_aws_error(function):
    """Show service errors (NoSuchEntity, ...) as one line and exit 1, not a traceback."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except AwsError as error:
            raise click.ClickException(f"{error.code}: {error.message}")
    return wrapper


def data_dir_option(function):
    """``--data-dir``, as every command that opens the cloud's state takes it."""
    return click.option("--data-dir", type=click.Path(file_okay=False),
                        help=DATA_DIR_HELP)(function)


def in_app(function):
    """A command body that works on the cloud's state: the command takes ``--data-dir``,
    the body runs inside the app built on it, and service errors are one line."""
    @functools.wraps(function)
    def command(*args, data_dir=None, **kwargs):
        with app(data_dir).app_context():
            return function(*args, **kwargs)
    return data_dir_option(fail_on_aws_error(command))


def admin_principal():
    """The cloud admin's admin user, in whose name a host operator acts (no key needed)."""
    return accounts.principal_of(accounts.get_user(accounts.ADMIN_ACCOUNT,
                                                   accounts.ADMIN_USER))

