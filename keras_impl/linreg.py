"""A tiny end-to-end exercise for the shared runtime: fit ``y = 3x + 2`` with Keras 3.

It touches every piece of the runtime path (config -> CLI, seeding, strategy, run directory,
TensorBoard logs, a plot, ``result.json``) in a couple of seconds, so ``kcourse run all`` and
the tests exercise that path end to end.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure

from keras_impl import runtime
from keras_impl.configs import LinRegConfig


def make_data(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``x ~ U(-1, 1)`` and ``y = 3x + 2 + noise``, both ``[n, 1]`` float32."""
    if n < 2:
        raise ValueError(f"Received an invalid value for argument `n`: expected >= 2, got {n}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 1)).astype("float32")
    y = (3 * x + 2 + rng.normal(0, noise, size=(n, 1))).astype("float32")
    return x, y


def run(cfg: LinRegConfig, run_dir: Path) -> dict:
    """``kcourse run linreg``: fit, plot, report ``w`` and ``b``."""
    x, y = make_data(cfg.n, cfg.noise, cfg.seed)
    with runtime.strategy(cfg.strategy).scope():
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="mse")
    history = model.fit(x, y, epochs=cfg.epochs, batch_size=cfg.batch_size, verbose=0,
                        validation_split=0.1, shuffle=True,
                        callbacks=[keras.callbacks.TensorBoard(log_dir=str(run_dir), write_graph=False)])
    w, b = (float(v.numpy().ravel()[0]) if hasattr(v, "numpy") else float(np.ravel(v)[0]) for v in model.layers[0].weights)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.plot(x[:, 0], y[:, 0], ".", alpha=0.3, label="data")
    grid = np.linspace(-1, 1, 50, dtype="float32")[:, None]
    ax.plot(grid[:, 0], model(grid).numpy()[:, 0], "r-", label=f"fit w={w:.2f} b={b:.2f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / "fit.png", dpi=80)
    val = float(history.history["val_loss"][-1])
    return {"headline": f"w={w:.2f}, b={b:.2f}, val MSE {val:.4f}", "reached": abs(w - 3) < 0.1 and abs(b - 2) < 0.1,
            "metrics": {"w": w, "b": b, "val_mse": val}, "artifacts": ["fit.png"]}
