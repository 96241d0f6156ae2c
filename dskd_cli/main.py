"""The app under its dskd 0.1 module name (``from dskd_cli.main import app``); the app is :mod:`dskd_cli.app`."""

from dskd_cli.app import app, main

__all__ = ["app", "main"]
