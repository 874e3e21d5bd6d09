"""Optimisers and learning-rate schedules.

Optimisers (update ``p.data`` in place from ``p.grad``, PyTorch's update rules):
``SGD``, ``Adam``, ``AdamW``, and ``Muon`` (orthogonalised momentum for filters;
``muon_param_groups`` and ``Combined`` pair it with SGD for the rest). Schedules (set
``optimizer.lr`` once per iteration): ``ConstantLR``, ``StepLR``, ``CosineAnnealingLR``, ``OneCycleLR``, ``TriangleLR``,
``LinearWarmup``, and ``make_scheduler(name, optimizer, total_steps)``.
``Lookahead`` wraps an optimizer with airbench's moving average of the weights.

Both kinds have ``state_dict()``/``load_state_dict()`` with flat
``{str: np.ndarray}`` dicts that ``np.savez`` can store; see
``optimizer.py`` for the key format.
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW
from .lookahead import Lookahead
from .muon import Combined, Muon, muon_param_groups, newton_schulz
from .schedules import (LRSchedule, ConstantLR, StepLR, CosineAnnealingLR, OneCycleLR,
                        TriangleLR, LinearWarmup, make_scheduler, SCHEDULES)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Lookahead", "Muon", "Combined",
           "muon_param_groups", "newton_schulz", "LRSchedule", "ConstantLR", "StepLR",
           "CosineAnnealingLR", "OneCycleLR", "TriangleLR", "LinearWarmup", "make_scheduler", "SCHEDULES"]
