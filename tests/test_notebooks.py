"""Execute every notebook in ``notebooks/`` top to bottom at QUICK settings (default test tier).

Each notebook runs in a fresh kernel that uses *this* interpreter (the repository's venv): a
kernelspec pointing at ``sys.executable`` is written into a temporary folder, with
``TF_USE_LEGACY_KERAS=1`` and ``KCOURSE_QUICK=1`` in its environment. The working directory is a
temporary folder, so the notebooks write nothing into the repository. A failing cell fails the
test with that cell's source and error; a notebook must also show what its metadata promises
(``kcourse.expects``: an inline image and/or a jshtml animation).

    KCOURSE_NOTEBOOK_OUT=/tmp/executed pytest tests/test_notebooks.py   # also keep the executed notebooks
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Seconds per notebook, kernel start included. QUICK notebooks use 2-45 kernel-CPU seconds each
# (docs/notebooks.md); the margin is for a machine shared with other jobs.
NOTEBOOK_TIMEOUT = float(os.environ.get("KCOURSE_NOTEBOOK_TIMEOUT", "600"))
KERNEL_NAME = "kcourse-test"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec running this interpreter with the course's environment variables."""
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kcourse (test)",
        "language": "python",
        "env": {"TF_USE_LEGACY_KERAS": "1", "KCOURSE_QUICK": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return root


def _outputs(nb) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _has_image(nb) -> bool:
    return any("image/png" in out.get("data", {}) for out in _outputs(nb))


def _has_animation(nb) -> bool:
    # matplotlib's to_jshtml: a <div class="animation"> with the frames as base64 PNGs.
    return any("class=\"animation\"" in "".join(out.get("data", {}).get("text/html", ""))
               for out in _outputs(nb))


def _execute(path: Path, kernel_dir: Path, workdir: Path):
    """Run the notebook; returns ``(executed notebook, kernel CPU seconds or None)``."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=int(NOTEBOOK_TIMEOUT), kernel_name=KERNEL_NAME,
                                     resources={"metadata": {"path": str(workdir)}})
    cpu = None
    try:
        client.execute()
    except CellExecutionError as err:  # the message holds the failing cell's source and traceback
        pytest.fail(f"{path.name}: a cell failed\n{err}", pytrace=False)
    except (CellTimeoutError, DeadKernelError) as err:
        pytest.fail(f"{path.name}: {type(err).__name__}: {err}", pytrace=False)
    finally:
        # nbclient leaves a kernel it did not start (km passed in) running: read its CPU time, stop it.
        cpu = _kernel_cpu_seconds(km)
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb, cpu


def _kernel_cpu_seconds(km) -> float | None:
    """CPU seconds (user + system) the kernel process has used; a figure less tied to a shared machine's load."""
    try:
        import psutil

        times = psutil.Process(km.provisioner.pid).cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    except Exception:  # no psutil, or the kernel is gone: the figure is informative only
        return None


def test_failing_cell_fails_the_test_with_its_error(kernel_dir: Path, tmp_path: Path):
    """The machinery itself: the kernel is this interpreter with the course's variables, and a
    raising cell turns into a test failure that quotes the cell and its error."""
    from nbformat.v4 import new_code_cell, new_notebook

    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = new_notebook(cells=[
        new_code_cell(f"import os, sys\nassert sys.executable == {sys.executable!r}, sys.executable\n"
                      "assert os.environ['TF_USE_LEGACY_KERAS'] == '1' and os.environ['KCOURSE_QUICK'] == '1'\n"
                      f"assert os.path.samefile(os.getcwd(), {str(workdir)!r}), os.getcwd()"),
        new_code_cell("raise ValueError('boom from the second cell')"),
    ])
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(pytest.fail.Exception) as info:
        _execute(path, kernel_dir, workdir)
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(info.value))  # tracebacks come with terminal colours
    assert "raise ValueError('boom from the second cell')" in message  # the cell's source
    assert "ValueError: boom from the second cell" in message  # and its error
    assert "AssertionError" not in message  # the first cell (interpreter, variables) passed


def test_notebooks_exist():
    names = {p.stem for p in NOTEBOOKS}
    for topic in ("01_recommender", "02_hello_rnn_lstm", "03_tabular_rl", "04_policy_gradients", "05_dqn_cartpole",
                  "06_frozenlake", "07_tfa_breakout", "08_movielens_rl"):
        assert topic in names, f"notebooks/{topic}.ipynb is missing"


