"""Stochastic gradient descent with momentum, exactly as ``torch.optim.SGD``."""
import numpy as np

from .. import kernels
from .optimizer import Optimizer


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional momentum, Nesterov momentum,
    dampening and L2 weight decay -- the same update as ``torch.optim.SGD``.

    For every parameter ``p`` with gradient ``g`` at step ``t`` (t = 1, 2, ...),
    with learning rate ``lr``, momentum ``mu``, dampening ``tau`` and weight
    decay ``lambda``::

        g   <- g + lambda * p                       (weight decay, if lambda != 0)

        if mu != 0:                                 (momentum)
            b_t = g                                 if t == 1
            b_t = mu * b_{t-1} + (1 - tau) * g      otherwise
            g   <- g + mu * b_t                     if nesterov
            g   <- b_t                              otherwise

        p   <- p - lr * g

    Note that, as in PyTorch, the momentum buffer ``b`` starts at the first
    (weight-decayed) gradient, not at zero, and dampening is not applied on the
    first step. Weight decay here is L2 regularisation (added to the gradient);
    for "decoupled" weight decay use ``AdamW``.

    Args:
        params: iterable of ``Parameter`` (e.g. ``model.parameters()``).
        lr: learning rate (>= 0). A plain attribute: schedules overwrite
            ``optimizer.lr`` before each step.
        momentum: momentum factor ``mu`` (>= 0).
        weight_decay: L2 penalty ``lambda`` (>= 0).
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and
            ``dampening == 0``).
        dampening: ``tau``, scales down the new gradient in the buffer.

    State per parameter: ``momentum_buffer`` (only when momentum != 0).
    """

    hyperparameters = ("momentum", "dampening", "weight_decay", "nesterov")
    state_names = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False,
                 dampening=0.0):
        super().__init__(params, lr)
        self._set_hyper(self._validate(dict(momentum=momentum, dampening=dampening,
                                            weight_decay=weight_decay, nesterov=nesterov)))

    def _validate(self, hyper):
        momentum = float(hyper["momentum"])
        dampening = float(hyper["dampening"])
        weight_decay = float(hyper["weight_decay"])
        nesterov = bool(hyper["nesterov"])
        if not momentum >= 0.0:
            raise ValueError(f"SGD: invalid momentum {momentum!r} (must be >= 0)")
        if not weight_decay >= 0.0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay!r} (must be >= 0)")
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError("SGD: nesterov=True requires momentum > 0 and dampening == 0 "
                             f"(got momentum={momentum!r}, dampening={dampening!r})")
        return dict(momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                    nesterov=nesterov)

    def _state_required(self, hyper, step):
        return step > 0 and hyper["momentum"] != 0.0

    def step(self):
        """Apply one update to every parameter, using its current ``.grad``."""
        mu = float(self.momentum)
        damp = float(self.dampening)
        nesterov = bool(self.nesterov)
        for i, p, lr, wd in self._updates(float(self.lr), float(self.weight_decay)):
            data, g = p.data, p.grad
            if mu != 0.0 and self._has_buffer(i, data):
                # every step after the first: b <- mu b + (1 - damp) g and the update,
                # fused in one pass (kernels.reference.sgd_momentum_update is the NumPy form)
                buf = self._buffer(i, "momentum_buffer", data)
                kernels.sgd_momentum_update(data, g, buf, lr, mu, damp, wd, nesterov)
                continue
            if wd != 0.0:                          # g <- g + wd * p
                t0 = self._tmp(data, 0)
                np.multiply(data, wd, out=t0)
                t0 += g
                g = t0
            t1 = self._tmp(data, 1)
            if mu != 0.0:                          # first step: b_1 = g
                ### BEGIN SOLUTION sgd_momentum
                buf = self._buffer(i, "momentum_buffer", data, like=g)
                if nesterov:                       # g <- g + mu * b
                    np.multiply(buf, mu, out=t1)
                    t1 += g
                    g = t1
                else:                              # g <- b
                    g = buf
                ### END SOLUTION sgd_momentum
            np.multiply(g, lr, out=t1)             # p <- p - lr * g
            data -= t1
        self.step_count += 1

    def _has_buffer(self, i, data):
        buf = self.state[i].get("momentum_buffer")
        return buf is not None and buf.shape == data.shape
