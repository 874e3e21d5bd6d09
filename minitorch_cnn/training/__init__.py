"""Training: the loop, evaluation, metrics and atomic checkpoints."""
from .checkpoint import atomic_savez, load_checkpoint, save_checkpoint
from .trainer import PRESETS, TrainConfig, Trainer, TrainingDiverged, evaluate, write_metrics

__all__ = ["Trainer", "TrainConfig", "TrainingDiverged", "PRESETS", "evaluate", "write_metrics",
           "save_checkpoint", "load_checkpoint", "atomic_savez"]