def test_notebooks_match_generator():
    """The committed notebooks are exactly what scripts/make_notebooks.py writes (and carry no outputs)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_notebooks.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert not _outputs(nb), f"{path.name} was committed with outputs"


@pytest.mark.timeout(NOTEBOOK_TIMEOUT + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_quick(path: Path, kernel_dir: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    expects = nb.metadata.get("kcourse", {}).get("expects", [])
    if "07_tfa" in path.stem:
        pytest.importorskip("ale_py", reason="the Breakout notebook needs the atari extra")
        pytest.importorskip("tf_agents", reason="the Breakout notebook needs tf-agents")
    start = time.perf_counter()
    nb, cpu = _execute(path, kernel_dir, tmp_path)
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f}s wall" + ("" if cpu is None else f", {cpu:.1f}s kernel CPU"))
    if os.environ.get("KCOURSE_NOTEBOOK_OUT"):  # keep the executed notebooks, e.g. to look at them
        out_dir = Path(os.environ["KCOURSE_NOTEBOOK_OUT"])
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / path.name)
    if "image" in expects:
        assert _has_image(nb), f"{path.name}: no inline plot (image/png output) was rendered"
    if "animation" in expects:
        assert _has_animation(nb), f"{path.name}: no inline animation (jshtml) was rendered"
    assert (tmp_path / "runs" / "notebooks" / path.stem).is_dir(), "the notebook did not run in the temporary folder"


# ----------------------------------------------------------------------------------------------
# What the notebooks teach: parsed from the files, and the lesson code checked against its twin
# ----------------------------------------------------------------------------------------------

def _generator():
    """scripts/make_notebooks.py as a module (its LESSONS: the lesson cells' code, exactly as shown)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_notebooks", ROOT / "scripts" / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code_cells(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def _python(source: str) -> str:
    """A cell's source without IPython's `!shell` and `%magic` lines (so `ast` can parse it)."""
    return "\n".join("pass" if line.strip().startswith(("!", "%")) else line for line in source.splitlines())


def _calls(source: str) -> list[str]:
    """Dotted names of everything a cell calls: `dqn_train.train(...)` -> "dqn_train.train"."""
    import ast

    def dotted(node) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return f"{dotted(node.value)}.{node.attr}"
        return "?"

    return [dotted(node.func) for node in ast.walk(ast.parse(_python(source))) if isinstance(node, ast.Call)]


# One-call pipelines and functions that train for more than one step, by any name; and the library's
# trainers when called through their modules (a notebook may define its own `q_learning` on the page).
FORBIDDEN_CALLS = {"train_eval", "run_agent", "train_variants", "train_dqn", "train_recommender", "default_tables",
                   "prepare", "train_imitation"}
LIBRARY_MODULES = {"dqn_train", "rec", "recommender", "hello", "pg", "policy_gradient", "frozenlake", "tabular",
                   "mrl", "movielens_rl", "pipeline", "policies", "agents", "keras_impl"}
LIBRARY_TRAINERS = {"train", "q_learning", "q_value_iteration"}
TEACHING = [p for p in NOTEBOOKS if not p.stem.startswith("03_")]  # 03 is numpy only (no network to build)


def _forbidden(calls: list[str]) -> list[str]:
    return [c for c in calls if c.split(".")[-1] in FORBIDDEN_CALLS
            or (c.split(".")[-1] in LIBRARY_TRAINERS and c.split(".")[0] in LIBRARY_MODULES and "." in c)]


def test_forbidden_call_checker_catches_pipelines():
    # The checker itself, on the calls the old notebooks made, and on what the new ones write.
    assert _forbidden(_calls("agent, state = dqn_train.train(cfg, RUN_DIR)\nout = pg.train(cfg)")) == [
        "dqn_train.train", "pg.train"]
    assert _forbidden(_calls("result = train_eval(cfg, RUN_DIR)\n!pip install x")) == ["train_eval"]
    assert _forbidden(_calls("q, h = tabular.q_learning(mdp)\np, f = mrl.run_agent('dqn', cfg)")) == [
        "tabular.q_learning", "mrl.run_agent"]
    assert _forbidden(_calls("loss = agent.train(experience)\nmodel.fit(x, y)\nq, h = q_learning(mdp, 0.9)")) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_calls_no_pipeline(path: Path):
    calls = [c for cell in _code_cells(nbformat.read(path, as_version=4)) for c in _calls(cell)]
    assert not _forbidden(calls), f"calls a one-call pipeline or a multi-step trainer: {_forbidden(calls)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_opens_with_title_budget_and_source(path: Path):
    nb = nbformat.read(path, as_version=4)
    first, install = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "the title comes before the install cell"
    assert "**Budget.** Full (`QUICK` off):" in first.source, "under the title: the full budget's time and result"
    assert "KCOURSE_SOURCE" in first.source, "the first markdown cell tells the reader to set KCOURSE_SOURCE"
    assert install.cell_type == "code" and 'KCOURSE_SOURCE = ""  #@param {type:"string"}' in install.source
    assert "@ {KCOURSE_SOURCE}" in install.source and "git+https://github.com/kcourse" not in install.source
    sources = "\n".join(_code_cells(nb))
    assert sources.count("KCOURSE_SOURCE =") == 2, "one constant (the form field, then the environment's fallback)"
    assert 'QUICK = True  #@param {type:"boolean"}' in sources, "the QUICK form field"


@pytest.mark.parametrize("path", TEACHING, ids=[p.stem for p in TEACHING])
def test_notebook_builds_steps_and_loops_on_the_page(path: Path):
    nb = nbformat.read(path, as_version=4)
    cells = _code_cells(nb)
    calls = [c for cell in cells for c in _calls(cell)]
    tfa = "07_tfa" in path.stem
    assert any(("import keras" in c or "import tf_agents" in c or "from tf_agents" in c) for c in cells)
    model = r"class \w+\((keras\.Model|keras\.layers\.Layer)\)|keras\.Sequential\(|q_network\.QNetwork\(|AtariQNetwork\("
    assert any(re.search(model, c) for c in cells), "a model (Model/Layer subclass, Sequential or network) built on the page"
    assert any(c.endswith(".summary") for c in calls), "the model's summary()"
    step = r"tf\.GradientTape\(\)|\.fit\(|agent\.train\("
    assert any(re.search(step, c) for c in cells), "a training step written on the page"
    assert any(re.search(r"^(for|while) .*:", c, re.M) and re.search(r"\btrain(_step)?\(|\.fit\(", c)
               for c in cells), "the training loop written out in a cell"
    if not path.stem.startswith(("01_", "02_")):  # RL: reported on held-out episodes
        assert any("REPORT_SEED" in c for c in cells), "evaluation on the report seeds (agents.evaluation.REPORT_SEED)"
    if not tfa:
        assert "image" in nb.metadata["kcourse"]["expects"], "a plot"


def test_lessons_appear_in_their_notebooks():
    gen = _generator()
    for name, parts in gen.LESSONS.items():
        cells = _code_cells(nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4))
        for part, source in parts.items():
            assert source in cells, f"{name}: the {part} lesson is not a cell of the notebook"


