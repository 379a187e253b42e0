"""The exam's hand-written recurrent cells (part 2, questions 3 and 6) and moving weights between cells.

* :class:`RNNCell` -- ``h_t = tanh(i2h(x_t) + h2h(h_{t-1}))``, for ``keras.layers.RNN``;
* :class:`HandLSTMCell` -- the LSTM's gates written out;
* :func:`cell_variables` / :func:`copy_cell_weights` -- the ``(kernel, recurrent_kernel, bias)`` of
  any of these or of Keras' ``SimpleRNNCell`` / ``LSTMCell``, so a hand-written cell can start from
  a built-in cell's weights (and :mod:`keras_impl.torch_import` can load PyTorch weights).

Both cells compute in the op order of Keras' own cells, so a hand-written cell and its built-in
twin started from the same weights give bit-identical values and gradients on the CPU.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops


def _check_units(units) -> int:
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
        raise ValueError(f"Received an invalid value for argument `units`, expected a positive integer, got {units!r}")
    return int(units)


@keras.saving.register_keras_serializable(package="kcourse")
class RNNCell(keras.layers.Layer):
    """The exam's ``rNNCell``: ``h_t = tanh(i2h(x_t) + h2h(h_{t-1}))``, for ``keras.layers.RNN``.

    ``i2h`` carries the one bias (Keras' ``SimpleRNNCell`` has one; PyTorch's ``RNNCell`` has
    two, ``bias_ih`` and ``bias_hh``: :func:`load_torch_rnn` sums them). The sum is formed as
    ``(x @ W + b) + h @ U``, the order ``SimpleRNNCell.call`` uses, so the two cells give
    bit-identical values and gradients.

    Args:
        units: size of the hidden state.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.state_size = self.units
        self.output_size = self.units
        self.i2h = keras.layers.Dense(self.units, name="i2h")  # x @ W + b
        self.h2h = keras.layers.Dense(self.units, use_bias=False, name="h2h",
                                      kernel_initializer="orthogonal")  # h @ U

    def build(self, input_shape):
        self.i2h.build(input_shape)
        self.h2h.build((input_shape[0], self.units))
        self.built = True

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states  # [B, H]
        h = ops.tanh(self.i2h(inputs) + self.h2h(h_prev))  # [B, H]
        return h, ([h] if isinstance(states, (list, tuple)) else h)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kcourse")
class HandLSTMCell(keras.layers.Layer):
    """An LSTM cell with the gates written out, for ``keras.layers.RNN``.

    ``z = x @ W + h @ U + b`` (``[B, 4H]``, columns in Keras' gate order ``[i, f, c, o]``,
    which is PyTorch's ``[i, f, g, o]`` with ``g`` called ``c``), then::

        i = sigmoid(z_i)   f = sigmoid(z_f)   c~ = tanh(z_c)   o = sigmoid(z_o)
        c_t = f * c_{t-1} + i * c~
        h_t = o * tanh(c_t)

    The bias is a separate weight added last because ``LSTMCell`` (implementation 2) adds it
    after ``h @ U``: ``(x @ W + b) + h @ U`` would round differently, and after 200 Adam
    steps the fitted values would drift apart.

    Args:
        units: size of the hidden and cell states.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.state_size = [self.units, self.units]  # h, c
        self.output_size = self.units
        self.i2h = keras.layers.Dense(4 * self.units, use_bias=False, name="i2h")  # x @ W
        self.h2h = keras.layers.Dense(4 * self.units, use_bias=False, name="h2h",
                                      kernel_initializer="orthogonal")  # h @ U

    def build(self, input_shape):
        self.i2h.build(input_shape)
        self.h2h.build((input_shape[0], self.units))
        units = self.units
        # Keras' unit_forget_bias: forget-gate bias starts at 1, the others at 0.
        self.bias = self.add_weight(
            shape=(4 * units,), name="bias",
            initializer=lambda shape, dtype=None: ops.concatenate(
                [ops.zeros((units,), dtype), ops.ones((units,), dtype), ops.zeros((2 * units,), dtype)]),
        )
        self.built = True

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]  # [B, H], [B, H]
        z = self.i2h(inputs) + self.h2h(h_prev) + self.bias  # [B, 4H]
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=1)
        i = ops.sigmoid(z_i)  # input gate
        f = ops.sigmoid(z_f)  # forget gate
        c = f * c_prev + i * ops.tanh(z_c)  # new cell state
        o = ops.sigmoid(z_o)  # output gate
        h = o * ops.tanh(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def recurrent_cell(layer_or_cell):
    """The cell of a recurrent layer (``SimpleRNN``, ``LSTM``, ``RNN(cell)``) or the cell itself."""
    return getattr(layer_or_cell, "cell", layer_or_cell)


def cell_variables(layer_or_cell) -> tuple:
    """``(kernel [I, G*H], recurrent_kernel [H, G*H], bias [G*H] or None)`` variables of a cell.

    ``G`` is 1 for an RNN cell and 4 for an LSTM cell (columns ``[i, f, c, o]``). Works for
    Keras' ``SimpleRNNCell`` / ``LSTMCell`` and the hand-written :class:`RNNCell` /
    :class:`HandLSTMCell`, so weights can be moved between them by position.

    Raises:
        ValueError: a cell this module does not know, or one that is not built yet.
    """
    cell = recurrent_cell(layer_or_cell)
    if not cell.built:
        raise ValueError(f"cell {cell.name!r} is not built yet: call the model on an input (or build it) first")
    if hasattr(cell, "i2h"):  # hand-written cells
        if cell.i2h.use_bias:  # RNNCell: the bias sits in i2h
            return cell.i2h.kernel, cell.h2h.kernel, cell.i2h.bias
        return cell.i2h.kernel, cell.h2h.kernel, cell.bias
    if hasattr(cell, "kernel") and hasattr(cell, "recurrent_kernel"):  # SimpleRNNCell, LSTMCell
        return cell.kernel, cell.recurrent_kernel, cell.bias
    raise ValueError(
        f"Received an invalid value for argument `layer_or_cell`: expected a SimpleRNN/LSTM layer or cell "
        f"or a hand-written RNNCell/HandLSTMCell, got {type(cell).__name__}"
    )


def copy_cell_weights(source, target) -> None:
    """Copy a cell's weights into another cell (built-in -> hand-written, or any pair).

    Both cells hold one bias in Keras' layout, so this is a straight copy; shapes are checked.

    Raises:
        ValueError: the two cells' weights do not have the same shapes.
    """
    for name, src, dst in zip(("kernel", "recurrent_kernel", "bias"), cell_variables(source), cell_variables(target)):
        if (src is None) != (dst is None):
            raise ValueError(f"cannot copy `{name}`: one cell has it and the other does not")
        if src is None:
            continue
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(
                f"cannot copy `{name}`: expected shape {tuple(dst.shape)} for the target cell, "
                f"got {tuple(src.shape)} from the source"
            )
        dst.assign(src.value if hasattr(src, "value") else src)
