"""Recommender benchmark: the Keras port vs the PyTorch course loop on the same synthetic split.

    python benchmarks/recommender.py                      # course-size synthetic set, 5 epochs, batch 64
    python benchmarks/recommender.py --size small --epochs 2   # a quick look
    python benchmarks/recommender.py --scale 20m          # load + preprocess + sample 20M ratings

Prints, side by side: validation MSE per epoch, training samples per second (training steps only,
validation excluded, for both), and each implementation's peak resident memory (each runs in its
own process, so the figure includes its framework). Then the Keras throughput at several batch
sizes (one epoch each) and the best one. The generator's oracle MSE (the MSE of the true expected
rating on the validation split) is the floor any model can reach.

The PyTorch side is the exam's training template: ``DataLoader(TensorDataset(X_train, y_train),
batch_size=64, shuffle=True)``, ``torch.optim.Adam(net.parameters())``, ``MSELoss``, one
``val_loss`` line per epoch, on the CPU. Its net follows the course's MLP recommender ("11wk-1
solution 2" style, as in SPEC's reference run): user and film embeddings (20 each) concatenated
-> Linear(40, 15) -> ReLU -> Linear(15, 1) -> sigmoid * 5.

``--scale 20m`` times ``read_movielens`` + ``course_preprocess`` (merge order, sampling of 5000
users, re-indexing, split) on a 20,000,263-rating synthetic folder (generated once, cached) in a
fresh process and reports its wall time and peak memory.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))



def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def course_data(size: str, seed: int):
    from keras_impl import movielens

    folder = movielens.synthetic_folder(size, seed=seed)
    data = movielens.load_course_data(folder)
    oracle = movielens.oracle_mse(folder, data.rows_val, data.y_val)
    return data, oracle


# ----------------------------------------------------------------------------------------------
# Keras
# ----------------------------------------------------------------------------------------------


def keras_config(args, **fields):
    """The Keras model's ``RecommenderConfig``: the benchmark's settings, then ``--config KEY=VALUE``."""
    from keras_impl import recommender as rec
    from keras_impl.config import apply_overrides

    fields = {"batch_size": args.batch_size, "epochs": args.epochs, "seed": args.seed,
              "optimizer": args.keras_optimizer, **fields}
    return apply_overrides(rec.RecommenderConfig(**fields), args.config)


def run_keras(args) -> dict:
    import keras

    from keras_impl import recommender as rec, runtime

    cfg = keras_config(args)
    runtime.set_intra_op_threads(cfg.intra_op_threads)  # as rec.train does, before the first TF op
    runtime.seed_everything(args.seed)
    data, oracle = course_data(args.size, args.seed)

    class TrainTimer(keras.callbacks.Callback):
        """Seconds spent in training steps (from epoch start to the validation pass)."""

        def __init__(self):
            super().__init__()
            self.seconds, self.start = [], None

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_test_begin(self, logs=None):
            if self.start is not None:
                self.seconds.append(time.perf_counter() - self.start)
                self.start = None

    strategy = runtime.strategy("auto")
    with strategy.scope():
        model = rec.build_model(data, cfg)
        rec.compile_model(model, cfg, len(data.x_train))
    train_ds = rec.make_dataset(data.x_train, data.y_train, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = rec.make_dataset(data.x_val, data.y_val, 8192, shuffle=False)
    timer, log = TrainTimer(), rec.CourseLog(printer=lambda line: print("  keras " + line, flush=True))
    model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=0, callbacks=[timer, log])
    # The first epoch includes tracing and XLA compilation; report the steady state too.
    n = len(data.x_train)
    result = {"impl": "keras", "val_mse": log.val_mse, "oracle_val_mse": oracle,
              "samples_per_s": n * len(timer.seconds) / sum(timer.seconds),
              "samples_per_s_after_epoch1": (n * (len(timer.seconds) - 1) / sum(timer.seconds[1:])
                                             if len(timer.seconds) > 1 else None),
              "epoch_seconds": timer.seconds, "n_train": n, "n_val": len(data.x_val)}
    if args.batch_sizes:
        sweep = {}
        for batch in args.batch_sizes:
            cfg_b = keras_config(args, epochs=1, batch_size=batch)
            model_b = rec.build_model(data, cfg_b)
            rec.compile_model(model_b, cfg_b, n)
            ds = rec.make_dataset(data.x_train, data.y_train, batch, shuffle=True, seed=args.seed)
            model_b.fit(ds.take(max(1, min(cfg_b.steps_per_execution * 2, n // batch // 4))), verbose=0)  # compile
            start = time.perf_counter()
            model_b.fit(ds, epochs=1, verbose=0)
            sweep[batch] = n / (time.perf_counter() - start)
            print(f"  keras batch {batch:>6}: {sweep[batch]:>12,.0f} samples/s", flush=True)
        result["throughput_by_batch"] = sweep
    result["peak_rss_mib"] = peak_rss_mib()
    return result


# ----------------------------------------------------------------------------------------------
# PyTorch: the exam's template
# ----------------------------------------------------------------------------------------------


def run_torch(args) -> dict:
    import torch

    threads = _torch_threads(args)
    torch.manual_seed(args.seed)
    data, oracle = course_data(args.size, args.seed)
    X_train, X_val = torch.tensor(data.x_train, dtype=torch.int64), torch.tensor(data.x_val, dtype=torch.int64)
    y_train, y_val = torch.tensor(data.y_train), torch.tensor(data.y_val)
    net = _torch_net(data.n_users, data.n_movies)  # the course's MLP net
    loss_fn = torch.nn.MSELoss()
    optimizr = torch.optim.Adam(net.parameters())
    ds = torch.utils.data.TensorDataset(X_train, y_train)
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True)
    val_mse, seconds = [], []
    for epoc in range(args.epochs):
        start = time.perf_counter()
        for xi, yi in dl:
            yi_hat = net(xi)
            loss = loss_fn(yi_hat, yi)
            loss.backward()
            optimizr.step()
            optimizr.zero_grad()
        seconds.append(time.perf_counter() - start)
        with torch.no_grad():
            val_mse.append(float(loss_fn(net(X_val), y_val)))
        print(f"  torch epoch: {epoc + 1}\t val_loss: {val_mse[-1]:.4f}", flush=True)
    n = len(X_train)
    return {"impl": "torch", "val_mse": val_mse, "oracle_val_mse": oracle,
            "samples_per_s": n * len(seconds) / sum(seconds), "epoch_seconds": seconds,
            "threads": threads, "peak_rss_mib": peak_rss_mib()}


# ----------------------------------------------------------------------------------------------
# --scale 20m
# ----------------------------------------------------------------------------------------------


def run_throughput(args) -> dict:
    """Training throughput only: ``--steps`` batches of ``--batch-size``, wall and CPU time.

    CPU time (``time.process_time``: all threads of the process) makes a fair comparison on a
    shared machine, where wall-clock samples/s mostly measure the other jobs.
    """
    data, _ = course_data(args.size, args.seed)
    n = args.steps * args.batch_size
    x, y = data.x_train[:n], data.y_train[:n]
    if args.framework == "torch":
        import torch

        threads = _torch_threads(args)
        net = _torch_net(data.n_users, data.n_movies)
        loss_fn, optimizr = torch.nn.MSELoss(), torch.optim.Adam(net.parameters())
        dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.tensor(x, dtype=torch.int64),
                                                                        torch.tensor(y)),
                                         batch_size=args.batch_size, shuffle=True)
        wall, cpu = time.perf_counter(), time.process_time()
        for xi, yi in dl:
            loss = loss_fn(net(xi), yi)
            loss.backward()
            optimizr.step()
            optimizr.zero_grad()
    else:
        from keras_impl import recommender as rec, runtime

        cfg = keras_config(args, epochs=1)
        runtime.set_intra_op_threads(cfg.intra_op_threads)
        threads = cfg.intra_op_threads
        model = rec.build_model(data, cfg)
        rec.compile_model(model, cfg, n)
        ds = rec.make_dataset(x, y, args.batch_size, shuffle=True, seed=args.seed)
        model.fit(ds.take(cfg.steps_per_execution), verbose=0)  # trace and compile first
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(ds, epochs=1, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"impl": args.framework, "samples": n, "wall_s": wall, "cpu_s": cpu, "samples_per_s": n / wall, "threads": threads,
            "samples_per_cpu_s": n / cpu, "peak_rss_mib": peak_rss_mib()}


def _torch_threads(args) -> int:
    """Apply ``--torch-threads`` (0 keeps PyTorch's default) and return the thread count in use."""
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    return torch.get_num_threads()


def _torch_net(n_users: int, n_movies: int):
    import torch

    class Net(torch.nn.Module):
        """The course's MLP recommender: embeddings concatenated -> MLP -> sigmoid * 5."""

        def __init__(self):
            super().__init__()
            self.ebdd1 = torch.nn.Embedding(n_users, 20)
            self.ebdd2 = torch.nn.Embedding(n_movies, 20)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(40, 15), torch.nn.ReLU(), torch.nn.Linear(15, 1),
                                           torch.nn.Sigmoid())

        def forward(self, X):
            features = torch.concat([self.ebdd1(X[:, 0]), self.ebdd2(X[:, 1])], axis=1)
            return self.mlp(features) * 5

    return Net()