# -- the twins ----------------------------------------------------------------------------------

TOL = 1e-6


def _lesson_namespace(**extra) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import ops

    return {"keras": keras, "tf": tf, "ops": ops, "np": np, **extra}


def _max_diff(a_list, b_list) -> float:
    import numpy as np

    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(a_list, b_list, strict=True))


def test_recommender_lesson_matches_dot_recommender():
    import keras
    import numpy as np

    from keras_impl.recommender.model import DotRecommender
    from keras_impl.recommender.training import SparseAdam

    gen = _generator()
    rng = np.random.default_rng(0)
    n_users, n_movies, dim, l2, l2_bias = 6, 9, 4, 5.0, 3.0
    x = np.stack([rng.integers(0, n_users, 32), rng.integers(0, n_movies, 32)], axis=1).astype("int32")  # repeats
    y = rng.uniform(0.5, 5.0, (32, 1)).astype("float32")
    counts_u, counts_m = np.bincount(x[:, 0], minlength=n_users), np.bincount(x[:, 1], minlength=n_movies)
    ns = _lesson_namespace()
    exec(gen.LESSONS["01_recommender"]["model"], ns)
    model = ns["MatrixFactorization"](n_users, n_movies, dim, global_mean=3.4, init_std=0.3)
    model(x[:1])
    twin = DotRecommender(n_users, n_movies, dim, l2=l2, l2_bias=l2_bias, global_mean=3.4, user_counts=counts_u,
                          movie_counts=counts_m)
    twin.build((None, 2))
    # the twin keeps [p_u, b_u] and [q_m, b_m] in one table each
    twin.user_embedding.embeddings.assign(np.concatenate([model.user_factors.embeddings, model.user_bias.embeddings], 1))
    twin.movie_embedding.embeddings.assign(np.concatenate([model.movie_factors.embeddings, model.movie_bias.embeddings], 1))
    twin.offset.assign(model.offset)
    assert _max_diff([model(x)], [twin(x)]) <= TOL
    ns.update(model=model, optimizer=keras.optimizers.Adam(0.005), L2=l2, L2_BIAS=l2_bias,
              inverse_user_count=(1.0 / np.maximum(counts_u, 1)).astype("float32"),
              inverse_movie_count=(1.0 / np.maximum(counts_m, 1)).astype("float32"))
    exec(gen.LESSONS["01_recommender"]["step"], ns)
    start = model.user_factors.get_weights()[0]
    ns["train_step"](x, y)
    twin.compile(optimizer=SparseAdam(0.005), loss="mse")
    twin.train_on_batch(x, y)
    factors = twin.factors()
    assert _max_diff([factors["user"], factors["user_bias"], factors["movie"], factors["movie_bias"]],
                     [model.user_factors.embeddings, model.user_bias.embeddings[:, 0], model.movie_factors.embeddings,
                      model.movie_bias.embeddings[:, 0]]) <= TOL
    assert abs(factors["offset"] - float(model.offset.numpy())) <= TOL
    assert np.abs(factors["user"] - start).max() > 1e-3  # the step moved the factors (Adam's first step: ~lr)


