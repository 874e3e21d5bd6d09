"""Pictures with matplotlib (Agg backend, so it works without a screen). Each function saves a PNG."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_training_curves(history, path, eval_name="validation"):
    """Training loss per step (with a moving average) and accuracy per epoch."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    losses = np.asarray(history.get("step_loss", []), dtype=float)
    if losses.size:
        ax_loss.plot(np.arange(1, losses.size + 1), losses, lw=0.5, alpha=0.4, label="step")
        k = max(1, min(50, losses.size // 10))
        smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
        ax_loss.plot(np.arange(k, losses.size + 1), smooth, lw=1.5, label=f"mean of {k}")
        ax_loss.legend()
    ax_loss.set(xlabel="step", ylabel="training loss", title="Loss")
    rows = history.get("epochs", [])
    if rows:
        epochs = [r["epoch"] for r in rows]
        ax_acc.plot(epochs, [r["train_acc"] for r in rows], "o-", label="train (augmented)")
        key = f"{eval_name}_acc"
        ax_acc.plot(epochs, [r.get(key, np.nan) for r in rows], "s-", label=eval_name)
        ax_acc.legend()
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    return _save(fig, path)
