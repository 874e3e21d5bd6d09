"""Lookahead with an exponential moving average of the weights, as airbench94 does it.

``Lookahead(optimizer, model, total_steps, start_step)`` wraps an optimizer.
Its ``step()`` runs the inner optimizer's, counts the step (``t = 1, 2,
...``), and on every ``every``-th step after ``start_step`` it

* the first time, takes a snapshot ``e`` of the model's floating-point state
  (every parameter and every float buffer: BatchNorm's running statistics too);
* afterwards, moves the snapshot toward the model and the model onto it::

      rho = decay_base ** every * (t / total_steps) ** decay_pow
      e   <- rho e + (1 - rho) w            (the EMA)
      w   <- e                              (the model continues from the average)

``sync()`` copies the snapshot into the model without moving it (airbench's
``update(decay=1)`` at the end of every epoch, so the model evaluated and
saved is the average; the steps since the last average are dropped). The
optimizer's momentum buffers are left as they are.

``rho`` rises from about 0 to ``decay_base ** every`` (0.77 with airbench's
0.95 and 5) as ``t / total_steps ** 3``: early on the average follows the
weights closely, at the end it averages over about 1 / (1 - 0.77) = 4.4
periods of 5 steps.

Everything else (``lr``, the hyperparameters, ``zero_grad``) is the inner
optimizer's, so schedules drive a Lookahead as they drive an optimizer.
``state_dict()`` is the inner optimizer's flat dict plus ``lookahead.step``
and ``lookahead.ema.<model key>`` (once the snapshot exists), so a
checkpoint restores the run bit for bit.
"""
import numpy as np

_PREFIX = "lookahead."


class Lookahead:
    """Wrap ``optimizer``; average ``model``'s state every ``every`` steps after ``start_step``."""

    def __init__(self, optimizer, model, total_steps, start_step=0, every=5, decay_base=0.95,
                 decay_pow=3.0):
        if not hasattr(optimizer, "step") or not hasattr(optimizer, "state_dict"):
            raise TypeError(f"Lookahead: expected an optimizer, got {type(optimizer).__name__}")
        for name, value in (("total_steps", total_steps), ("every", every)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"Lookahead: {name} must be a positive integer, got {value!r}")
        if isinstance(start_step, bool) or int(start_step) != start_step or start_step < 0:
            raise ValueError(f"Lookahead: start_step must be an integer >= 0, got {start_step!r}")
        if not 0.0 <= decay_base <= 1.0:
            raise ValueError(f"Lookahead: decay_base must be in [0, 1], got {decay_base!r}")
        object.__setattr__(self, "optimizer", optimizer)
        self.model, self.total_steps, self.start_step = model, int(total_steps), int(start_step)
        self.every, self.decay_base, self.decay_pow = int(every), float(decay_base), float(
            decay_pow)
        self.steps = 0
        self.ema = None           # {state_dict key: array}, after the first snapshot

    # the inner optimizer's settings, read and written through the wrapper
    def __getattr__(self, name):
        if name == "optimizer":              # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name, value):
        if name == "lr" or (name in getattr(self.optimizer, "hyperparameters", ())):
            setattr(self.optimizer, name, value)
        else:
            object.__setattr__(self, name, value)

    def _arrays(self):
        """{key: the model's live array} for every floating parameter and buffer."""
        out = {}
        for name, p in self.model.named_parameters():
            out[name] = p.data
        for name, b in self.model.named_buffers():
            if np.asarray(b).dtype.kind == "f":
                out[name] = b
        return out

    def decay(self, t):
        """rho at step t: decay_base ** every * (t / total_steps) ** decay_pow."""
        return self.decay_base ** self.every * (t / self.total_steps) ** self.decay_pow

    def step(self):
        self.optimizer.step()
        self.steps += 1
        t = self.steps
        if t > self.start_step and t % self.every == 0:
            live = self._arrays()
            if self.ema is None:
                self.ema = {k: np.array(v, copy=True) for k, v in live.items()}
            else:
                rho = self.decay(t)
                for k, w in live.items():
                    e = self.ema[k]
                    e += (w - e) * e.dtype.type(1 - rho)   # e <- rho e + (1 - rho) w
                    w[...] = e

    def sync(self):
        """Copy the average into the model (nothing happens before the first snapshot)."""
        if self.ema is not None:
            for k, w in self._arrays().items():
                w[...] = self.ema[k]

    def zero_grad(self):
        self.optimizer.zero_grad()

    def state_dict(self):
        out = dict(self.optimizer.state_dict())
        out[_PREFIX + "step"] = np.array(self.steps, dtype=np.int64)
        for k, e in (self.ema or {}).items():
            out[_PREFIX + "ema." + k] = e.copy()
        return out

    def load_state_dict(self, state_dict):
        """Restore ``state_dict()``'s snapshot: the inner optimizer's keys go to it (checked
        there first), the ``lookahead.*`` keys here; nothing changes if any check fails."""
        given = {str(k): v for k, v in dict(state_dict).items()}
        mine = {k[len(_PREFIX):]: np.asarray(v) for k, v in given.items()
                if k.startswith(_PREFIX)}
        if "step" not in mine:
            raise ValueError("Lookahead.load_state_dict: nothing was loaded; missing key "
                             f"{_PREFIX}step (a checkpoint made without lookahead?)")
        live = self._arrays()
        ema = {k[4:]: v for k, v in mine.items() if k.startswith("ema.")}
        problems = []
        if ema:
            missing, unexpected = sorted(set(live) - set(ema)), sorted(set(ema) - set(live))
            misshaped = [f"{k}: expected {live[k].shape}, got {v.shape}" for k, v in ema.items()
                         if k in live and v.shape != np.shape(live[k])]
            for what, keys in (("missing", missing), ("unexpected", unexpected),
                               ("mis-shaped", misshaped)):
                if keys:
                    problems.append(f"{what} ema keys: {', '.join(keys)}")
        if problems:
            raise ValueError("Lookahead.load_state_dict: nothing was loaded; " +
                             " | ".join(problems))
        self.optimizer.load_state_dict({k: v for k, v in given.items()
                                        if not k.startswith(_PREFIX)})
        self.steps = int(mine["step"])
        self.ema = {k: np.array(v, dtype=np.asarray(live[k]).dtype, copy=True)
                    for k, v in ema.items()} or None

    def __repr__(self):
        return (f"Lookahead({self.optimizer!r}, every={self.every}, start_step="
                f"{self.start_step}, total_steps={self.total_steps})")