@pytest.mark.parametrize("variant,mine", [("my_rnn_cell", "RNN(MyRNNCell)"), ("my_lstm_cell", "RNN(MyLSTMCell)")])
def test_hello_lesson_cells_match_the_library(variant, mine):
    import keras

    from keras_impl import hello

    gen = _generator()
    ns = _lesson_namespace()
    for part in ("cells", "model", "step"):
        exec(gen.LESSONS["02_hello_rnn_lstm"][part], ns)
    data = hello.make_data(list("hello") * 3)
    keras.utils.set_random_seed(3)
    twin = hello.build_model(variant, len(data.vocab), 4)
    model = ns["build_model"](ns["recurrent_layers"](4)[mine], len(data.vocab))
    hello.copy_model_weights(twin, model)
    assert _max_diff([model(data.x[None])], [twin(data.x[None])]) <= TOL
    ns["make_train_step"](model, keras.optimizers.Adam(0.1))(data.x[None], data.y[None])
    hello.train(twin, data, epochs=1, learning_rate=0.1)  # one step
    assert _max_diff(model.get_weights(), twin.get_weights()) <= TOL


def test_tabular_lesson_matches_the_library():
    import numpy as np

    from agents import tabular

    gen = _generator()
    ns = _lesson_namespace()
    exec(gen.LESSONS["03_tabular_rl"]["value_iteration"], ns)
    exec(gen.LESSONS["03_tabular_rl"]["q_learning"], ns)
    for gamma in (0.90, 0.95):
        q, history = ns["q_value_iteration"](tabular.HOML_MDP, gamma)
        q_lib, history_lib = tabular.q_value_iteration(tabular.HOML_MDP, gamma, 50)
        assert np.array_equal(q, q_lib) and np.array_equal(history, history_lib)
    q, history = ns["q_learning"](tabular.HOML_MDP, 0.90)
    q_lib, history_lib = tabular.q_learning(tabular.HOML_MDP, 0.90)
    assert np.array_equal(q, q_lib) and np.array_equal(history, history_lib)
    assert np.round(ns["q_value_iteration"](tabular.HOML_MDP, 0.90)[0][0], 2).tolist() == [18.92, 17.03, 13.62]


