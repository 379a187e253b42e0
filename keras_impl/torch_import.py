"""Load PyTorch ``nn.RNN`` / ``nn.RNNCell`` / ``nn.LSTM`` / ``nn.LSTMCell`` / ``nn.Linear`` weights
into Keras 3 layers, for teams porting the course from PyTorch.

The state_dict is given as NumPy arrays (``{k: v.detach().numpy() for k, v in m.state_dict().items()}``;
torch tensors are accepted too), so nothing here imports torch. The layouts differ in three ways:

* PyTorch stores ``weight_ih`` as ``[G*H, I]`` (``y = x @ W.T``); Keras stores ``kernel`` as
  ``[I, G*H]`` (``y = x @ W``): transpose. Same for ``weight_hh`` / ``recurrent_kernel`` and for
  ``nn.Linear.weight`` / ``Dense.kernel``.
* PyTorch has two biases (``bias_ih`` and ``bias_hh``), Keras one: they are only ever added, so
  Keras' bias is their sum.
* The LSTM gate blocks are in the same order in both: PyTorch's rows ``[i, f, g, o]`` are Keras'
  columns ``[i, f, c, o]`` (``g`` and ``c`` name the same candidate ``tanh`` block), so no block
  is moved.

``nn.RNN`` / ``nn.LSTM`` keys end in ``_l0`` (``weight_ih_l0``), the cells' keys do not; both are
recognised. Only one-layer, one-direction modules without ``proj_size`` map onto one Keras cell;
anything else is refused with a clear error. ``nn.RNN(nonlinearity='relu')`` cannot be seen in a
state_dict: build the Keras layer with ``activation='relu'`` yourself.

Example:
    >>> import keras
    >>> layer = keras.layers.LSTM(3, return_sequences=True)
    >>> layer.build((None, None, 4))
    >>> load_torch_rnn(layer, torch_lstm_state_dict)            # doctest: +SKIP
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from keras_impl.hello_cells import cell_variables


def _as_numpy(value: Any) -> np.ndarray:
    """A state_dict entry (NumPy array or CPU/GPU torch tensor) as a float32 NumPy array."""
    if hasattr(value, "detach"):  # a torch tensor: no torch import needed to convert it
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype="float32")


def _check_shape(key: str, array: np.ndarray, expected: tuple, what: str) -> None:
    if tuple(array.shape) != tuple(expected):
        raise ValueError(
            f"Received an invalid value for state_dict entry `{key}`: expected shape {tuple(expected)} "
            f"({what}), got shape {tuple(array.shape)}"
        )


def _find_suffix(state_dict: Mapping[str, Any], prefix: str) -> str:
    """``"_l0"`` for ``nn.RNN``/``nn.LSTM`` keys, ``""`` for the cells; refuses stacked/bidirectional."""
    keys = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
    unsupported = [k for k in keys if k.endswith("_reverse") or "weight_hr" in k
                   or (k.startswith(("weight_", "bias_")) and "_l" in k and not k.endswith("_l0"))]
    if unsupported:
        raise ValueError(
            f"only one-layer, one-direction PyTorch RNN/LSTM modules without proj_size map onto one Keras "
            f"cell; the state_dict has {', '.join(sorted(prefix + k for k in unsupported))}"
        )
    if "weight_ih_l0" in keys:
        return "_l0"
    if "weight_ih" in keys:
        return ""
    raise ValueError(
        f"Received an invalid value for argument `state_dict`: expected the keys `{prefix}weight_ih_l0` "
        f"(nn.RNN/nn.LSTM) or `{prefix}weight_ih` (nn.RNNCell/nn.LSTMCell), got keys {sorted(state_dict)}"
    )


def torch_rnn_to_keras(state_dict: Mapping[str, Any], input_size: int, units: int, gates: int,
                       prefix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras' ``(kernel, recurrent_kernel, bias)`` from a PyTorch RNN/LSTM (layer or cell) state_dict.

    Args:
        state_dict: ``weight_ih[_l0]`` ``[G*H, I]``, ``weight_hh[_l0]`` ``[G*H, H]`` and optionally
            ``bias_ih[_l0]``, ``bias_hh[_l0]`` ``[G*H]`` (absent when the module had ``bias=False``:
            Keras' bias is then zero).
        input_size: ``I``, the Keras layer's input width.
        units: ``H``, the hidden size.
        gates: ``G``: 1 for an RNN, 4 for an LSTM.
        prefix: prepended to every key (``"rnn."`` for a submodule named ``rnn``).

    Returns:
        ``kernel [I, G*H]``, ``recurrent_kernel [H, G*H]``, ``bias [G*H]`` (float32).

    Raises:
        ValueError: a missing key, an unsupported module, or an array whose shape is not the
            expected one (the message names the key and the expected shape).

    Example (hand-worked, H = 1, I = 2, RNN):
        weight_ih = [[1, 2]] -> kernel [[1], [2]]; bias_ih = [0.5], bias_hh = [0.25] -> bias [0.75].
    """
    suffix = _find_suffix(state_dict, prefix)
    kind = ("LSTM" if gates == 4 else "RNN") + ("" if suffix else "Cell")
    rows = gates * units
    arrays = {}
    for name, shape, what in (
        ("weight_ih", (rows, input_size), f"nn.{kind} weight_ih: [{gates}*hidden_size={rows}, input_size={input_size}]"),
        ("weight_hh", (rows, units), f"nn.{kind} weight_hh: [{gates}*hidden_size={rows}, hidden_size={units}]"),
        ("bias_ih", (rows,), f"nn.{kind} bias_ih: [{gates}*hidden_size={rows}]"),
        ("bias_hh", (rows,), f"nn.{kind} bias_hh: [{gates}*hidden_size={rows}]"),
    ):
        key = prefix + name + suffix
        if key not in state_dict:
            if name.startswith("bias"):  # bias=False in PyTorch
                arrays[name] = np.zeros(shape, dtype="float32")
                continue
            raise ValueError(f"state_dict has no `{key}` (expected shape {shape}, {what})")
        arrays[name] = _as_numpy(state_dict[key])
        _check_shape(key, arrays[name], shape, what)
    kernel = arrays["weight_ih"].T.copy()  # [I, G*H]; gate blocks keep their order (i, f, g=c, o)
    recurrent_kernel = arrays["weight_hh"].T.copy()  # [H, G*H]
    bias = arrays["bias_ih"] + arrays["bias_hh"]  # [G*H]: Keras has one bias, their sum
    return kernel, recurrent_kernel, bias


