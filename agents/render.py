"""Rendering: record a policy's episode as ``rgb_array`` frames, write GIF/MP4, show it inline.

Everything here works headless (no display, no X server): Gymnasium's classic-control and Box2D
environments draw ``rgb_array`` frames with pygame's off-screen surfaces, and ale-py renders
Atari frames itself, so no virtual display (pyvirtualdisplay / Xvfb) is needed for the course's
environments. You would only need one for an environment that can render *only* to a window
(``render_mode="human"``), which none of ours does.

Example:
    >>> from agents.render import record_episode, write_gif, write_mp4
    >>> from agents.evaluation import from_single
    >>> frames = record_episode(from_single(lambda o: int(o[2] > 0)), "CartPole-v1", seed=0)
    >>> write_gif(frames, "cartpole.gif"); write_mp4(frames, "cartpole.mp4")  # doctest: +SKIP

In a notebook, ``show(frames)`` displays the course's jshtml animation (matplotlib
``FuncAnimation``). For training runs, :func:`record_video` wraps one env (env 0, CleanRL's
``--capture-video``) with Gymnasium's ``RecordVideo``.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Callable, Sequence

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame: never try to open a window

import imageio.v2 as imageio  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import error as gym_error  # noqa: E402
from gymnasium.wrappers import RecordVideo  # noqa: E402
from PIL import Image  # noqa: E402

from agents.atari import make_agent_env  # noqa: E402


def record_episode(policy: Callable[[np.ndarray], np.ndarray], env_id: str, seed: int = 0, max_steps: int = 1000,
                   env_kwargs: dict | None = None, env=None) -> list[np.ndarray]:
    """Play one episode with a batched policy and return its ``rgb_array`` frames.

    Args:
        policy: batched policy ``[N, *obs] -> [N]`` (see :mod:`agents.evaluation`); called with
            ``N = 1`` once per step.
        env_id: environment id or alias.
        seed: the episode's reset seed.
        max_steps: the most steps to record.
        env_kwargs: passed to :func:`agents.envs.make_env`.
        env: an already built env with ``render_mode="rgb_array"`` (e.g. Atari wrappers); then
            ``env_id``/``env_kwargs`` are ignored and the env is not closed.

    Returns:
        ``[T + 1]`` frames ``[H, W, 3] uint8``: the first after ``reset``, one after each step.
    """
    own = env is None
    if own:
        env = make_agent_env(env_id, seed=seed, render=True, **(env_kwargs or {}))
    try:
        obs, _ = env.reset(seed=seed)
        frames = [np.asarray(env.render())]
        for _ in range(max_steps):
            action = np.asarray(policy(np.asarray(obs)[None]))[0]
            action = action.item() if np.ndim(action) == 0 else action
            obs, _, terminated, truncated, _ = env.step(action)
            frames.append(np.asarray(env.render()))
            if terminated or truncated:
                break
    finally:
        if own:
            env.close()
    return frames


def record_gif(policy, env_id: str, path, seed: int = 0, env_kwargs: dict | None = None, max_steps: int = 500,
               every: int = 2, scale: int = 2, fps: int = 25) -> tuple[Path, int]:
    """Play one greedy episode (:func:`record_episode`) and write it as a GIF.

    Keeps every ``every``-th frame (and the last), downscaled ``scale`` times, so a 500-step
    CartPole episode stays a few hundred KB. Returns ``(path, number of steps played)``.
    """
    frames = record_episode(policy, env_id, seed=seed, max_steps=max_steps, env_kwargs=env_kwargs)
    kept = frames[::every] + ([frames[-1]] if (len(frames) - 1) % every else [])
    write_gif([f[::scale, ::scale] for f in kept], path, fps=fps)
    return Path(path), len(frames) - 1


def _check_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(frames) == 0:
        raise ValueError("Received an invalid value for argument `frames`: expected at least one frame, got none")
    out = [np.asarray(f) for f in frames]
    if out[0].ndim not in (2, 3):
        raise ValueError(f"Received an invalid value for argument `frames`: expected [H, W(, C)] images, "
                         f"got shape {out[0].shape}")
    return [f.astype(np.uint8) if f.dtype != np.uint8 else f for f in out]


def write_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: int = 30, loop: int = 0) -> Path:
    """Write frames as an animated GIF; ``loop=0`` repeats forever.

    Pillow (imageio's GIF backend) merges consecutive identical frames into one longer frame,
    so a GIF may hold fewer frames than given; its total duration is ``len(frames) / fps``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = _check_frames(frames)
    # Written with Pillow directly rather than imageio.imwrite: imageio quantises every frame to
    # its own adaptive palette, which is slow for long episodes. These renders use few
    # colours, so one exact palette for the whole episode (a numpy lookup) is much faster and
    # lossless; only frames with more than 256 colours fall back to Pillow's quantiser.
    rgb = [f if f.ndim == 3 and f.shape[-1] == 3 else np.asarray(Image.fromarray(f).convert("RGB")) for f in frames]
    images = _exact_palette_images(rgb)
    if images is None:
        palette = Image.fromarray(np.concatenate(rgb[:: max(1, len(rgb) // 4)][:4])).quantize(
            colors=256, method=Image.Quantize.FASTOCTREE)
        images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in rgb]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=int(round(1000 / fps)),
                   loop=loop)
    return path


def _exact_palette_images(rgb: list[np.ndarray]):
    """Palette ("P") images sharing one exact palette, or None when the episode uses > 256 colours."""
    packed = [(f[..., 0].astype(np.uint32) << 16) | (f[..., 1].astype(np.uint32) << 8) | f[..., 2] for f in rgb]
    colours = np.unique(np.concatenate([np.unique(p) for p in packed]))
    if len(colours) > 256:
        return None
    flat = np.zeros((256, 3), np.uint8)
    flat[: len(colours)] = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1)
    images = []
    for p in packed:
        image = Image.fromarray(np.searchsorted(colours, p).astype(np.uint8), mode="P")
        image.putpalette(flat.ravel().tolist())
        images.append(image)
    return images


def write_mp4(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: int = 30) -> Path:
    """Write frames as an H.264 MP4 with imageio-ffmpeg (the bundled ffmpeg binary)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = _check_frames(frames)
    h, w = frames[0].shape[:2]
    # yuv420p (the format every player reads) needs even sides: pad by one row/column rather
    # than let imageio rescale the picture to a multiple of 16.
    pad = ((0, h % 2), (0, w % 2)) + (((0, 0),) if frames[0].ndim == 3 else ())
    with imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", macro_block_size=1,
                            pixelformat="yuv420p", ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(np.pad(frame, pad) if (h % 2 or w % 2) else frame)
    return path


def write_video(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: int = 30) -> Path:
    """GIF or MP4 by the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return write_gif(frames, path, fps)
    if suffix == ".mp4":
        return write_mp4(frames, path, fps)
    raise ValueError(f"Received an invalid value for argument `path`: expected a .gif or .mp4 file, got {path!r}")


def animation(frames: Sequence[np.ndarray], interval: int = 40, repeat: bool = False, figsize=(5, 4)):
    """A matplotlib ``FuncAnimation`` of the frames (HOML's ``plot_animation``)."""
    import matplotlib

    backend = matplotlib.get_backend().lower()
    # Headless: no window backend. A notebook's inline backend ("inline" since matplotlib 3.9, or its
    # module path) stays: switching it to Agg would stop every later plot of the notebook from showing.
    if backend != "agg" and "inline" not in backend and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    frames = _check_frames(frames)
    fig = plt.figure(figsize=figsize)
    patch = plt.imshow(frames[0])
    plt.axis("off")

    def update(i):
        patch.set_data(frames[i])
        return (patch,)

    anim = FuncAnimation(fig, update, frames=len(frames), interval=interval, repeat=repeat)
    plt.close(fig)  # the notebook shows the animation, not a stray still figure
    return anim


def show(frames: Sequence[np.ndarray], interval: int = 40):
    """The course's ``show(ims)``: an inline jshtml animation for notebooks.

    Returns an ``IPython.display.HTML`` object (it displays itself as a cell's last
    expression) or, without IPython, the HTML text.
    """
    html = animation(frames, interval=interval).to_jshtml()
    try:
        from IPython.display import HTML
    except ImportError:
        return html
    return HTML(html)


# ----------------------------------------------------------------------------------------------
# Opt-in video of training episodes (env 0 only)
# ----------------------------------------------------------------------------------------------


class ImageioRecordVideo(RecordVideo):
    """Gymnasium's ``RecordVideo`` writing its MP4 with imageio instead of MoviePy.

    Gymnasium 1.x writes its videos with MoviePy (the ``gymnasium[other]`` extra). We already
    depend on imageio + imageio-ffmpeg, so rather than add MoviePy we keep the wrapper (its
    triggers, naming and bookkeeping) and replace only the final write.
    """

    def __init__(self, env, video_folder, **kwargs):
        try:
            super().__init__(env, video_folder, **kwargs)
        except gym_error.DependencyNotInstalled:
            # RecordVideo checks for MoviePy as the very last statement of __init__, after
            # every attribute is set; the writing below does not need it.
            pass

    def stop_recording(self):
        assert self.recording, "stop_recording was called, but no recording was started"
        if self.recorded_frames:
            write_mp4(self.recorded_frames, os.path.join(self.video_folder, f"{self._video_name}.mp4"),
                      fps=self.frames_per_sec)
        self.recorded_frames = []
        self.recording = False
        self._video_name = None


def record_video(env, video_folder: str | os.PathLike, episode_trigger: Callable[[int], bool] | None = None,
                 name_prefix: str = "train"):
    """Wrap ``env`` (made with ``render=True``) so that chosen episodes are saved as MP4.

    Files are ``{video_folder}/{name_prefix}-episode-{k}.mp4``. By default the episodes
    0, 1, 8, 27, ..., 1000, 2000, ... are recorded (Gymnasium's capped cubic schedule).
    Wrap env 0 only: recording every env would slow training for no benefit.
    """
    if getattr(env, "render_mode", None) != "rgb_array":
        raise ValueError("Received an invalid value for argument `env`: expected an env made with "
                         f"render_mode='rgb_array' (make_env(..., render=True)), got {getattr(env, 'render_mode', None)!r}")
    wrapper = RecordVideo if importlib.util.find_spec("moviepy") else ImageioRecordVideo
    return wrapper(env, str(video_folder), episode_trigger=episode_trigger or capped_cubic_schedule,
                   name_prefix=name_prefix)


def capped_cubic_schedule(episode: int) -> bool:
    """Record episodes 0, 1, 8, 27, ... (cubes) below 1000, then every 1000th.

    Gymnasium's ``capped_cubic_video_schedule``, restated because its module imports MoviePy.
    """
    if episode < 1000:
        return int(round(episode ** (1.0 / 3))) ** 3 == episode
    return episode % 1000 == 0