def test_policy_gradient_lesson_matches_reinforce():
    import keras
    import numpy as np

    from agents import policy_gradient as pg

    gen = _generator()
    ns = _lesson_namespace()
    exec(gen.LESSONS["04_policy_gradients"]["returns"], ns)
    assert ns["discount_rewards"]([10, 0, -50], 0.8).tolist() == [-22, -40, -50]  # HOML's example
    for mine, lib in zip(ns["discount_and_normalize_rewards"]([[10, 0, -50], [10, 20]], 0.8),
                         pg.discount_and_normalize_rewards([[10, 0, -50], [10, 20]], 0.8)):
        assert np.allclose(mine, lib, atol=1e-12)
    exec(gen.LESSONS["04_policy_gradients"]["model"], ns)
    keras.utils.set_random_seed(5)
    ns.update(policy=ns["build_policy"](4, 2), optimizer=keras.optimizers.Adam(0.01))
    exec(gen.LESSONS["04_policy_gradients"]["step"], ns)
    twin = pg.Reinforce(4, 2, 32, 0.01)
    twin.model.set_weights(ns["policy"].get_weights())
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(20, 4)).astype("float32")
    actions, weights = rng.integers(0, 2, 20).astype("int32"), rng.normal(size=20).astype("float32")
    assert _max_diff([ns["probabilities"](obs)], [twin.probabilities(obs)]) <= TOL
    ns["train_step"](obs, actions, weights)
    twin.train_step(obs, actions, weights)
    assert _max_diff(ns["policy"].get_weights(), twin.model.get_weights()) <= TOL


