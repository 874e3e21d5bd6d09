"""What a run shows and leaves behind besides its checkpoints: the metrics files
(metrics.csv, metrics.json, curves.png), the log lines and the progress bar."""
import csv
import json
import os
import sys


def write_metrics(out, history, eval_name):
    """metrics.csv, metrics.json and curves.png in ``out``."""
    from ..viz import plot_training_curves  # matplotlib: only when a run writes its curves
    rows = history["epochs"]
    if rows:
        with open(os.path.join(out, "metrics.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(history, f, indent=1)
    plot_training_curves(history, os.path.join(out, "curves.png"), eval_name=eval_name)


def print_now(line):
    """print, flushed: log lines reach a file or a pipe when they happen."""
    print(line, flush=True)


class NoBar:
    """The progress bar when there is none: every call does nothing."""

    def set_postfix(self, **kw):
        pass

    def update(self, n):
        pass

    def close(self):
        pass


def progress_bar(cfg, total, initial, desc):
    """A tqdm bar on stderr when ``cfg.progress`` (default: when stderr is a terminal)."""
    show = sys.stderr.isatty() if cfg.progress is None else cfg.progress
    if not show:
        return NoBar()
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, desc=desc, leave=False, file=sys.stderr)


def log_line(bar, line, log):
    """``log(line)`` without tearing the progress bar."""
    if isinstance(bar, NoBar):
        log(line)
    else:
        bar.clear()
        log(line)
        bar.refresh()
