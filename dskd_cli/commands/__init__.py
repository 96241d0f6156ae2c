"""One module per ``dskd`` command; :mod:`dskd_cli.app` registers them in one table."""
