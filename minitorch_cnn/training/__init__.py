"""Training: the loop, evaluation, metrics and atomic checkpoints."""
from .checkpoint import atomic_savez, load_checkpoint, save_checkpoint
from .trainer import (PRESETS, TrainConfig, Trainer, TrainingDiverged, evaluate, make_schedule,
                      prepare_model, write_metrics)

__all__ = ["Trainer", "TrainConfig", "TrainingDiverged", "PRESETS", "evaluate", "write_metrics",
           "prepare_model", "make_schedule",
           "save_checkpoint", "load_checkpoint", "atomic_savez"]
