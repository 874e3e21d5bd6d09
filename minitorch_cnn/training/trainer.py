"""The training loop: data -> model -> loss -> backward -> optimizer, and nothing else.

One step, written out::

    logits = model(x)                     # forward, NHWC batch in
    loss = criterion(logits, y)
    model.backward(criterion.backward())  # explicit backward, grads accumulate
    optimizer.step(); scheduler.step()    # update, then the per-step schedule
    model.zero_grad()

Everything a run needs to continue exactly where it stopped -- weights,
BatchNorm statistics, optimizer and schedule state, the epoch and step, the
metrics so far -- goes into one checkpoint (see ``checkpoint.py``). The data
order and augmentation of a step depend only on (seed, epoch, step), so a
resumed run sees the same batches as an uninterrupted one and its loss curve
is identical.

Where the rest lives: the settings in ``settings.py``, the recipes in
``presets.py``, the data, model, optimizer and schedule a config makes in
``recipe.py``, evaluation in ``evaluation.py``, the metrics files and the log
in ``metrics.py``.
"""
import math
import os
import time
from dataclasses import asdict

import numpy as np

from .. import nn
from ..fast import compile as compile_model
from .checkpoint import (CheckpointError, load_for_resume, prepare_out_dir, previous_path,
                         save_checkpoint)
from .evaluation import evaluate, tta_level
from .metrics import log_line, print_now, progress_bar, write_metrics
from .recipe import (build_model, build_transform, describe_data, fingerprint, make_loaders,
                     make_optimizer, make_schedule, prepare_model, start_epoch, total_steps)
