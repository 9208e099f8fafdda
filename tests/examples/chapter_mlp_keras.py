#!/usr/bin/env python3
"""Writes the chapter's Fashion-MNIST MLP as tf.keras 2.x saves it
(model.save("my_keras_model.h5")), and what a NumPy forward pass over the
same weights gives on the test set, without Keras (h5py, numpy, json, gzip).

    /usr/bin/python3 chapter_mlp_keras.py OUT.h5 OUT.json

The model is Flatten(28, 28) -> Dense(300, relu) -> Dense(100, relu) ->
Dense(10, softmax), compiled with sparse_categorical_crossentropy, SGD and
accuracy. Its weights are made, not trained (no Keras here): He-normal
hidden layers with a fixed seed and an output layer fitted by least squares
on the first 10,000 training images, so that it classifies well enough for
its accuracy to mean something. OUT.json holds the test accuracy and the
mean cross-entropy of the forward pass on the 10,000 test images scaled by
1/255, as the chapter scales them.
"""

import gzip
import json
import sys

import h5py
import numpy as np

DATA = "/usr/share/datasets/fashion-mnist/"
UNITS = [("dense", 300, "relu"), ("dense_1", 100, "relu"), ("dense_2", 10, "softmax")]


def idx(name):
    with gzip.open(DATA + name) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw[4 + 4 * dims:], dtype=np.uint8).reshape(shape)


def hidden(x, weights):
    h = x.reshape(len(x), -1)
    for kernel, bias in weights:
        h = np.maximum(h @ kernel + bias, 0)
    return h


def make_weights():
    rng = np.random.default_rng(20261202)
    weights, fan_in = [], 784
    for _, units, _ in UNITS[:2]:
        weights.append((rng.normal(0, np.sqrt(2 / fan_in), (fan_in, units)).astype(np.float32),
                        np.zeros(units, np.float32)))
        fan_in = units
    x = idx("train-images-idx3-ubyte.gz")[:10000].astype(np.float32) / 255
    y = idx("train-labels-idx1-ubyte.gz")[:10000]
    h = hidden(x, weights).astype(np.float64)
    features = np.hstack([h, np.ones((len(h), 1))])
    solution, *_ = np.linalg.lstsq(features, np.eye(10)[y] * 8 - 4, rcond=None)
    weights.append((solution[:-1].astype(np.float32), solution[-1].astype(np.float32)))
    return weights


def evaluate(weights):
    x = idx("t10k-images-idx3-ubyte.gz").astype(np.float32) / 255
    y = idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)
    h = hidden(x, [(k.astype(np.float64), b.astype(np.float64)) for k, b in weights[:2]])
    logits = h @ weights[2][0].astype(np.float64) + weights[2][1].astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return {"accuracy": float((logits.argmax(axis=1) == y).mean()), "loss": float(-log_p[np.arange(len(y)), y].mean())}


def model_config():
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28], "dtype": "float32",
                                                      "sparse": False, "ragged": False, "name": "flatten_input"}},
              {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True, "dtype": "float32",
                                                   "batch_input_shape": [None, 28, 28], "data_format": "channels_last"}}]
    for name, units, activation in UNITS:
        layers.append({"class_name": "Dense", "config": {
            "name": name, "trainable": True, "dtype": "float32", "units": units, "activation": activation,
            "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
            "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}})
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


TRAINING_CONFIG = {"loss": "sparse_categorical_crossentropy",
                   "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
                       "name": "accuracy", "dtype": "float32", "fn": "sparse_categorical_accuracy"}}]],
                   "weighted_metrics": None, "loss_weights": None,
                   "optimizer_config": {"class_name": "SGD", "config": {
                       "name": "SGD", "learning_rate": 0.009999999776482582, "decay": 0.0, "momentum": 0.0,
                       "nesterov": False}}}


def write_h5(path, weights):
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.11.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(model_config())
        f.attrs["training_config"] = json.dumps(TRAINING_CONFIG)
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [b"flatten"] + [name.encode() for name, _, _ in UNITS]
        g.create_group("flatten").attrs["weight_names"] = np.array([])
        for (name, _, _), (kernel, bias) in zip(UNITS, weights):
            layer = g.create_group(name)
            layer.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            layer[f"{name}/kernel:0"] = kernel
            layer[f"{name}/bias:0"] = bias


if __name__ == "__main__":
    weights = make_weights()
    write_h5(sys.argv[1], weights)
    with open(sys.argv[2], "w") as out:
        json.dump(evaluate(weights), out)
