"""Write ``tests/fixtures/torch_rnn_lstm.npz``: PyTorch RNN/LSTM weights, an input and torch's outputs.

The test (``tests/test_hello.py``) loads these weights into the Keras layers with
``keras_impl.torch_import`` and checks that Keras reproduces torch's outputs; it needs no torch.
This script needs the ``torch`` extra (``make torch`` or ``pip install 'kcourse[torch]'``)::

    python scripts/make_torch_fixture.py [--out tests/fixtures/torch_rnn_lstm.npz]

Contents (float32; state_dict keys are prefixed with the module's name):

* ``x`` ``[T, I]``: the input sequence (random normal, so every weight matters), ``h0``/``c0``
  ``[H]`` zeros are implied (torch's default initial state);
* ``rnn.weight_ih_l0`` ... ``rnn_cell.weight_ih`` ... ``lstm.*_l0`` ... ``lstm_cell.*`` ...
  ``linear.weight`` / ``linear.bias``;
* ``out.rnn`` / ``out.rnn_cell`` / ``out.lstm`` / ``out.lstm_cell`` ``[T, H]``: hidden states per
  step, ``out.lstm_c`` / ``out.lstm_cell_c`` ``[H]``: the last cell state, ``out.linear`` ``[T, O]``:
  ``linear(out.lstm)``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

INPUT_SIZE, HIDDEN, OUTPUT, STEPS, SEED = 4, 3, 4, 12, 43052


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests/fixtures/torch_rnn_lstm.npz"))
    args = parser.parse_args()

    torch.manual_seed(SEED)  # 43052: the course's seed
    modules = {
        "rnn": torch.nn.RNN(INPUT_SIZE, HIDDEN),
        "rnn_cell": torch.nn.RNNCell(INPUT_SIZE, HIDDEN),
        "lstm": torch.nn.LSTM(INPUT_SIZE, HIDDEN),
        "lstm_cell": torch.nn.LSTMCell(INPUT_SIZE, HIDDEN),
        "linear": torch.nn.Linear(HIDDEN, OUTPUT),
    }
    x = torch.randn(STEPS, INPUT_SIZE)  # [T, I], unbatched as in the course
    arrays = {"x": x.numpy()}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            arrays[f"{name}.{key}"] = value.detach().numpy()

    with torch.no_grad():
        out_rnn, _ = modules["rnn"](x)  # [T, H]
        out_lstm, (_, c_lstm) = modules["lstm"](x)  # [T, H], [1, H]
        hs, h = [], torch.zeros(HIDDEN)  # the cells: the course's loop over time steps
        for xt in x:
            h = modules["rnn_cell"](xt, h)
            hs.append(h)
        out_rnn_cell = torch.stack(hs)
        hs, h, c = [], torch.zeros(HIDDEN), torch.zeros(HIDDEN)
        for xt in x:
            h, c = modules["lstm_cell"](xt, (h, c))
            hs.append(h)
        out_lstm_cell = torch.stack(hs)
        out_linear = modules["linear"](out_lstm)  # [T, O]
    arrays.update({
        "out.rnn": out_rnn.numpy(), "out.rnn_cell": out_rnn_cell.numpy(),
        "out.lstm": out_lstm.numpy(), "out.lstm_c": c_lstm[0].numpy(),
        "out.lstm_cell": out_lstm_cell.numpy(), "out.lstm_cell_c": c.numpy(),
        "out.linear": out_linear.numpy(),
    })
    arrays = {k: np.asarray(v, dtype="float32") for k, v in arrays.items()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: {len(arrays)} arrays, torch {torch.__version__}")


if __name__ == "__main__":
    main()