from .settings import TrainConfig, resume_config


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class Trainer:
    """Runs a TrainConfig: ``Trainer(cfg).fit()``; ``resume=PATH`` continues a checkpoint.

    With ``resume``, ``cfg`` may also be a dict of only the settings to change (what the
    command line passes); see :func:`resume_config` for what may change.

    ``model`` replaces the registry's ``cfg.model`` with a Module of your own.
    """

    def __init__(self, cfg, resume=None, log=None, model=None):
        self.log = log or print_now
        if resume is not None:
            state, resume = load_for_resume(resume, self.log)
            cfg = resume_config(state["meta"], cfg, resume)
        elif not isinstance(cfg, TrainConfig):
            raise TypeError(f"Trainer: cfg must be a TrainConfig (a dict only with resume=), "
                            f"got {type(cfg).__name__}")
        self.cfg = cfg
        self.train_loader, self.eval_loader, self.eval_name = make_loaders(cfg)
        self.classes = self.train_loader.dataset.classes
        self.model = model if model is not None else build_model(cfg, len(self.classes))
        prepare_model(self.model, cfg, self.train_loader.dataset,
                      build_transform(cfg, self.train_loader.dataset)[1])
        # the fast path (minitorch_cnn.fast) on the same Parameters, or the plain layers
        self.net = compile_model(self.model, input_grad=False) if cfg.compile else self.model
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = total_steps(cfg, self.steps_per_epoch)
        self.optimizer = make_optimizer(cfg, self.model, self.steps_per_epoch)
        self.scheduler = make_schedule(cfg, self.optimizer, self.steps_per_epoch)
        self.epoch, self.step = 0, 0           # position: next step to run
        self.history = {"step_loss": [], "epochs": []}
        self._epoch_counts = {"seen": 0, "correct": 0}  # of the epoch so far (saved)
        self.data_fingerprint = fingerprint(self.train_loader.dataset)
        if resume is not None:
            self._restore(state, resume)

    # ----------------------------------------------------------- training
    def fit(self, on_step=None):
        """Train to the configured number of epochs; returns the history.

        ``on_step(trainer)`` runs after every step (tests use it to simulate
        an interruption by raising KeyboardInterrupt). Ctrl-C saves a
        checkpoint at the current step and re-raises.
        """
        prepare_out_dir(self.cfg.out, self.checkpoint_path, self.checkpoint_bytes())
        self.model.train()
        try:
            while self._global_step() < self.total_steps:
                self._run_epoch(on_step)
                if self._step_limit_reached():
                    if self.step:  # stopped mid-epoch: keep the position for --resume
                        self.save()
                    break
        except KeyboardInterrupt:
            self.save()
            self.log(f"Interrupted at epoch {self.epoch + 1}, step {self.step}; checkpoint "
                     f"saved to {self.checkpoint_path} (continue with --resume)")
            raise
        return self.history

    def _run_epoch(self, on_step):
        """The steps of one epoch from ``self.step`` on: train, count, log, checkpoint."""
        c, n_steps = self.cfg, self._epoch_steps()
        start_epoch(self.model, c, self.epoch)
        bar = progress_bar(c, n_steps, self.step, f"epoch {self.epoch + 1}/{c.epochs:g}")
        t0, seen, losses, window = time.perf_counter(), 0, [], []
        for x, y in self.train_loader.iter_epoch(self.epoch, self.step):
            loss, logits = self.train_step(x, y)
            if not math.isfinite(loss):
                bar.close()
                raise TrainingDiverged(
                    f"loss became {loss} at epoch {self.epoch + 1}, step {self.step + 1} "
                    f"(lr {self.optimizer.lr:.3g}); try a lower learning rate (--lr). The last "
                    f"good checkpoint, if any, is {self.checkpoint_path}")
            self.step += 1
            seen += len(y)
            self._epoch_counts["seen"] += len(y)
            self._epoch_counts["correct"] += int((logits.argmax(axis=1) == y).sum())
            losses.append(loss)
            window.append(loss)
            self.history["step_loss"].append(loss)
            bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{seen / (time.perf_counter() - t0):.0f}")
            bar.update(1)
            if self.step % c.log_every == 0 or self.step == n_steps:
                log_line(bar, f"Epoch [{self.epoch + 1}/{c.epochs:g}]. Step [{self.step}/"
                              f"{n_steps}] Loss: {np.mean(window):.4f}", self.log)
                window = []
            if c.checkpoint_every and self._global_step() % c.checkpoint_every == 0 \
                    and self.step < n_steps and not self._step_limit_reached():
                self.save()  # (the epoch's end and --max-steps save anyway)
            if on_step is not None:
                on_step(self)
            if self._step_limit_reached() or self.step == n_steps:
                break
        bar.close()
        seconds = time.perf_counter() - t0
        if self.step == n_steps:
            self._end_epoch(seconds, seen)
        elif losses:
            self.log(f"Stopped at epoch {self.epoch + 1}, step {self.step} (--max-steps "
                     f"{c.max_steps}): train loss {np.mean(losses):.4f} over {len(losses)} "
                     f"steps, {seen / seconds:.0f} images/s")

    def train_step(self, x, y):
        """One step on the batch ``(x, y)``: (loss, logits); a non-finite loss is returned
        before the backward pass, the weights untouched."""
        logits = self.net(x)
        loss = self.criterion(logits, y)
        if not math.isfinite(loss):
            return loss, logits
        self.net.backward(self.criterion.backward())
        self.optimizer.step()
        self.scheduler.step()
        self.model.zero_grad()
        return loss, logits

    def _end_epoch(self, seconds, seen):
        """The epoch's row of metrics (training loss and accuracy over all its steps, also
        those before a resume; evaluated without test-time augmentation), its checkpoint
        and metrics files."""
        if self.cfg.lookahead:
            self.optimizer.sync()     # the model that is evaluated and saved is the average
        losses, counts = self.history["step_loss"][-self._epoch_steps():], self._epoch_counts
        row = {"epoch": self.epoch + 1, "train_loss": float(np.mean(losses)),
               "train_acc": 100.0 * counts["correct"] / max(counts["seen"], 1)}
        tail = ""
        if self.eval_loader is not None:
            acc, _, _ = evaluate(self.net, self.eval_loader)
            row[f"{self.eval_name}_acc"] = acc
            tail = f", {self.eval_name} accuracy {acc:.2f} %"
        row.update({"lr": self.optimizer.lr, "seconds": seconds,
                    "images_per_s": seen / seconds})
        self.history["epochs"].append(row)
        self.log(f"Epoch [{self.epoch + 1}/{self.cfg.epochs:g}] done in {seconds:.1f} s "
                 f"({row['images_per_s']:.0f} images/s): train loss {row['train_loss']:.4f}"
                 + tail)
        self.epoch, self.step = self.epoch + 1, 0
        self._epoch_counts = {"seen": 0, "correct": 0}
        self.save()
        write_metrics(self.cfg.out, self.history, self.eval_name or "no evaluation")

    def final_report(self):
        """The seed's closing line, on the evaluation split, with the configured test-time
        augmentation (and the plain accuracy beside it); (None, None) without one."""
        if self.eval_loader is None:
            self.log(f"No evaluation: {self.cfg.data} here has no test split and --val-split "
                     f"is 0, so the model trained on all {self.train_loader.num_samples} "
                     "images (give --val-split N to hold some out)")
            return None, None
        level = tta_level(self.cfg)
        acc, per_class, _ = evaluate(self.net, self.eval_loader, tta=level)
        extra, plain = "", acc
        if level:
            rows = self.history["epochs"]
            plain = rows[-1].get(f"{self.eval_name}_acc") if rows and not self.step else None
            if plain is None:                 # not evaluated since the last step
                plain, _, _ = evaluate(self.net, self.eval_loader)
            extra = f" (test-time augmentation level {level}; {plain:.2f} % without)"
        self.history["final"] = {"tta_level": level, f"{self.eval_name}_acc": plain,
                                 f"{self.eval_name}_tta_acc": acc}
        if os.path.isdir(self.cfg.out):
            write_metrics(self.cfg.out, self.history, self.eval_name)
        self.log(f"Accuracy of the model on the {self.eval_name} images: {acc:.2f} %" + extra)
        return acc, per_class

    # ----------------------------------------------------------- position
    def _global_step(self):
        return self.epoch * self.steps_per_epoch + self.step

    def _step_limit_reached(self):
        return bool(self.cfg.max_steps) and self._global_step() >= self.cfg.max_steps

    def _epoch_steps(self):
        """Steps of the current epoch: all of them, or what is left of the run in the last."""
        return min(self.steps_per_epoch, self.total_steps - self.epoch * self.steps_per_epoch)

    # ---------------------------------------------------- saving, resuming
    @property
    def checkpoint_path(self):
        return os.path.join(self.cfg.out, "checkpoint.npz")

    def save(self, path=None):
        """Write the run's state to ``path`` (default: ``checkpoint_path``, keeping the one
        before as ``checkpoint.prev.npz``). A failed write raises CheckpointError and
        leaves the checkpoints already on disk as they were."""
        meta = {"config": asdict(self.cfg), "epoch": self.epoch, "step": self.step,
                "classes": list(self.classes), "history": self.history,
                "epoch_counts": self._epoch_counts, "data": self.data_fingerprint}
        path = path or self.checkpoint_path
        try:
            save_checkpoint(path, self.model, self.optimizer, self.scheduler, meta,
                            keep_previous=path == self.checkpoint_path)
        except OSError as err:
            kept = [p for p in (path, previous_path(path)) if os.path.isfile(p)]
            raise CheckpointError(
                f"could not write the checkpoint {path}: {err.strerror or err}. "
                + (f"Unchanged on disk: {', '.join(kept)}; free some space and continue with "
                   f"--resume {kept[0]}" if kept else "No checkpoint of this run exists yet")
            ) from err

    def checkpoint_bytes(self):
        """About the size of one checkpoint: the model's state and the optimizer's arrays,
        plus room for the history and the archive's headers."""
        model = sum(v.nbytes for v in self.model.state_dict().values())
        params = sum(p.data.nbytes for p in self.optimizer.params)
        return model + params * len(self.optimizer.state_names) + (1 << 20)

    def _restore(self, state, path):
        """Load a checkpoint's state; any problem is a ValueError naming ``path`` (the
        trainer is then not to be used: make a new one)."""
        meta = state["meta"]
        saved_data = meta.get("data")
        if saved_data is not None and saved_data != self.data_fingerprint:
            raise ValueError(
                f"{path}: --resume refused, the data at "
                f"{self.cfg.data_dir or 'its default place'} is not the data set this run was "
                f"trained on ({describe_data(self.data_fingerprint)}"
                f"; the checkpoint's: {describe_data(saved_data)})")
        try:
            epoch, step, history = int(meta["epoch"]), int(meta["step"]), meta["history"]
            if not 0 <= step < self.steps_per_epoch or epoch < 0:
                raise ValueError(f"position epoch {epoch}, step {step} is outside a run of "
                                 f"{self.steps_per_epoch} steps per epoch")
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optim"])
            self.scheduler.load_state_dict(state["sched"])
        except (KeyError, TypeError, ValueError) as err:
            what = f"missing entry {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"{path}: cannot resume from this checkpoint: {what}") from None
        self.epoch, self.step, self.history = epoch, step, history
        self._epoch_counts = dict(meta.get("epoch_counts", {"seen": 0, "correct": 0}))
        self.log(f"Resumed from {path} at epoch {self.epoch + 1}, step {self.step}")
