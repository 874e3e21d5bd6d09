r"""Muon: momentum, then the update orthogonalised by a Newton--Schulz iteration.

Muon (Keller Jordan, 2024; airbench94_muon.py in KellerJordan/cifar10-airbench)
trains the convolution filters of a network; the biases, BatchNorm and the
head stay with SGD. For a filter ``W`` of shape (out, in, kh, kw) with
gradient ``g``, at every step::

    b <- mu b + g                          (momentum; b starts at zero)
    u =  g + mu b                          (Nesterov; plain momentum: u = b)
    W <- W * sqrt(out) / |W|_F             (keep the filter's norm fixed)
    O =  NS(u reshaped to (out, in*kh*kw)) (orthogonalise: O ~ U V^T for u = U S V^T)
    W <- W - lr O                          (reshaped back)

``newton_schulz`` is the orthogonalisation: divide by the Frobenius norm
(all singular values are then <= 1), then apply the odd quintic
``p(X) = a X + b (X X^T) X + c (X X^T)^2 X`` three times, which maps every
singular value ``s`` to ``p(s) = a s + b s^3 + c s^5`` and leaves the singular
vectors alone. The coefficients ``(a, b, c) = (3.4445, -4.7750, 2.0315)``
make the slope at zero large (``a``: small singular values grow fast) while
keeping ``[0.68, 1.20]`` mapped into itself, so after three steps the
singular values sit roughly in that band instead of at exactly 1;
docs/muon.md derives it.

The update's size does not depend on the gradient's scale (it is divided by
its norm), so Muon's ``lr`` is the same for a summed or a mean loss; only
``eps`` (which keeps a zero gradient finite) is relative to the gradient's
scale.

``muon_param_groups(model)`` splits a model as airbench94_muon does, and
``Combined`` steps Muon and SGD as one optimizer under one schedule.
"""
import numpy as np

from .optimizer import Optimizer, _check_lr

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
"""(a, b, c) of the quintic p(s) = a s + b s^3 + c s^5 (airbench94_muon's)."""


def newton_schulz(g, steps=3, eps=1e-7):
    """Orthogonalise a matrix ``g`` (m, n): about U V^T where g = U S V^T.

    Each step maps every singular value s to a s + b s^3 + c s^5; after three
    steps from a Frobenius-normalised matrix, those that started at >= 2 % of
    the norm lie in [0.682, 1.203] (docs/muon.md). The Gram matrix X X^T is formed on the short side: a tall
    matrix is transposed first (the same polynomial, a smaller Gram matrix).
    """
    a, b, c = NS_COEFFICIENTS
    x = g / (np.linalg.norm(g) + eps)       # every singular value now <= 1
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T                       # (m, m), m the short side
        poly = b * gram + c * (gram @ gram)
        x = a * x + poly @ x                 # a X + b (X X^T) X + c (X X^T)^2 X
    return x.T if tall else x


class Muon(Optimizer):
    r"""Muon for matrix-shaped parameters (convolution filters, linear weights).

    The update of the module docstring, as airbench94_muon writes it (float32
    or float64 here instead of bfloat16). A parameter of shape (out, ...) is
    treated as the matrix (out, prod(...)).

    Args:
        params: iterable of ``Parameter``, each with at least 2 dimensions
            (give biases and BatchNorm parameters to SGD: see
            ``muon_param_groups``).
        lr: learning rate (>= 0); a plain attribute that schedules overwrite.
            ``p.lr_scale`` multiplies it per parameter.
        momentum: ``mu`` (>= 0; airbench94_muon: 0.6).
        nesterov: use ``g + mu b`` instead of ``b`` (needs ``momentum > 0``).
        ns_steps: Newton--Schulz iterations (>= 1; airbench94_muon: 3).
        eps: added to the norm of the update before dividing (> 0). airbench's
            1e-7 is for a loss summed over the batch; for a mean loss divide it
            by the batch size to take the same steps.
        normalize: rescale each parameter to Frobenius norm ``sqrt(out)``
            before its update (airbench94_muon), so the step ``lr`` is
            relative to a weight of fixed size.

    State per parameter: ``momentum_buffer`` (created at the first step).
    """

    hyperparameters = ("momentum", "nesterov", "ns_steps", "eps", "normalize")
    state_names = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.6, nesterov=True, ns_steps=3, eps=1e-7,
                 normalize=True):
        super().__init__(params, lr)
        for i, p in enumerate(self.params):
            if p.data.ndim < 2:
                raise ValueError(f"Muon: params[{i}] has shape {p.data.shape}; Muon "
                                 "orthogonalises matrices (2 or more dimensions): give "
                                 "biases and BatchNorm parameters to SGD (see "
                                 "optim.muon_param_groups)")
        self._set_hyper(self._validate(dict(momentum=momentum, nesterov=nesterov,
                                            ns_steps=ns_steps, eps=eps, normalize=normalize)))

    def _validate(self, hyper):
        momentum, eps = float(hyper["momentum"]), float(hyper["eps"])
        nesterov, normalize = bool(hyper["nesterov"]), bool(hyper["normalize"])
        ns_steps = hyper["ns_steps"]
        if not momentum >= 0.0:
            raise ValueError(f"Muon: invalid momentum {momentum!r} (must be >= 0)")
        if nesterov and momentum <= 0.0:
            raise ValueError(f"Muon: nesterov=True requires momentum > 0, got {momentum!r}")
        if isinstance(ns_steps, bool) or int(ns_steps) != ns_steps or ns_steps < 1:
            raise ValueError(f"Muon: ns_steps must be an integer >= 1, got {ns_steps!r}")
        if not eps > 0.0:
            raise ValueError(f"Muon: invalid eps {eps!r} (must be > 0)")
        return dict(momentum=momentum, nesterov=nesterov, ns_steps=int(ns_steps), eps=eps,
                    normalize=normalize)

    def step(self):
        """Apply one update to every parameter, using its current ``.grad``."""
        mu = float(self.momentum)
        for i, p, lr, _ in self._updates(float(self.lr), 0.0):
            w, g = p.data, p.grad
            buf = self._buffer(i, "momentum_buffer", w)
            buf *= mu                                        # b <- mu b + g
            buf += g
            u = g + mu * buf if self.nesterov else buf
            if self.normalize:                               # |W|_F = sqrt(out)
                w *= np.sqrt(len(w)) / np.linalg.norm(w)
            update = newton_schulz(u.reshape(len(u), -1), self.ns_steps, self.eps)
            w -= lr * update.reshape(w.shape).astype(w.dtype, copy=False)
        self.step_count += 1


