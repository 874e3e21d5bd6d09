"""Softmax cross-entropy, with optional label smoothing."""
import numpy as np

from ._checks import Cache
from .module import Module


class CrossEntropyLoss(Module):
    r"""Mean softmax cross-entropy over the batch, as PyTorch's ``nn.CrossEntropyLoss``.

    forward(logits (N, K) float, targets (N,) int in [0, K)) -> float.
      log p = logits - logsumexp(logits)             (computed stably)
      q = (1 - eps) onehot(target) + eps / K          (label smoothing eps)
      loss = -1/N sum_n sum_k q[n,k] log p[n,k]       (reduction='mean'; 'sum' drops 1/N)
    backward(grad=1.0) -> dL/dlogits = grad * (softmax(logits) - q) / N.
    """

    def __init__(self, label_smoothing=0.0, reduction="mean"):
        super().__init__()
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], "
                             f"got {label_smoothing}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"CrossEntropyLoss: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.label_smoothing, self.reduction = float(label_smoothing), reduction
        self._cache = None

    def forward(self, logits, targets):
        targets = self._check(logits, targets)
        n, k = logits.shape
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        q = np.full_like(logits, self.label_smoothing / k)
        q[np.arange(n), targets] += 1.0 - self.label_smoothing
        total = -(q * log_p).sum()
        self._cache = Cache((), p=np.exp(log_p), q=q)    # softmax and the smoothed targets
        return float(total / n if self.reduction == "mean" else total)

    def backward(self, grad=1.0):
        if self._cache is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward (nothing cached)")
        p, q = self._cache.p, self._cache.q
        self._cache = None
        scale = grad / p.shape[0] if self.reduction == "mean" else grad
        return (p - q) * np.asarray(scale, dtype=p.dtype)

    @staticmethod
    def _check(logits, targets):
        if not isinstance(logits, np.ndarray) or logits.dtype.kind != "f" or logits.ndim != 2:
            got = f"{logits.dtype} array of shape {logits.shape}" if isinstance(logits, np.ndarray) \
                else type(logits).__name__
            raise ValueError(f"CrossEntropyLoss: expected float logits of shape (N, K), got {got}")
        targets = np.asarray(targets)
        if logits.shape[0] == 0:
            raise ValueError("CrossEntropyLoss: expected at least one sample, got logits of "
                             f"shape {logits.shape} (the mean over no samples is undefined)")
        if targets.dtype.kind not in "iu" or targets.shape != logits.shape[:1]:
            raise ValueError(f"CrossEntropyLoss: expected integer targets of shape "
                             f"({logits.shape[0]},), got {targets.dtype} array of shape {targets.shape}")
        if targets.size and (targets.min() < 0 or targets.max() >= logits.shape[1]):
            raise ValueError(f"CrossEntropyLoss: targets must lie in [0, {logits.shape[1]}), "
                             f"got values in [{targets.min()}, {targets.max()}]")
        return targets

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"
