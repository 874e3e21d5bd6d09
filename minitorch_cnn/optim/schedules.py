"""Learning-rate schedules, stepped once per training iteration.

Usage::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = CosineAnnealingLR(opt, T_max=total_steps)
    for batch in batches:
        ...                      # forward, backward
        opt.step()               # uses opt.lr
        sched.step()             # sets opt.lr for the next iteration
        opt.zero_grad()

A schedule is a function ``lr(t)`` of the number ``t`` of ``step()`` calls made
so far (``last_step``): constructing it sets ``optimizer.lr = lr(0)``, and
every ``step()`` increments ``t`` and sets ``optimizer.lr = lr(t)``. Training
iteration ``k`` (0-based) therefore uses ``lr(k)`` -- the same sequence as
``torch.optim.lr_scheduler`` with one ``scheduler.step()`` per iteration.
Every formula is evaluated in closed form from ``t``, so the only state a
checkpoint needs is ``last_step`` (plus the base learning rate).

``base_lr`` is ``optimizer.lr`` at construction time. Build one schedule per
optimizer; to chain a warm-up with another schedule use
``LinearWarmup(optimizer, warmup_steps, after=...)``.

``state_dict()`` is a flat ``{str: 0-d np.ndarray}`` (``"last_step"``,
``"base_lr"``; ``LinearWarmup`` adds its inner schedule's keys prefixed with
``"after."``). ``load_state_dict`` restores the position and sets
``optimizer.lr`` accordingly; the other settings come from the constructor.
"""
import math

import numpy as np

__all__ = ["LRSchedule", "ConstantLR", "StepLR", "CosineAnnealingLR", "OneCycleLR",
           "TriangleLR", "LinearWarmup", "make_scheduler", "SCHEDULES"]


def _positive_int(owner, name, value):
    if isinstance(value, bool) or int(value) != value or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


class LRSchedule:
    """Base class: subclasses implement ``lr_at(t)``."""

    def __init__(self, optimizer):
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"{type(self).__name__}: expected an optimizer with an 'lr' "
                            f"attribute, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_step = 0

    def _start(self):
        """Called at the end of each subclass constructor: apply lr(0)."""
        self._apply()

    def lr_at(self, t):
        """The learning rate of iteration ``t`` (0-based)."""
        raise NotImplementedError

    def get_lr(self):
        """The learning rate for the current iteration, ``lr_at(last_step)``."""
        return self.lr_at(self.last_step)

    def _apply(self):
        self.optimizer.lr = self.get_lr()

    def step(self):
        """Advance one iteration and set ``optimizer.lr``. Returns the new lr."""
        self.last_step += 1
        self._apply()
        return self.optimizer.lr

    # ------------------------------------------------------------ state dict
    def state_dict(self):
        return {"last_step": np.array(self.last_step, dtype=np.int64),
                "base_lr": np.array(self.base_lr, dtype=np.float64)}

    def _check_state(self, state_dict, prefix=""):
        """Validate; return ``(problems, {attr: value})`` without changing anything."""
        given = {str(k): np.asarray(v) for k, v in dict(state_dict).items()}
        expected = ["last_step", "base_lr"]
        problems = []
        missing = [k for k in expected if k not in given]
        unexpected = [k for k in given if k not in expected]
        if missing:
            problems.append(f"missing keys: {', '.join(prefix + k for k in missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {', '.join(prefix + k for k in unexpected)}")
        bad = [f"{prefix}{k} (shape {given[k].shape})" for k in expected
               if k in given and given[k].ndim != 0]
        if bad:
            problems.append(f"expected 0-d arrays for: {', '.join(bad)}")
        values = {}
        if not problems:
            last_step, base_lr = int(given["last_step"]), float(given["base_lr"])
            if last_step < 0:
                problems.append(f"{prefix}last_step must be >= 0, got {last_step}")
            if not base_lr >= 0.0:
                problems.append(f"{prefix}base_lr must be >= 0, got {base_lr}")
            values = {"last_step": last_step, "base_lr": base_lr}
        return problems, values

    def load_state_dict(self, state_dict):
        """Restore ``last_step``/``base_lr`` and set ``optimizer.lr``; on a bad dict
        raise ``ValueError`` listing every problem and change nothing."""
        problems, values = self._check_state(state_dict)
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: nothing was loaded; "
                             + " | ".join(problems))
        self._commit(values)
        self._apply()

    def _commit(self, values):
        self.last_step = values["last_step"]
        self.base_lr = values["base_lr"]

    def __repr__(self):
        return f"{type(self).__name__}(last_step={self.last_step}, lr={self.get_lr():.6g})"