def muon_param_groups(model):
    """airbench94_muon's split: (filters, rest).

    ``filters``: the learnable parameters with 4 dimensions (convolution
    filters) -- Muon's. ``rest``: every other parameter (biases, BatchNorm,
    the head; frozen ones too, which SGD skips) -- SGD's. Raises a ValueError
    when either list would be empty.
    """
    params = list(model.parameters())
    filters = [p for p in params if p.data.ndim == 4 and p.requires_grad]
    chosen = {id(p) for p in filters}
    rest = [p for p in params if id(p) not in chosen]
    if not filters or not rest:
        raise ValueError(f"muon_param_groups: {type(model).__name__} has {len(filters)} "
                         f"learnable 4-D filters and {len(rest)} other parameters; Muon + "
                         "SGD needs some of each")
    return filters, rest


class Combined:
    """Several optimizers stepped as one: ``Combined(sgd=SGD(rest, ...), muon=Muon(filters, ...))``.

    airbench94_muon steps an SGD and a Muon in its loop and sets every
    group's rate to ``initial_lr * factor(t)``. Here one schedule does it:
    ``lr`` reads the first member's rate, and setting it sets every member's
    to its rate at construction times the same factor (``lr / first member's
    rate at construction``).

    ``step`` and ``zero_grad`` run every member's in order. ``state_dict()``
    is the members' flat dicts with their names as prefixes
    (``"muon.state.0.momentum_buffer"``); ``load_state_dict`` checks every
    member's part before any is changed (a failed load changes nothing).
    """

    hyperparameters = ()

    def __init__(self, **members):
        if not members:
            raise ValueError("Combined: give the optimizers as name=optimizer")
        seen = {}
        for name, opt in members.items():
            if not all(hasattr(opt, a) for a in ("step", "state_dict", "load_state_dict",
                                                 "lr", "params")):
                raise TypeError(f"Combined: {name} must be an optimizer, got "
                                f"{type(opt).__name__}")
            for p in opt.params:
                if id(p) in seen:
                    raise ValueError(f"Combined: a parameter of shape {p.data.shape} is in "
                                     f"both {seen[id(p)]} and {name} (it would be updated twice)")
                seen[id(p)] = name
        self.members = dict(members)
        self.base_lrs = {n: float(o.lr) for n, o in members.items()}
        self.first = next(iter(members))
        if not self.base_lrs[self.first] > 0.0:
            raise ValueError(f"Combined: the first member ({self.first}) sets the scale of "
                             f"the others, so its lr must be > 0, got "
                             f"{self.base_lrs[self.first]!r}")

    @property
    def lr(self):
        return self.members[self.first].lr

    @lr.setter
    def lr(self, value):
        factor = _check_lr("Combined", value) / self.base_lrs[self.first]
        for name, opt in self.members.items():
            opt.lr = self.base_lrs[name] * factor

    @property
    def params(self):
        return [p for opt in self.members.values() for p in opt.params]

    @property
    def state_names(self):
        names = []
        for opt in self.members.values():
            names += [s for s in opt.state_names if s not in names]
        return tuple(names)

    def step(self):
        for opt in self.members.values():
            opt.step()

    def zero_grad(self, set_to_none=False):
        for opt in self.members.values():
            opt.zero_grad(set_to_none)

    def state_dict(self):
        return {f"{name}.{k}": v for name, opt in self.members.items()
                for k, v in opt.state_dict().items()}

    def load_state_dict(self, state_dict):
        given = {str(k): v for k, v in dict(state_dict).items()}
        parts = {name: {} for name in self.members}
        unknown = []
        for k, v in given.items():
            name, _, rest = k.partition(".")
            (parts[name].__setitem__(rest, v) if name in parts and rest else unknown.append(k))
        if unknown:
            raise ValueError(f"Combined.load_state_dict: nothing was loaded; keys of no member "
                             f"({', '.join(self.members)}): {', '.join(unknown[:10])}")
        before = {name: opt.state_dict() for name, opt in self.members.items()}
        done = []
        try:
            for name, opt in self.members.items():
                opt.load_state_dict(parts[name])
                done.append(name)
        except (TypeError, ValueError) as err:
            for name in done:                    # undo the members already loaded
                self.members[name].load_state_dict(before[name])
            raise ValueError(f"Combined.load_state_dict: nothing was loaded; {err}") from None

    def __repr__(self):
        return "Combined(" + ", ".join(f"{n}={o!r}" for n, o in self.members.items()) + ")"
