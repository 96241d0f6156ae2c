"""The run folder, ``runs/<dataset>/<teacher>-<student>/<variant>/seed<k>/``: its layout and records.

One owner: everything that writes or reads a run folder goes through this package.
"""
