"""The names inside a run folder (a leaf: imports nothing from dskd)."""

from __future__ import annotations

CONFIG_FILE = "config.json"
LOG_FILE = "log.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINTS = "checkpoints"
STUDENT_LAST = "student_last.safetensors"
STUDENT_BEST = "student_best.safetensors"
TRAIN_STATE = "train_state.safetensors"
TRAIN_STATE_PREV = "train_state.prev.safetensors"
#: The experiment trackers' (``dskd_core.trackers``): TensorBoard event files, W&B's folder, the W&B run id.
TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
TRACKERS_FILE = "trackers.json"
TRACKER_FILES = (TENSORBOARD_DIR, WANDB_DIR, TRACKERS_FILE)
