"""Write a mid-run checkpoint with whichever minitorch_cnn is on PYTHONPATH (main's)."""
import sys
import numpy as np
from minitorch_cnn import nn
from minitorch_cnn.training import TrainConfig, Trainer

out = sys.argv[1]
rng = np.random.default_rng(0)
model = nn.Sequential(
    nn.Conv2d(3, 4, 3, stride=2, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(),
    nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1, rng=rng), nn.BatchNorm2d(8), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10, rng=rng))
cfg = TrainConfig(synthetic_size=100, val_split=20, batch_size=10, epochs=2, lr=0.05,
                  optimizer="sgd", lookahead=True, lookahead_start=1, log_every=4,
                  checkpoint_every=0, progress=False, eval_batch_size=100, max_steps=11,
                  out=out)
Trainer(cfg, model=model).fit()