def _dqn_batch(obs, n_actions, rng, horizons=(1, 2, 3)):
    import numpy as np

    batch = len(obs)
    return (obs[: batch // 2], rng.integers(0, n_actions, batch // 2), rng.normal(size=batch // 2).astype("float32"),
            obs[batch // 2:], (np.arange(batch // 2) % 3 == 0).astype("float32"),  # some terminated
            rng.choice(horizons, batch // 2).astype("float32"))


def _check_dqn_twin(ns, agent, batch, step_args):
    ns["q_net"].set_weights(agent.q_net.get_weights())
    ns["target_net"].set_weights(agent.target_net.get_weights())
    assert _max_diff([ns["q_net"](batch[0])], [agent.q_net(batch[0])]) <= TOL
    ns["train_step"](*step_args)
    agent.train_step(*batch)
    assert _max_diff(ns["q_net"].get_weights(), agent.q_net.get_weights()) <= TOL


@pytest.mark.parametrize("double", [True, False], ids=["double", "dqn"])
def test_dqn_lesson_matches_the_agent(double):
    import gymnasium as gym
    import keras
    import numpy as np

    from agents.configs import DQNConfig
    from agents.dqn import DQNAgent

    gen = _generator()
    keras.utils.set_random_seed(2)
    agent = DQNAgent(DQNConfig(env="CartPole-v1", variant="double" if double else "dqn", learning_rate=2.3e-3),
                     gym.spaces.Box(-5, 5, (4,), "float32"), gym.spaces.Discrete(2))
    agent.target_net.set_weights([w + 0.01 for w in agent.q_net.get_weights()])  # a target that differs
    ns = _lesson_namespace(GAMMA=0.99, DOUBLE=double, MAX_GRAD_NORM=10.0, optimizer=keras.optimizers.Adam(2.3e-3))
    exec(gen.LESSONS["05_dqn_cartpole"]["model"], ns)
    ns.update(q_net=ns["build_q_network"](4, 2), target_net=ns["build_q_network"](4, 2))
    exec(gen.LESSONS["05_dqn_cartpole"]["step"], ns)
    rng = np.random.default_rng(4)
    batch = _dqn_batch(rng.normal(size=(64, 4)).astype("float32"), 2, rng)
    _check_dqn_twin(ns, agent, batch, batch)


def test_frozenlake_lesson_matches_the_agent():
    import gymnasium as gym
    import keras
    import numpy as np

    from agents.configs import DQNConfig
    from agents.dqn import DQNAgent

    gen = _generator()
    keras.utils.set_random_seed(6)
    agent = DQNAgent(DQNConfig(env="FrozenLake-v1", hidden=(32,), learning_rate=3e-3, gamma=0.95),
                     gym.spaces.Discrete(16), gym.spaces.Discrete(4), embedding_dim=16)
    ns = _lesson_namespace(GAMMA=0.95, DOUBLE=False, MAX_GRAD_NORM=10.0, optimizer=keras.optimizers.Adam(3e-3))
    exec(gen.LESSONS["06_frozenlake"]["model"], ns)
    ns.update(q_net=ns["build_q_network"](16, 4), target_net=ns["build_q_network"](16, 4))
    exec(gen.LESSONS["06_frozenlake"]["step"], ns)
    rng = np.random.default_rng(7)
    batch = _dqn_batch(rng.integers(0, 16, 64).astype("int32"), 4, rng, horizons=(1,))
    _check_dqn_twin(ns, agent, batch, batch)


def test_movielens_rl_lesson_matches_the_masked_agent():
    import gymnasium as gym
    import keras
    import numpy as np

    from agents.configs import DQNConfig
    from agents.dqn import DQNAgent
    from agents.movielens_rl import movielens_splitter

    gen = _generator()
    features, n = 5, 6
    keras.utils.set_random_seed(8)
    agent = DQNAgent(DQNConfig(env="MovieLensRecommendation-v0", hidden=(256, 256), learning_rate=1e-3, gamma=0.5),
                     gym.spaces.Box(-5, 5, (features + n,), "float32"), gym.spaces.Discrete(n),
                     splitter=movielens_splitter(n))
    ns = _lesson_namespace(GAMMA=0.5, N_CANDIDATES=n, optimizer=keras.optimizers.Adam(1e-3))
    exec(gen.LESSONS["08_movielens_rl"]["model"], ns)
    ns.update(q_net=ns["build_q_network"](features + n, n), target_net=ns["build_q_network"](features + n, n))
    exec(gen.LESSONS["08_movielens_rl"]["step"], ns)
    rng = np.random.default_rng(9)
    flags = (rng.random((64, n)) < 0.5).astype("float32")
    flags[-4:] = 1.0  # next states with every film recommended: no legal action, no future value
    obs = np.concatenate([rng.normal(size=(64, features)), flags], axis=1).astype("float32")
    batch = _dqn_batch(obs, n, rng, horizons=(1,))
    _check_dqn_twin(ns, agent, batch, batch[:5])
    ns["soft_update"](0.01)
    agent.update_target(0.01)
    assert _max_diff(ns["target_net"].get_weights(), agent.target_net.get_weights()) <= TOL


def test_tfa_lesson_matches_the_library_components():
    # The notebook's network and DdqnAgent, built from the data-efficient preset, against
    # agents.tfa.components.build of the same config: same Q-values, and one agent.train on the same
    # n-step transitions moves the weights alike.
    pytest.importorskip("ale_py")
    pytest.importorskip("tf_agents")
    import numpy as np
    import tensorflow as tf

    from agents.configs import BREAKOUT_CONV_LAYERS, TfaDqnConfig
    from agents.tfa import components
    from agents.tfa.networks import AtariQNetwork
    from keras_impl.config import resolve
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.trajectories import policy_step, trajectory
    from tf_agents.trajectories import time_step as ts
    from tf_agents.utils import common

    gen = _generator()
    cfg = resolve(TfaDqnConfig, {"env": "breakout", "preset": "data-efficient", "seed": 0, "replay_capacity": 64})
    library = components.build(cfg)
    ns = _lesson_namespace(tf_env=library.tf_env, cfg=cfg, AtariQNetwork=AtariQNetwork, dqn_agent=dqn_agent,
                           common=common, BREAKOUT_CONV_LAYERS=BREAKOUT_CONV_LAYERS)
    exec(gen.LESSONS["07_tfa_breakout"]["network"], ns)
    exec(gen.LESSONS["07_tfa_breakout"]["agent"], ns)
    mine, theirs = ns["agent"], library.agent
    for net_mine, net_theirs in ((mine._q_network, theirs._q_network), (mine._target_q_network, theirs._target_q_network)):
        net_mine.set_weights(net_theirs.get_weights())
    rng = np.random.default_rng(0)
    obs = tf.constant(rng.integers(0, 255, (8, 84, 84, 4)), tf.uint8)
    assert _max_diff([mine._q_network(obs)[0]], [theirs._q_network(obs)[0]]) <= TOL
    step = lambda o, r, d: ts.TimeStep(tf.fill([8], ts.StepType.MID), r, d, o)  # noqa: E731
    transition = trajectory.Transition(
        time_step=step(obs, tf.zeros([8]), tf.ones([8])),
        action_step=policy_step.PolicyStep(tf.constant(rng.integers(0, 4, 8), tf.int64), (), ()),
        next_time_step=step(tf.constant(rng.integers(0, 255, (8, 84, 84, 4)), tf.uint8),
                            tf.constant(rng.normal(size=8), tf.float32), tf.constant([1.0, 0.0] * 4, tf.float32)))
    mine.train(transition)
    theirs.train(transition)
    assert _max_diff(mine._q_network.get_weights(), theirs._q_network.get_weights()) <= TOL
    assert int(ns["train_step"].numpy()) == 1