class ConstantLR(LRSchedule):
    r"""A constant learning rate (i.e. no schedule), optionally scaled at the start::

        lr(t) = base_lr * factor     if t < total_iters
        lr(t) = base_lr              otherwise

    With the defaults (``factor=1``, ``total_iters=0``) the learning rate never
    changes. ``torch.optim.lr_scheduler.ConstantLR`` is the same formula, but
    with defaults ``factor=1/3, total_iters=5``.
    """

    def __init__(self, optimizer, factor=1.0, total_iters=0):
        super().__init__(optimizer)
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"ConstantLR: factor must be in [0, 1], got {factor!r}")
        if isinstance(total_iters, bool) or int(total_iters) != total_iters or total_iters < 0:
            raise ValueError(f"ConstantLR: total_iters must be an integer >= 0, "
                             f"got {total_iters!r}")
        self.factor = float(factor)
        self.total_iters = int(total_iters)
        self._start()

    def lr_at(self, t):
        return self.base_lr * self.factor if t < self.total_iters else self.base_lr


class StepLR(LRSchedule):
    r"""Multiply the learning rate by ``gamma`` every ``step_size`` iterations::

        lr(t) = base_lr * gamma ** floor(t / step_size)
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        if not gamma >= 0.0:
            raise ValueError(f"StepLR: gamma must be >= 0, got {gamma!r}")
        self.gamma = float(gamma)
        self._start()

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(LRSchedule):
    r"""Cosine decay from ``base_lr`` to ``eta_min`` over ``T_max`` iterations
    (Loshchilov & Hutter, SGDR, without restarts)::

        lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    ``lr(0) = base_lr``, ``lr(T_max) = eta_min``. Like PyTorch's, the formula
    keeps going past ``T_max`` (the rate rises again), so set
    ``T_max`` to the total number of iterations.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        if not eta_min >= 0.0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be >= 0, got {eta_min!r}")
        self.eta_min = float(eta_min)
        self._start()

    def lr_at(self, t):
        return self.eta_min + (self.base_lr - self.eta_min) * (
            1 + math.cos(math.pi * t / self.T_max)) / 2


class OneCycleLR(LRSchedule):
    r"""The "1cycle" policy (Smith & Topin, 2018), PyTorch's two-phase version.

    With ``initial_lr = max_lr / div_factor``, ``min_lr = initial_lr /
    final_div_factor`` and ``s = pct_start * total_steps - 1`` (the end of the
    warm-up phase)::

        lr(t) = anneal(initial_lr, max_lr, t / s)                  if t <= s
        lr(t) = anneal(max_lr, min_lr, (t - s) / (total_steps - 1 - s))  otherwise

    where ``anneal(a, b, x)`` goes from ``a`` (x = 0) to ``b`` (x = 1)::

        'cos':    b + (a - b) / 2 * (1 + cos(pi * x))
        'linear': a + (b - a) * x

    The optimizer's lr given at construction is ignored (``max_lr`` sets the
    scale). As in PyTorch, at most ``total_steps`` calls to ``step()`` are
    allowed.

    Momentum cycling: off by default here (PyTorch's default is on). With
    ``cycle_momentum=True`` the momentum (SGD's ``momentum``, Adam's
    ``betas[0]``) moves opposite to the lr, from ``max_momentum`` down to
    ``base_momentum`` during warm-up and back up during annealing, with the
    same ``anneal`` curve.
    """

    def __init__(self, optimizer, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4, cycle_momentum=False,
                 base_momentum=0.85, max_momentum=0.95):
        super().__init__(optimizer)
        self.total_steps = _positive_int("OneCycleLR", "total_steps", total_steps)
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("OneCycleLR: anneal_strategy must be 'cos' or 'linear', "
                             f"got {anneal_strategy!r}")
        if not max_lr > 0.0:
            raise ValueError(f"OneCycleLR: max_lr must be > 0, got {max_lr!r}")
        if not (div_factor > 0.0 and final_div_factor > 0.0):
            raise ValueError("OneCycleLR: div_factor and final_div_factor must be > 0")
        self.max_lr = float(max_lr)
        self.pct_start = float(pct_start)
        self.anneal_strategy = anneal_strategy
        self.initial_lr = self.max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        self.warmup_end = float(self.pct_start * self.total_steps) - 1
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if hasattr(optimizer, "betas"):
                self._momentum_attr = "betas"
            elif getattr(optimizer, "momentum", 0) > 0:
                self._momentum_attr = "momentum"
            else:
                raise ValueError("OneCycleLR: cycle_momentum=True needs an optimizer with "
                                 "betas (Adam) or momentum > 0 (SGD)")
            if not 0.0 <= base_momentum <= max_momentum < 1.0:
                raise ValueError("OneCycleLR: need 0 <= base_momentum <= max_momentum < 1, "
                                 f"got {base_momentum!r}, {max_momentum!r}")
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)
        self._start()

    def _anneal(self, a, b, x):
        if self.anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * x) + 1)
        return (b - a) * x + a

    def _phase(self, t):
        """(pct, is_warmup) for iteration t."""
        s = self.warmup_end
        if t <= s:
            return (t / s if s != 0 else 1.0), True
        end = self.total_steps - 1   # the annealing phase runs from s to end
        return ((t - s) / (end - s) if end != s else 1.0), False

    def lr_at(self, t):
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {t} times, but total_steps is "
                             f"{self.total_steps}")
        pct, warm = self._phase(t)
        if warm:
            return self._anneal(self.initial_lr, self.max_lr, pct)
        return self._anneal(self.max_lr, self.min_lr, pct)

    def momentum_at(self, t):
        pct, warm = self._phase(t)
        if warm:
            return self._anneal(self.max_momentum, self.base_momentum, pct)
        return self._anneal(self.base_momentum, self.max_momentum, pct)

    def _apply(self):
        super()._apply()
        if self.cycle_momentum:
            m = self.momentum_at(self.last_step)
            if self._momentum_attr == "betas":
                self.optimizer.betas = (m,) + tuple(self.optimizer.betas[1:])
            else:
                self.optimizer.momentum = m