def load_torch_rnn(layer_or_cell, state_dict: Mapping[str, Any], prefix: str = "") -> None:
    """Load a PyTorch ``nn.RNN`` / ``nn.RNNCell`` / ``nn.LSTM`` / ``nn.LSTMCell`` state_dict into a
    built Keras recurrent layer or cell.

    Works for ``SimpleRNN``, ``LSTM``, ``RNN(SimpleRNNCell)``, ``RNN(LSTMCell)`` and the
    hand-written :class:`keras_impl.hello.RNNCell` / :class:`keras_impl.hello.HandLSTMCell`.

    Raises:
        ValueError: the layer is not built, or a weight does not fit it (the message names the
            expected shape).
    """
    kernel_var, recurrent_var, bias_var = cell_variables(layer_or_cell)
    input_size, width = (int(d) for d in kernel_var.shape)
    units = int(recurrent_var.shape[0])
    gates = width // units
    if gates not in (1, 4) or gates * units != width:
        raise ValueError(f"expected an RNN (kernel [I, H]) or LSTM (kernel [I, 4H]) cell, got kernel shape {(input_size, width)}")
    if bias_var is None:
        raise ValueError("the Keras layer was built with use_bias=False; PyTorch biases need use_bias=True")
    kernel, recurrent_kernel, bias = torch_rnn_to_keras(state_dict, input_size, units, gates, prefix=prefix)
    kernel_var.assign(kernel)
    recurrent_var.assign(recurrent_kernel)
    bias_var.assign(bias)


def load_torch_linear(dense, state_dict: Mapping[str, Any], prefix: str = "") -> None:
    """Load a PyTorch ``nn.Linear`` state_dict (``weight [out, in]``, ``bias [out]``) into a built
    ``keras.layers.Dense`` (``kernel [in, out]``, ``bias [out]``).

    Raises:
        ValueError: a missing key or an array whose shape does not fit the Dense layer.
    """
    if not dense.built:
        raise ValueError(f"Dense layer {dense.name!r} is not built yet: call it on an input first")
    n_in, n_out = (int(d) for d in dense.kernel.shape)
    key = prefix + "weight"
    if key not in state_dict:
        raise ValueError(f"state_dict has no `{key}` (expected shape {(n_out, n_in)}, nn.Linear weight: [out_features, in_features])")
    weight = _as_numpy(state_dict[key])
    _check_shape(key, weight, (n_out, n_in), f"nn.Linear weight: [out_features={n_out}, in_features={n_in}]")
    dense.kernel.assign(weight.T.copy())
    key = prefix + "bias"
    if dense.bias is not None:
        bias = _as_numpy(state_dict[key]) if key in state_dict else np.zeros((n_out,), "float32")
        _check_shape(key, bias, (n_out,), f"nn.Linear bias: [out_features={n_out}]")
        dense.bias.assign(bias)
    elif key in state_dict:
        raise ValueError(f"the Dense layer has no bias (use_bias=False) but the state_dict has `{key}`")
