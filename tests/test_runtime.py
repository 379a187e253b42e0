import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from keras_impl import files, runtime

REPO = Path(__file__).resolve().parent.parent


def _draw():
    import keras
    import tensorflow as tf

    layer = keras.layers.Dense(3)
    layer.build((None, 2))
    return (random.random(), float(np.random.rand()), float(tf.random.uniform(())),
            layer.kernel.numpy().round(6).tolist())


def test_seed_everything_same_seed_same_numbers_different_seed_different():
    runtime.seed_everything(123)
    first = _draw()
    runtime.seed_everything(123)
    assert _draw() == first
    runtime.seed_everything(124)
    other = _draw()
    assert other[0] != first[0] and other[1] != first[1] and other[3] != first[3]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_everything_rejects_bad_seed(bad):
    with pytest.raises(ValueError, match="argument `seed`"):
        runtime.seed_everything(bad)


def test_strategy_selection_on_this_machine():
    import tensorflow as tf

    cpu = runtime.strategy("cpu")
    assert isinstance(cpu, tf.distribute.OneDeviceStrategy)
    assert "CPU:0" in cpu.extended.worker_devices[0]
    auto = runtime.strategy("auto")
    if len(runtime.gpus()) > 1:
        assert isinstance(auto, tf.distribute.MirroredStrategy)
    else:  # one device: TensorFlow's default strategy (no per-step distribution overhead)
        assert auto is tf.distribute.get_strategy()
        assert not tf.distribute.has_strategy()
    if not runtime.gpus():
        with pytest.raises(ValueError, match="TensorFlow sees no GPU"):
            runtime.strategy("gpu")
    mirrored = runtime.strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync >= 1


def test_intra_op_threads():
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # the runtime runs now: its thread count is fixed
    current = tf.config.threading.get_intra_op_parallelism_threads()
    assert runtime.set_intra_op_threads(current) is True  # unchanged: fine
    assert runtime.set_intra_op_threads(current + 3) is False  # kept as it is, no exception
    assert tf.config.threading.get_intra_op_parallelism_threads() == current
    with pytest.raises(ValueError, match=r"`threads`: expected an integer >= 0, got -1"):
        runtime.set_intra_op_threads(-1)


def test_strategy_errors(monkeypatch):
    with pytest.raises(ValueError, match="expected one of auto, cpu, gpu, mirrored, multi-worker, got 'tpu'"):
        runtime.strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        runtime.strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid"):
        runtime.strategy("multi-worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ValueError, match="TF_CONFIG lists no workers"):
        runtime.strategy("multi-worker")


def test_device_summary_is_one_line_with_versions():
    import tensorflow as tf

    line = runtime.device_summary()
    assert "\n" not in line
    assert line.startswith(f"TF {tf.__version__} | Keras 3.")
    assert "(legacy)" in line  # tests run with TF_USE_LEGACY_KERAS=1
    assert ("GPU x" in line) if runtime.gpus() else ("GPU: none" in line)


def test_mixed_precision_switch():
    try:
        assert runtime.set_mixed_precision(True) == "mixed_float16"
    finally:
        assert runtime.set_mixed_precision(False) == "float32"


def test_run_dir_layout(tmp_path):
    cfg = {"lr": 0.1, "array": np.arange(3), "n": np.int64(4)}
    run_dir = runtime.make_run_dir("dqn", 7, cfg, root=tmp_path)
    assert run_dir.parent == tmp_path and run_dir.name.startswith("dqn__7__")
    for sub in ("train", "eval", "checkpoints"):
        assert (run_dir / sub).is_dir()
    assert json.loads((run_dir / "config.json").read_text()) == {"lr": 0.1, "array": [0, 1, 2], "n": 4}
    second = runtime.make_run_dir("dqn", 7, cfg, root=tmp_path)  # same second: a distinct folder
    assert second != run_dir

    train, evaluation = runtime.summary_writers(run_dir)
    runtime.log_scalars(train, 1, {"charts/episodic_return": 10.0})
    runtime.log_scalars(evaluation, 1, {"eval/mean_return": 9.0})
    assert list((run_dir / "train").glob("events.out.tfevents.*"))
    assert list((run_dir / "eval").glob("events.out.tfevents.*"))


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "a" / "f.json"
    files.atomic_write_json(target, {"x": 1})
    assert json.loads(target.read_text()) == {"x": 1}
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any other file, not 0600


def test_atomic_directory_keeps_previous_checkpoint_on_failure(tmp_path):
    ckpt = tmp_path / "ckpt"
    with files.atomic_directory(ckpt) as tmp:
        (tmp / "weights").write_text("v1")
    assert files.is_complete(ckpt) and (ckpt / "weights").read_text() == "v1"
    with pytest.raises(RuntimeError):
        with files.atomic_directory(ckpt) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("crash while saving")
    assert (ckpt / "weights").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary left behind
    with files.atomic_directory(ckpt) as tmp:
        (tmp / "weights").write_text("v2")
    assert (ckpt / "weights").read_text() == "v2" and files.is_complete(ckpt)
    assert not files.is_complete(tmp_path / "missing")


def test_timer_and_progress():
    with runtime.Timer() as timer:
        total = sum(runtime.progress(range(5), disable=True))
    assert total == 10
    frozen = timer.seconds
    assert frozen >= 0 and timer.seconds == frozen


def test_legacy_keras_guard_in_a_process_that_imported_tensorflow_first():
    code = textwrap.dedent("""
        import os
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
        import tensorflow as tf
        tf.keras.layers.Dense         # first use of tf.keras binds it to Keras 3 for good
        from keras_impl import runtime
        try:
            runtime.require_legacy_keras()
        except runtime.LegacyKerasError as err:
            print("GUARD:", err)
        else:
            print("NO ERROR")
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert "GUARD: TF-Agents needs Keras 2" in out.stdout, out.stdout + out.stderr
    assert "export TF_USE_LEGACY_KERAS=1" in out.stdout


def test_legacy_keras_guard_passes_when_agents_tfa_is_imported_first():
    code = "import agents.tfa, tensorflow\nfrom keras_impl import runtime\nruntime.require_legacy_keras()\nprint('OK')"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.stdout.strip().endswith("OK"), out.stderr
