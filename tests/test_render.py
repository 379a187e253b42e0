"""Rendering works headless: frames, GIF, MP4, the notebook animation, the training video wrapper."""
import os

import numpy as np
import pytest

from agents import render
from agents.envs import make_env
from agents.policies import basic_policy


@pytest.fixture(scope="module")
def frames():
    return render.record_episode(basic_policy, "CartPole-v1", seed=0)


def test_record_episode_frames(frames):
    env = make_env("CartPole-v1", seed=0)
    obs, _ = env.reset(seed=0)
    steps, done = 0, False
    while not done:  # the same seeded episode, without rendering
        obs, _, terminated, truncated, _ = env.step(int(basic_policy(obs[None])[0]))
        steps, done = steps + 1, terminated or truncated
    assert len(frames) == steps + 1  # the reset frame and one per step
    assert frames[0].shape == (400, 600, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])
    assert len(render.record_episode(basic_policy, "CartPole-v1", seed=0, max_steps=5)) == 6


def test_write_gif(tmp_path, frames):
    from PIL import Image

    path = render.write_gif(frames, tmp_path / "episode.gif", fps=25)
    assert path == tmp_path / "episode.gif" and path.stat().st_size > 0
    with Image.open(path) as gif:
        assert gif.size == (600, 400)  # (width, height)
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
        # Pillow merges runs of identical consecutive frames into one longer frame.
        distinct = 1 + sum(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))
        assert gif.n_frames == distinct
        assert sum(durations) == len(frames) * 40  # 25 fps: 40 ms per recorded frame
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"))
    assert np.abs(first.astype(int) - frames[0].astype(int)).mean() < 2  # a faithful picture


def test_write_mp4(tmp_path, frames):
    import imageio.v2 as imageio

    path = render.write_mp4(frames, tmp_path / "episode.mp4", fps=30)
    assert path.name == "episode.mp4" and path.stat().st_size > 0
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        assert reader.count_frames() == len(frames)
        assert reader.get_meta_data()["size"] == (600, 400)
    finally:
        reader.close()


def test_write_mp4_pads_odd_sizes(tmp_path):
    import imageio.v2 as imageio

    odd = [np.full((33, 47, 3), i * 20, np.uint8) for i in range(5)]
    path = render.write_video(odd, tmp_path / "odd.mp4")
    reader = imageio.get_reader(path, format="FFMPEG")
    assert reader.count_frames() == 5 and reader.get_meta_data()["size"] == (48, 34)
    reader.close()
    with pytest.raises(ValueError, match="path"):
        render.write_video(odd, tmp_path / "odd.avi")
    with pytest.raises(ValueError, match="frames"):
        render.write_gif([], tmp_path / "empty.gif")


def test_show_returns_jshtml(frames):
    html = render.show(frames[:4])
    text = html.data if hasattr(html, "data") else html
    assert "<script" in text and "anim" in text.lower()


def test_record_video_wraps_env0(tmp_path):
    env = render.record_video(make_env("CartPole-v1", seed=0, render=True), tmp_path / "videos",
                              episode_trigger=lambda episode: episode in (0, 2))
    for episode in range(3):
        env.reset(seed=episode)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
    env.close()
    assert sorted(os.listdir(tmp_path / "videos")) == ["train-episode-0.mp4", "train-episode-2.mp4"]
    assert [k for k in range(2001) if render.capped_cubic_schedule(k)] == [0, 1, 8, 27, 64, 125, 216, 343, 512,
                                                                          729, 1000, 2000]
    with pytest.raises(ValueError, match="rgb_array"):
        render.record_video(make_env("CartPole-v1"), tmp_path / "nope")


def test_lunarlander_renders_headless():
    pytest.importorskip("Box2D")
    frames = render.record_episode(lambda obs: np.zeros(len(obs), int), "LunarLander-v3", seed=0, max_steps=3)
    assert len(frames) == 4 and frames[0].shape == (400, 600, 3)