def run_scale(args) -> dict:
    from keras_impl import movielens

    folder = Path(args.folder)
    start = time.perf_counter()
    ratings, movies = movielens.read_movielens(folder)
    loaded = time.perf_counter() - start
    data = movielens.course_preprocess(ratings, movies)
    total = time.perf_counter() - start
    return {"impl": "scale", "ratings": len(ratings), "load_s": loaded, "preprocess_s": total - loaded,
            "total_s": total, "course_rows": len(data.frame), "users": data.n_users, "films": data.n_movies,
            "train": len(data.x_train), "val": len(data.x_val), "peak_rss_mib": peak_rss_mib()}


# ----------------------------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------------------------


def child(impl: str, argv: list[str]) -> dict:
    """Run one implementation in a fresh process (clean peak-memory figure) and read its JSON."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"kcourse-bench-{impl}-{os.getpid()}.json"
    cmd = [sys.executable, __file__, "--impl", impl, "--json", str(out)] + argv
    subprocess.run(cmd, check=True)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="course", help="synthetic size: tiny, small, course, 20m")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-sizes", default="64,256,1024,4096,16384",
                        help="Keras throughput sweep (one epoch each); empty to skip")
    parser.add_argument("--keras-optimizer", default="sparse-adam", choices=("sparse-adam", "adam"))
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field of the Keras model's RecommenderConfig (repeatable), e.g. "
                             "--config posterior=map --config genres=false")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch.set_num_threads for the PyTorch loop (0: PyTorch's default, one per core)")
    parser.add_argument("--scale", choices=("20m",), default=None, help="time load+preprocess+sample of 20M ratings")
    parser.add_argument("--throughput", action="store_true",
                        help="only time --steps training batches of each framework (wall and CPU seconds)")
    parser.add_argument("--steps", type=int, default=2000, help="batches timed with --throughput")
    parser.add_argument("--framework", default="keras", help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=("keras", "torch", "scale", "throughput"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if args.impl:  # child process
        result = {"keras": run_keras, "torch": run_torch, "scale": run_scale,
                  "throughput": run_throughput}[args.impl](args)
        Path(args.json).write_text(json.dumps(result))
        return 0

    print(f"machine: {os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.1f} at start "
          "(the numbers are only comparable within one run)", flush=True)
    if args.scale:
        from keras_impl import movielens

        t0 = time.perf_counter()
        folder = movielens.synthetic_folder("20m", seed=args.seed)
        print(f"20m synthetic folder: {folder} (ready in {time.perf_counter() - t0:.0f}s, generated once and cached)")
        r = child("scale", ["--folder", str(folder)])
        print(f"load {r['load_s']:.1f}s + preprocess/sample {r['preprocess_s']:.1f}s = {r['total_s']:.1f}s; "
              f"peak memory {r['peak_rss_mib'] / 1024:.2f} GiB; {r['ratings']:,} ratings -> {r['course_rows']:,} rows, "
              f"{r['users']} users, {r['films']} films; train {r['train']:,} / val {r['val']:,}")
        print(f"target: < 120 s and < 6 GiB -> {'met' if r['total_s'] < 120 and r['peak_rss_mib'] < 6 * 1024 else 'MISSED'}")
        return 0

    try:  # check --config here: a bad key or value is one clear line, not a child's traceback
        keras_config(args)
    except ValueError as err:
        parser.error(str(err))
    config_argv = [item for pair in args.config for item in ("--config", pair)]  # passed on to the Keras children
    if args.throughput:
        rows = {}
        for framework in ("keras", "torch"):
            rows[framework] = child("throughput", ["--framework", framework, "--size", args.size, "--steps",
                                                   str(args.steps), "--batch-size", str(args.batch_size),
                                                   "--keras-optimizer", args.keras_optimizer,
                                                   "--torch-threads", str(args.torch_threads)] + config_argv)
            r = rows[framework]
            print(f"{framework:>6} batch {args.batch_size} ({r['threads']} intra-op threads): {r['samples']:,} samples, wall {r['wall_s']:.1f}s "
                  f"({r['samples_per_s']:,.0f}/s), CPU {r['cpu_s']:.1f}s ({r['samples_per_cpu_s']:,.0f} per CPU-s), "
                  f"peak {r['peak_rss_mib']:,.0f} MiB", flush=True)
        print(f"keras / torch: {rows['keras']['samples_per_s'] / rows['torch']['samples_per_s']:.1f}x wall, "
              f"{rows['keras']['samples_per_cpu_s'] / rows['torch']['samples_per_cpu_s']:.1f}x per CPU-second")
        return 0

    common = ["--size", args.size, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
              "--seed", str(args.seed), "--keras-optimizer", args.keras_optimizer, "--torch-threads", str(args.torch_threads)]
    print(f"== Keras ({args.keras_optimizer}), synthetic {args.size}, batch {args.batch_size}", flush=True)
    k = child("keras", common + config_argv + ["--batch-sizes", ",".join(map(str, args.batch_sizes))])
    t = None
    if not args.skip_torch:
        print(f"== PyTorch course loop, batch {args.batch_size}", flush=True)
        t = child("torch", common + ["--batch-sizes", ""])
    print(f"\ntrain {k['n_train']:,} / val {k['n_val']:,}; oracle val MSE {k['oracle_val_mse']:.4f}")
    print(f"{'epoch':>5}  {'keras val MSE':>13}  {'torch val MSE':>13}")
    for e in range(args.epochs):
        tv = f"{t['val_mse'][e]:.4f}" if t else "-"
        print(f"{e + 1:>5}  {k['val_mse'][e]:>13.4f}  {tv:>13}")
    print(f"{'samples/s':>10}  {k['samples_per_s']:>12,.0f}  {t['samples_per_s'] if t else float('nan'):>12,.0f}  "
          f"(keras after epoch 1: {k['samples_per_s_after_epoch1'] or float('nan'):,.0f})")
    print(f"{'peak MiB':>10}  {k['peak_rss_mib']:>12,.0f}  {t['peak_rss_mib'] if t else float('nan'):>12,.0f}")
    final = k["val_mse"][-1]
    print(f"keras final val MSE {final:.4f} = oracle {k['oracle_val_mse']:.4f} x {final / k['oracle_val_mse']:.3f} "
          f"(target <= 1.10)")
    if t:
        print(f"keras vs torch: val MSE {final:.4f} vs {t['val_mse'][-1]:.4f} (target: lower); "
              f"speed {k['samples_per_s'] / t['samples_per_s']:.1f}x (target >= 5x)")
    if k.get("throughput_by_batch"):
        best = max(k["throughput_by_batch"].items(), key=lambda kv: kv[1])
        print(f"keras best batch size {best[0]}: {best[1]:,.0f} samples/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