class TriangleLR(LRSchedule):
    r"""airbench's triangle: linear from ``start * base_lr`` up to ``base_lr`` at step
    ``p = int(peak * total_steps)``, then linear down to ``end * base_lr`` at step
    ``total_steps``::

        lr(t) = base_lr * (start + (1 - start) t / p)                 if t < p
        lr(t) = base_lr * (1 + (end - 1) (t - p) / (total_steps - p))  otherwise

    (airbench94: ``start=0.2, peak=0.23, end=0.07``; its last step, ``total_steps
    - 1``, still runs a little above ``end``). At most ``total_steps`` steps.
    """

    def __init__(self, optimizer, total_steps, start=0.2, peak=0.23, end=0.07):
        super().__init__(optimizer)
        self.total_steps = _positive_int("TriangleLR", "total_steps", total_steps)
        if not 0.0 <= peak < 1.0:
            raise ValueError(f"TriangleLR: peak must be in [0, 1), got {peak!r}")
        if not (start >= 0.0 and end >= 0.0):
            raise ValueError(f"TriangleLR: start and end must be >= 0, got {start!r}, {end!r}")
        self.start, self.end = float(start), float(end)
        self.peak_step = int(peak * self.total_steps)
        self._start()

    def lr_at(self, t):
        if t > self.total_steps:
            raise ValueError(f"TriangleLR: tried to step {t} times, but total_steps is "
                             f"{self.total_steps}")
        p, n = self.peak_step, self.total_steps
        if t < p:
            return self.base_lr * (self.start + (1.0 - self.start) * t / p)
        return self.base_lr * (1.0 + (self.end - 1.0) * (t - p) / (n - p))


