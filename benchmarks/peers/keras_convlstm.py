"""The reference workload in Keras 3 ``ConvLSTM2D`` (TensorFlow backend): a peer, not linecube.

Needs the optional extra ``tensorflow``. Weights come from a linecube ``reference`` model saved
by :func:`keras_weights` (gate order i, f, c, o in both), so both compute the same function.
"""

from __future__ import annotations

import os

import numpy as np


def build(steps: int, size: int, threads: int = 2):
    """The Keras model (B, T, H, W, 1) -> (B, T, H, W, 1), compiled with Adam(1e-3) and MSE."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    from keras import layers

    def conv_lstm(filters: int, sequences: bool = True):
        return layers.ConvLSTM2D(filters, 3, padding="same", return_sequences=sequences)

    inputs = keras.Input((steps, size, size, 1))
    x = conv_lstm(32)(inputs)
    latent = conv_lstm(16, sequences=False)(x)
    x = layers.Lambda(lambda z: keras.ops.repeat(keras.ops.expand_dims(z, 1), steps, axis=1))(
        latent)
    x = conv_lstm(16)(x)
    x = conv_lstm(32)(x)
    outputs = layers.TimeDistributed(layers.Conv2D(1, 1))(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def keras_weights(model) -> list[np.ndarray]:
    """Weights of a linecube ``reference`` model in Keras order and layout."""
    out = []
    for layer in (*model.encoder, *model.decoder):
        cell = layer.cells[0]
        out += [cell.weight_x.detach().permute(2, 3, 1, 0).numpy(),
                cell.weight_h.detach().permute(2, 3, 1, 0).numpy(),
                cell.bias.detach().numpy()]
    out += [model.head.weight.detach().permute(2, 3, 1, 0).numpy(),
            model.head.bias.detach().numpy()]
    return out
