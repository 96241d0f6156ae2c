"""The installed dskd version (a leaf, so any module can record it)."""

__version__ = "0.1.0"
