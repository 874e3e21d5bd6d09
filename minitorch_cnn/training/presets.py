"""Documented recipes: ``train --preset NAME`` starts from ``PRESETS[NAME]`` and the flags
given explicitly override it.

One row per recipe, a dict of ``TrainConfig`` settings, with the derivation of its numbers
in the comment above it; a recipe that changes another one says so (``dict(_SEED, ...)``).
To add a recipe, add a row; the command line lists it by itself.
What each recipe reaches, and how it was chosen: docs/results.md.
"""

# Real CIFAR-10: one-cycle Nesterov SGD (peak lr 0.1), weight decay 5e-4, label
# smoothing 0.1, crop + flip, 5,000 training images held out: the recipe with which
# PyTorch CPU reached 78.4 % after 15 epochs on this kind of machine; 30 epochs
# because accuracy was still rising.
_SEED = dict(data="cifar10", epochs=30, batch_size=100, lr=0.1, optimizer="sgd",
             momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="onecycle",
             label_smoothing=0.1, augment=True, val_split=5000)

PRESETS = {
    "cifar10": _SEED,
    # The seed model in 15 epochs (docs/results.md, Run 7): --preset cifar10 (its data, loss,
    # SGD momentum and weight decay) with Muon (docs/muon.md) on its 53 convolution filters
    # and SGD on the BatchNorm parameters, biases and head. Batch 500, not 100: Muon's GEMMs
    # (66.5 G multiply-adds a step) would be 2.5x a training step of 100 images, a fifth of
    # that per image at 500. Rates as airbench94_muon schedules them, from their peak at
    # step 0 falling linearly to 0 (no warm-up): Muon 0.06 (the filters turn by about 0.06
    # radians a step at the start), SGD 0.3 -- 0.6x Run 6's 0.1 and 0.5 (0.5 = the seed's
    # 0.1 x 5 for 5x the batch; those rates with a one-cycle warm-up reached 80.70 %).
    # Momentum: SGD 0.9 as the seed's, Muon 0.8 (between airbench's 0.6 over 176 steps and
    # the 0.95 of Muon's language-model runs).
    "cifar10-seed-muon": dict(_SEED, epochs=15, batch_size=500, lr=0.3, optimizer="muon",
                              muon_lr=0.06, muon_momentum=0.8, schedule="triangle",
                              pct_start=0.0, div_factor=1.0, end_factor=0.0),
    # airbench94 (Keller Jordan, KellerJordan/cifar10-airbench, airbench94.py: 94.01 % in
    # 9.9 epochs) setting by setting; its network is the model airbench94. airbench steps a
    # loss *summed* over 1,024 images with lr 11.5 / K, K = 1024 (1 + 1 / (1 - 0.85)), and
    # weight decay 0.0153 x 1024 / 11.5. Our loss is the batch mean (a gradient 1,024 times
    # smaller): lr = 11.5 x 1024 / K = 1.5, and the same decay per step (lr x wd = 2.0e-3)
    # is wd = 0.0153 / 11.5. BatchNorm biases: 64x the lr, the same decay per step.
    # Triangle: lr x 0.2 -> 1 at 23 % of the steps -> x 0.07. TTA level 2 = 6 views.
    "cifar10-fast": dict(data="cifar10", model="airbench94", epochs=9.9, batch_size=1024,
                         lr=1.5, optimizer="sgd", momentum=0.85, nesterov=True,
                         weight_decay=0.0153 / 11.5, schedule="triangle", pct_start=0.23,
                         div_factor=5.0, end_factor=0.07, bn_bias_lr_scale=64.0,
                         label_smoothing=0.2, augment=True, flip="alternate", crop_padding=2,
                         crop_padding_mode="reflect", whiten_bias_epochs=3, lookahead=True,
                         lookahead_start=3, tta=True, tta_level=2, val_split=5000),
    # airbench94_muon (KellerJordan/cifar10-airbench, airbench94_muon.py: 94.01 % in 8
    # epochs) setting by setting; its network is the model airbench94_muon. It sums the loss
    # over its batch of B = 2,000; ours is the mean, a gradient 2,000 times smaller. SGD
    # (Nesterov, momentum 0.85) on the head at lr 0.67 and weight decay wd / 0.67 with
    # wd = 2e-6 x B = 4e-3: lr = 0.67 x 2000 = 1340, and the same decay per step (lr x wd =
    # 4e-3) is wd = 4e-3 / 1340. BatchNorm and whitening biases at lr 0.053: lr_scale
    # 0.053 / 0.67 of the head's, the same decay per step. Muon (docs/muon.md) on the six
    # 3x3 filters: lr 0.24, momentum 0.6, Nesterov -- unchanged, its step does not depend on
    # the gradient's scale (its eps, 1e-7 / B, does: the trainer sets it). Schedule: every
    # rate x (1 - step / T), T = 8 x 22 steps of the 45,000 images (triangle with its peak
    # at step 0 falling to 0); the whitening bias's own rate x (1 - step / (3 x 22)), then
    # it freezes. Label smoothing 0.2; alternating flips and 2-pixel translations with
    # reflect padding; no lookahead (airbench94_muon has none); final evaluation with TTA
    # level 2 (6 views). 5,000 training images held out for validation.
    "cifar10-muon": dict(data="cifar10", model="airbench94_muon", epochs=8, batch_size=2000,
                         optimizer="muon", lr=0.67 * 2000, momentum=0.85, nesterov=True,
                         weight_decay=4e-3 / (0.67 * 2000), muon_lr=0.24, muon_momentum=0.6,
                         bn_bias_lr_scale=0.053 / 0.67, schedule="triangle", pct_start=0.0,
                         div_factor=1.0, end_factor=0.0, label_smoothing=0.2, augment=True,
                         flip="alternate", crop_padding=2, crop_padding_mode="reflect",
                         whiten_bias_epochs=3, whiten_bias_schedule="linear", lookahead=False,
                         tta=True, tta_level=2, val_split=5000),
}
