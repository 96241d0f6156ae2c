"""Training and evaluation."""

from dskd_core.train.engine import RunResult, fit, lr_at
from dskd_core.train.evaluate import EvalResult, evaluate

__all__ = ["EvalResult", "RunResult", "evaluate", "fit", "lr_at"]
