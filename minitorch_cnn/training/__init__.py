"""Training: the loop, evaluation, metrics and atomic checkpoints."""
from .checkpoint import (FAULT_ENV, atomic_savez, load_checkpoint, load_for_resume, previous_path,
                         save_checkpoint)
from .trainer import (PRESETS, CheckpointError, TrainConfig, Trainer, TrainingDiverged, evaluate,
                      make_schedule, prepare_model, write_metrics)

__all__ = ["Trainer", "TrainConfig", "TrainingDiverged", "CheckpointError", "PRESETS", "evaluate",
           "write_metrics", "prepare_model", "make_schedule",
           "save_checkpoint", "load_checkpoint", "load_for_resume", "previous_path",
           "atomic_savez", "FAULT_ENV"]
