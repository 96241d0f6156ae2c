"""The ``dskd`` command line: a thin Typer app over :mod:`dskd_core`."""
