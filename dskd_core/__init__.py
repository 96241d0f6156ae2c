"""dskd: scale-decoupled distillation with logit standardization, as a typed library.

The library never prints; the ``dskd`` command line (``dskd_cli``) renders what it returns.
"""

__version__ = "0.1.0"
