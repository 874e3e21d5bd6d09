"""Optimisers and learning-rate schedules.

Optimisers (update ``p.data`` in place from ``p.grad``, PyTorch's update rules):
``SGD``, ``Adam``, ``AdamW``. Schedules (set ``optimizer.lr`` once per
iteration): ``ConstantLR``, ``StepLR``, ``CosineAnnealingLR``, ``OneCycleLR``,
``LinearWarmup``, and ``make_scheduler(name, optimizer, total_steps)``.

Both kinds have ``state_dict()``/``load_state_dict()`` with flat
``{str: np.ndarray}`` dicts that ``np.savez`` can store; see
``optimizer.py`` for the key format.
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .schedules import (LRSchedule, ConstantLR, StepLR, CosineAnnealingLR, OneCycleLR,
                        LinearWarmup, make_scheduler, SCHEDULES)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRSchedule", "ConstantLR", "StepLR",
           "CosineAnnealingLR", "OneCycleLR", "LinearWarmup", "make_scheduler", "SCHEDULES"]