class LinearWarmup(LRSchedule):
    r"""Linear warm-up for ``warmup_steps`` iterations, then hand over to
    another schedule (``after``) or keep the rate constant::

        lr(t) = peak * (t + 1) / warmup_steps      if t < warmup_steps
        lr(t) = after.lr_at(t - warmup_steps)      otherwise

    where ``peak = after.lr_at(0)`` (or ``optimizer.lr`` when ``after`` is
    None). The first iteration uses ``peak / warmup_steps`` (never 0) and
    iteration ``warmup_steps - 1`` reaches ``peak``. Build ``after`` first,
    on the same optimizer, counting only the post-warm-up iterations::

        sched = LinearWarmup(opt, 500, after=CosineAnnealingLR(opt, T_max=total - 500))

    (This equals PyTorch's ``SequentialLR([LinearLR(opt, 1/W, 1, W-1), after],
    milestones=[W])``.)
    """

    def __init__(self, optimizer, warmup_steps, after=None):
        super().__init__(optimizer)
        self.warmup_steps = _positive_int("LinearWarmup", "warmup_steps", warmup_steps)
        if after is not None:
            if not isinstance(after, LRSchedule):
                raise TypeError(f"LinearWarmup: after must be a schedule, got "
                                f"{type(after).__name__}")
            if after.optimizer is not optimizer:
                raise ValueError("LinearWarmup: after must be built on the same optimizer")
            if after.last_step != 0:
                raise ValueError("LinearWarmup: after must not have been stepped yet")
        self.after = after
        self._start()

    def lr_at(self, t):
        if t < self.warmup_steps:
            peak = self.after.lr_at(0) if self.after is not None else self.base_lr
            return peak * (t + 1) / self.warmup_steps
        if self.after is None:
            return self.base_lr
        return self.after.lr_at(t - self.warmup_steps)

    def _apply(self):
        if self.after is not None:
            self.after.last_step = max(0, self.last_step - self.warmup_steps)
            if self.last_step >= self.warmup_steps:
                self.after._apply()  # sets lr (and momentum for OneCycleLR)
                return
        super()._apply()

    def state_dict(self):
        out = super().state_dict()
        if self.after is not None:
            out.update({"after." + k: v for k, v in self.after.state_dict().items()})
        return out

    def _check_state(self, state_dict, prefix=""):
        given = dict(state_dict)
        inner = {k[len("after."):]: v for k, v in given.items() if str(k).startswith("after.")}
        outer = {k: v for k, v in given.items() if not str(k).startswith("after.")}
        problems, values = super()._check_state(outer, prefix)
        if self.after is not None:
            p2, v2 = self.after._check_state(inner, prefix + "after.")
            problems += p2
            values["after"] = v2
        elif inner:
            problems.append("unexpected keys: " + ", ".join(prefix + "after." + k for k in inner))
        return problems, values

    def _commit(self, values):
        super()._commit(values)
        if self.after is not None:
            self.after._commit(values["after"])


SCHEDULES = ("constant", "step", "cosine", "onecycle", "triangle")


def make_scheduler(name, optimizer, total_steps, warmup_steps=0, **kw):
    """Build a schedule by name, for the command line.

    ``name``: "constant", "step", "cosine", "onecycle" or "triangle". ``total_steps``: the
    number of training iterations. ``warmup_steps > 0`` prepends a
    ``LinearWarmup`` (the inner schedule then spans ``total_steps -
    warmup_steps``; not allowed with "onecycle", which warms up by itself).
    Extra keywords go to the schedule's constructor; defaults:

    * "step": ``step_size = max(1, steps // 3)``, ``gamma = 0.1``;
    * "cosine": ``T_max = steps``, ``eta_min = 0``;
    * "onecycle": ``max_lr = optimizer.lr``.
    """
    total_steps = _positive_int("make_scheduler", "total_steps", total_steps)
    if isinstance(warmup_steps, bool) or int(warmup_steps) != warmup_steps or warmup_steps < 0:
        raise ValueError(f"make_scheduler: warmup_steps must be an integer >= 0, "
                         f"got {warmup_steps!r}")
    warmup_steps = int(warmup_steps)
    if warmup_steps >= total_steps:
        raise ValueError(f"make_scheduler: warmup_steps ({warmup_steps}) must be smaller "
                         f"than total_steps ({total_steps})")
    n = total_steps - warmup_steps
    key = str(name).lower()
    if key == "constant":
        sched = ConstantLR(optimizer, **kw)
    elif key == "step":
        kw.setdefault("step_size", max(1, n // 3))
        sched = StepLR(optimizer, **kw)
    elif key == "cosine":
        kw.setdefault("T_max", n)
        sched = CosineAnnealingLR(optimizer, **kw)
    elif key == "onecycle":
        if warmup_steps:
            raise ValueError("make_scheduler: 'onecycle' has its own warm-up "
                             "(pct_start); use warmup_steps=0")
        kw.setdefault("max_lr", optimizer.lr)
        sched = OneCycleLR(optimizer, total_steps=n, **kw)
    elif key == "triangle":
        sched = TriangleLR(optimizer, total_steps=n, **kw)
    else:
        raise ValueError(f"make_scheduler: unknown schedule {name!r}; "
                         f"choose one of {', '.join(SCHEDULES)}")
    if warmup_steps:
        sched = LinearWarmup(optimizer, warmup_steps, after=sched)
    return sched
