"""DrQ's image augmentation (Kostrikov et al. 2020): random shifts of stacked Atari frames.

Plain TensorFlow (no Keras), so the hand-written agents (Keras 3) and the TF-Agents pipeline
(``tf_keras``) share it: :func:`random_shift` is applied by :class:`agents.dqn.DQNAgent` to its
training batches and by :class:`agents.tfa.networks.RandomShift` when a TF-Agents network is
called with ``training=True``; acting never sees it.
"""
from __future__ import annotations

import tensorflow as tf


def shift_frames(frames, dy, dx):
    """Each image of ``frames [B, H, W, C]`` moved by ``(dy[b], dx[b])`` pixels, edge pixels repeated.

    DrQ's augmentation pads a frame by ``p`` replicated edge pixels and crops ``H x W`` at a random
    offset ``o`` in ``[0, 2p]``; that reads pixel ``clip(i + o - p)`` of the original, which is what
    this does with one gather per axis (no padded copy). ``dy = dx = 0`` returns ``frames``.

    Both gathers pick whole rows: TensorFlow's CPU gather copies a long slice fast and a
    pixel-sized one slowly, so the column gather runs on the transposed images. A stack of four
    uint8 frames travels as one 32-bit word per pixel (``tf.bitcast``), so that a transpose moves
    words, not bytes; the result is the same bit for bit either way.
    """
    packed = frames.dtype == tf.uint8 and frames.shape[-1] == 4  # Atari's stacks: 4 uint8 = 1 word
    pixels = tf.bitcast(frames, tf.uint32) if packed else frames  # [B, H, W] or [B, H, W, C]
    height, width = tf.shape(pixels)[1], tf.shape(pixels)[2]
    rows = tf.clip_by_value(tf.range(height)[None, :] + dy[:, None], 0, height - 1)  # [B, H]
    cols = tf.clip_by_value(tf.range(width)[None, :] + dx[:, None], 0, width - 1)  # [B, W]
    swap = [0, 2, 1] if packed else [0, 2, 1, 3]  # rows <-> columns
    pixels = tf.gather(pixels, rows, axis=1, batch_dims=1)  # [B, H, W, ...]
    pixels = tf.transpose(tf.gather(tf.transpose(pixels, swap), cols, axis=1, batch_dims=1), swap)
    return tf.bitcast(pixels, tf.uint8) if packed else pixels


def random_shift(frames, pad: int, generator: tf.random.Generator):
    """DrQ's random shift (Kostrikov et al. 2020: pad 4, random crop): a shift in ``[-pad, pad]`` per image and axis."""
    shifts = generator.uniform((2, tf.shape(frames)[0]), -pad, pad + 1, dtype=tf.int32)  # [2, B]
    return shift_frames(frames, shifts[0], shifts[1])
