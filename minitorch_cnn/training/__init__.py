"""Training: the loop, evaluation, metrics and atomic checkpoints.

One file per job:

* ``settings.py``   ``TrainConfig``: every setting of a run, its rules, what may change on resume;
* ``presets.py``    ``PRESETS``: documented recipes, each with its derivation;
* ``recipe.py``     the data, augmentation, model, optimizer and schedule a config makes;
* ``trainer.py``    ``Trainer``: the training loop, its checkpoints and resume;
* ``evaluation.py`` ``evaluate``: accuracy with test-time augmentation, a checkpoint's evaluation;
* ``metrics.py``    metrics.csv/json, curves.png, the log and the progress bar;
* ``checkpoint.py`` one atomic .npz per checkpoint.
"""
from .checkpoint import (FAULT_ENV, CheckpointError, atomic_savez, load_checkpoint,
                         load_for_resume, previous_path, save_checkpoint)
from .evaluation import Evaluation, checkpoint_evaluation, evaluate, tta_level, tta_logits
from .metrics import write_metrics
from .presets import PRESETS
from .recipe import make_schedule, prepare_model
from .settings import TrainConfig, check_setting, resume_config, setting, setting_choices
from .trainer import Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainConfig", "TrainingDiverged", "CheckpointError", "PRESETS", "evaluate",
           "write_metrics", "prepare_model", "make_schedule",
           "save_checkpoint", "load_checkpoint", "load_for_resume", "previous_path",
           "atomic_savez", "FAULT_ENV",
           "setting", "check_setting", "setting_choices", "resume_config",
           "tta_level", "tta_logits", "checkpoint_evaluation", "Evaluation"]
