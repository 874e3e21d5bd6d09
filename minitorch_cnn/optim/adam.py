"""Adam and AdamW, exactly as ``torch.optim.Adam`` / ``torch.optim.AdamW``."""
import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015) with PyTorch's bias corrections and optional L2
    weight decay -- the same update as ``torch.optim.Adam`` (amsgrad=False).

    For every parameter ``p`` with gradient ``g`` at step ``t`` (t = 1, 2, ...),
    with ``m_0 = v_0 = 0``::

        g     <- g + lambda * p                     (L2 weight decay, if lambda != 0)
        m_t   =  beta1 * m_{t-1} + (1 - beta1) * g          (first moment)
        v_t   =  beta2 * v_{t-1} + (1 - beta2) * g * g      (second moment)
        m_hat =  m_t / (1 - beta1**t)                       (bias corrections)
        v_hat =  v_t / (1 - beta2**t)
        p     <- p - lr * m_hat / (sqrt(v_hat) + eps)

    computed, as PyTorch does, in the equivalent form::

        p <- p - (lr / (1 - beta1**t)) * m_t / (sqrt(v_t) / sqrt(1 - beta2**t) + eps)

    (``eps`` is added *after* the bias correction of ``v``.) The first-moment
    update is evaluated as ``m + (1 - beta1) * (g - m)``, the same value
    written the way ``torch.lerp`` computes it.

    Args:
        params: iterable of ``Parameter``.
        lr: learning rate (>= 0); a plain attribute that schedules overwrite.
        betas: ``(beta1, beta2)``, each in [0, 1).
        eps: added to the denominator for numerical stability (>= 0).
        weight_decay: L2 penalty ``lambda`` added to the gradient (>= 0). This
            is *not* decoupled weight decay; see ``AdamW``.

    State per parameter: ``exp_avg`` (m) and ``exp_avg_sq`` (v). The step
    count ``t`` is shared by all parameters (``state_dict()["step"]``).
    """

    hyperparameters = ("beta1", "beta2", "eps", "weight_decay")
    state_names = ("exp_avg", "exp_avg_sq")
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), "
                             f"got {betas!r}") from None
        self._set_hyper(self._validate(dict(beta1=beta1, beta2=beta2, eps=eps,
                                            weight_decay=weight_decay)))

    # ``betas`` is the attribute (a tuple, as in PyTorch, so OneCycleLR can
    # cycle beta1); the state dict stores it as two scalars beta1/beta2.
    def _hyper(self):
        return dict(beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                    weight_decay=self.weight_decay)

    def _set_hyper(self, hyper):
        self.betas = (hyper["beta1"], hyper["beta2"])
        self.eps = hyper["eps"]
        self.weight_decay = hyper["weight_decay"]

    def _validate(self, hyper):
        name = type(self).__name__
        beta1, beta2 = float(hyper["beta1"]), float(hyper["beta2"])
        eps, weight_decay = float(hyper["eps"]), float(hyper["weight_decay"])
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"{name}: invalid beta1 {beta1!r} (must be in [0, 1))")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"{name}: invalid beta2 {beta2!r} (must be in [0, 1))")
        if not eps >= 0.0:
            raise ValueError(f"{name}: invalid eps {eps!r} (must be >= 0)")
        if not weight_decay >= 0.0:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay!r} (must be >= 0)")
        return dict(beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)

    def step(self):
        """Apply one update to every parameter, using its current ``.grad``."""
        beta1, beta2 = float(self.betas[0]), float(self.betas[1])
        eps = float(self.eps)
        t = self.step_count + 1
        bias_correction1 = 1.0 - beta1 ** t
        bias_correction2_sqrt = (1.0 - beta2 ** t) ** 0.5
        for i, p, lr, wd in self._updates(float(self.lr), float(self.weight_decay)):
            step_size = lr / bias_correction1
            data, g = p.data, p.grad
            if wd != 0.0:
                if self._decoupled:                # AdamW: p <- p * (1 - lr * wd)
                    data *= 1.0 - lr * wd
                else:                              # Adam: g <- g + wd * p
                    t0 = self._tmp(data, 0)
                    np.multiply(data, wd, out=t0)
                    t0 += g
                    g = t0
            m = self._buffer(i, "exp_avg", data)
            v = self._buffer(i, "exp_avg_sq", data)
            t1 = self._tmp(data, 1)
            np.subtract(g, m, out=t1)              # m <- m + (1 - beta1) * (g - m)
            t1 *= 1.0 - beta1
            m += t1
            v *= beta2                             # v <- beta2 * v + (1 - beta2) * g * g
            np.multiply(g, 1.0 - beta2, out=t1)
            t1 *= g
            v += t1
            np.sqrt(v, out=t1)                     # denom = sqrt(v) / sqrt(bc2) + eps
            t1 /= bias_correction2_sqrt
            t1 += eps
            np.divide(m, t1, out=t1)               # p <- p - step_size * m / denom
            t1 *= step_size
            data -= t1
        self.step_count = t


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019) -- the same
    update as ``torch.optim.AdamW``.

    Identical to ``Adam`` with ``weight_decay = 0``, except that before the
    Adam update every parameter is shrunk directly::

        p <- p * (1 - lr * lambda)

    instead of adding ``lambda * p`` to the gradient. The decay is therefore
    not rescaled by Adam's ``1 / sqrt(v)`` normalisation. Default
    ``weight_decay=1e-2`` as in PyTorch.
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
