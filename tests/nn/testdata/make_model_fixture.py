#!/usr/bin/env python3
"""Writes tests/nn/testdata/python_model.safetensors: a whole gradflow model
(configuration + weights) written without gradflow, as an independent check
of nn::LoadModel (nn/saving.cc) and of the documented file layout.

Only the Python standard library (struct + json) is used. The file follows
the published safetensors format (8-byte little-endian header length, JSON
header, raw little-endian data) and gradflow's model layout (nn/saving.h):
  tensors   "<layer>/<weight>" for every layer variable
  metadata  "gradflow.model":  the model configuration JSON (nn/model_config.h)
            "gradflow.layers": the layers with weights, in order

Differences from gradflow's own writer, so the reader is tested on a layout
it did not produce: header keys in insertion order (not sorted), data in
reverse model order, configuration JSON with spaces and a different key order.

The model: Dense(3, relu, input 2) "hidden" -> Dense(2, softmax) "output",
compiled with SGD(learning_rate=0.1) and sparse categorical cross-entropy.
The weights are repeated in tests/nn/saving_test.cc, which checks the
predictions against a double-precision forward pass.

Usage: /usr/bin/python3 tests/nn/testdata/make_model_fixture.py [OUTPUT]
"""

import json
import os
import struct
import sys

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_model.safetensors")

HIDDEN_KERNEL = [0.5, -1.0, 0.25,
                 1.5, 0.75, -0.5]          # [2, 3], stored [in, out] as Keras
HIDDEN_BIAS = [0.1, -0.2, 0.3]
OUTPUT_KERNEL = [1.0, -1.0,
                 -0.5, 2.0,
                 0.25, 0.125]              # [3, 2]
OUTPUT_BIAS = [0.05, -0.05]

# name, shape, values; the data section is written in this order.
TENSORS = [
    ("output/bias", [2], OUTPUT_BIAS),
    ("output/kernel", [3, 2], OUTPUT_KERNEL),
    ("hidden/bias", [3], HIDDEN_BIAS),
    ("hidden/kernel", [2, 3], HIDDEN_KERNEL),
]


def dense(name, units, activation, input_shape=None):
    return {"class_name": "Dense",
            "config": {"units": units, "activation": activation, "name": name,
                       "input_shape": input_shape, "trainable": True,
                       "kernel_initializer": "glorot_uniform", "bias_initializer": "zeros",
                       "use_bias": True, "kernel_regularizer": None, "bias_regularizer": None,
                       "kernel_constraint": None, "bias_constraint": None}}


CONFIG = {
    "class_name": "Sequential",
    "format": "gradflow.model",
    "format_version": 1,
    "name": "python_model",
    "layers": [dense("hidden", 3, "relu", [2]), dense("output", 2, "softmax")],
    "compile": {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"], "seed": 7,
                "optimizer": {"class_name": "SGD",
                              "config": {"learning_rate": 0.1, "momentum": 0.0, "nesterov": False}},
                "clip": None, "learning_rate_schedule": None},
}
LAYERS = [{"name": "hidden", "weights": ["hidden/kernel", "hidden/bias"]},
          {"name": "output", "weights": ["output/kernel", "output/bias"]}]


def main():
    output = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUTPUT
    header = {}
    data = b""
    for name, shape, values in TENSORS:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = {"gradflow.model": json.dumps(CONFIG, indent=1),
                              "gradflow.layers": json.dumps(LAYERS)}
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(output, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
