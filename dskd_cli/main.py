"""The app under its former module name, for :func:`dskd_cli.completions.command_tree`; the app
itself is :mod:`dskd_cli.app`."""

from dskd_cli.app import app, main

__all__ = ["app", "main"]
