#!/usr/bin/env python3
"""Writes the Keras test fixtures in tests/nn/keras/testdata/ without Keras.

Run from the repository root (re-running rewrites byte-identical files):

    /usr/bin/python3 tests/nn/keras/make_keras_fixtures.py [OUTPUT_DIR]

Needs only h5py, numpy, json and zipfile (python3-h5py and python3-numpy from
tools/install_deps.sh). The files follow the layouts real Keras writes, as
read in Keras's saving code and in real saved files (the notes are in
tests/nn/keras/testdata/README.md):

  mlp_tf2.h5            tf.keras 2.x legacy HDF5 (keras_version "2.4.0", the
                        h5py 2.10 era): layer_names / weight_names as
                        fixed-length byte strings, datasets
                        model_weights/<layer>/<layer>/<var>:0, legacy
                        OptimizerV2 state "Adam/iter:0", all m's, then all v's
  mlp_tf2_uncompiled.h5 the same without training_config / optimizer_weights
  mlp_tf212.h5          tf.keras 2.12 with h5py 3: the same names stored as
                        variable-length strings, and the TF 2.11+ optimizer's
                        state "iteration:0", then m/<var>:0, v/<var>:0
                        interleaved per variable
  mlp_keras3.h5         Keras 3 legacy HDF5 (keras_version "3.10.0"):
                        model_weights/<layer>/sequential/<layer>/<var>,
                        optimizer state adam/iteration, adam/learning_rate,
                        then momentum and velocity per variable, interleaved
  mlp.keras             Keras 3 zip: metadata.json, config.json,
                        model.weights.h5 (layers/<snake_case class>[_n]/vars/<i>,
                        optimizer/vars/<i>), every entry stored uncompressed
  mlp_sgd.keras         mlp.keras compiled with SGD(momentum=0.9, nesterov=True)
  mlp_uncompiled.keras  mlp.keras never compiled (no compile_config, no optimizer)
  mlp_x.npy, mlp_y.npy  an input batch (5 x 4 x 4, float32) and the
                        predictions of every mlp file (float32, computed in
                        float64 NumPy in inference mode)
  hostile_*.h5/.keras   damaged or hostile variants (testdata/README.md)

The model ("mlp"): InputLayer(batch_shape [null, 4, 4]) -> Flatten ->
Dense(8, relu) -> BatchNormalization -> LeakyReLU(0.2) -> Dropout(0.25) ->
Dense(6, elu) -> PReLU -> Dense(3, softmax), compiled with
sparse_categorical_crossentropy, metrics ["accuracy"] and Adam(0.001) with
the state of 7 steps. Everything is derived from SEED; h5py writes no
timestamps by default (track_times is off) and the zip entries get fixed
dates, so the output does not depend on when it is run.
"""

import io
import json
import os
import sys
import warnings
import zipfile

import h5py
import numpy as np

SEED = 20261202
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")

TF2_VERSION = "2.4.0"
TF212_VERSION = "2.12.0"
KERAS3_VERSION = "3.10.0"
# Keras writes the save time; a fixed one keeps the files reproducible.
DATE_SAVED = "2026-01-02@03:04:05"
ZIP_DATE = (2026, 1, 2, 3, 4, 6)
# zipfile.ZipFile.open(name, "w") gives this date and these permissions.
ZIP_OPEN_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o600 << 16

INPUT_SHAPE = (4, 4)
BATCH = 5
LEAKY_SLOPE = 0.2
DROPOUT_RATE = 0.25
BN_EPSILON = 1e-3
ADAM_STEPS = 7

# Layer names as both Keras versions name the layers of a fresh Sequential
# (snake_case class name, a counter from the second layer of a class on).
MODEL_NAME = "sequential"
LAYERS = [  # (name, class, units or None)
    ("flatten", "Flatten", None),
    ("dense", "Dense", 8),
    ("batch_normalization", "BatchNormalization", None),
    ("leaky_re_lu", "LeakyReLU", None),
    ("dropout", "Dropout", None),
    ("dense_1", "Dense", 6),
    ("p_re_lu", "PReLU", None),
    ("dense_2", "Dense", 3),
]
ACTIVATIONS = {"dense": "relu", "dense_1": "elu", "dense_2": "softmax"}


# ----------------------------------------------------------------------------
# Weights, optimizer state and the reference forward pass


def make_weights(rng):
    """{layer: [(var name, float32 array)]} in Keras's save order
    (trainable variables first, then the non-trainable ones)."""

    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def uniform(low, high, *shape):
        return rng.uniform(low, high, shape).astype(np.float32)

    return {
        "dense": [("kernel", normal(16, 8, scale=0.4)), ("bias", normal(8, scale=0.1))],
        "batch_normalization": [
            ("gamma", uniform(0.5, 1.5, 8)),
            ("beta", normal(8, scale=0.2)),
            ("moving_mean", uniform(0.0, 1.0, 8)),
            ("moving_variance", uniform(0.3, 2.0, 8)),
        ],
        "dense_1": [("kernel", normal(8, 6, scale=0.5)), ("bias", normal(6, scale=0.1))],
        "p_re_lu": [("alpha", uniform(0.05, 0.4, 6))],
        "dense_2": [("kernel", normal(6, 3, scale=0.6)), ("bias", normal(3, scale=0.1))],
    }


# Variables the optimizer updates (BatchNormalization's moving statistics are
# not trainable), in model order: the order of model.trainable_variables.
TRAINABLE = {"dense": 2, "batch_normalization": 2, "dense_1": 2, "p_re_lu": 1, "dense_2": 2}


def trainable_variables(weights):
    return [(layer, name, value)
            for layer, count in TRAINABLE.items()
            for name, value in weights[layer][:count]]


def make_slots(rng, weights, slot_names):
    """{slot name: [array per trainable variable]}: positive values, as
    Adam's m (after positive gradients) and v always are."""
    return {slot: [(np.abs(rng.standard_normal(value.shape)) * (0.01 if slot != "v" else 1e-4) + 1e-6)
                   .astype(np.float32) for _, _, value in trainable_variables(weights)]
            for slot in slot_names}


def forward(x, weights):
    """The model in inference mode, in float64."""
    w = {layer: {name: value.astype(np.float64) for name, value in vars_} for layer, vars_ in weights.items()}
    h = x.astype(np.float64).reshape(x.shape[0], -1)
    h = np.maximum(h @ w["dense"]["kernel"] + w["dense"]["bias"], 0.0)
    bn = w["batch_normalization"]
    h = bn["gamma"] * (h - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + BN_EPSILON) + bn["beta"]
    h = np.where(h >= 0, h, LEAKY_SLOPE * h)
    # Dropout: identity at inference.
    h = h @ w["dense_1"]["kernel"] + w["dense_1"]["bias"]
    h = np.where(h > 0, h, np.expm1(np.minimum(h, 0.0)))  # ELU, alpha 1
    h = np.where(h >= 0, h, w["p_re_lu"]["alpha"] * h)
    z = h @ w["dense_2"]["kernel"] + w["dense_2"]["bias"]
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


# ----------------------------------------------------------------------------
# Model configurations: Keras 3 (serialization_lib) and tf.keras 2.x


def k3_object(module, class_name, config):
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def k3_initializer(class_name, config=None):
    return k3_object("keras.initializers", class_name, {} if config is None else config)


def k3_dtype(shared=False):
    policy = k3_object("keras", "DTypePolicy", {"name": "float32"})
    if shared:
        # ObjectSharingScope marks the policy object the model and most layers
        # share (a real .keras file has it on the model and later layers).
        policy["shared_object_id"] = 140000000000001
    return policy


def k3_layer_config(name, class_name, units, shared_dtype):
    base = {"name": name, "trainable": True, "dtype": k3_dtype(shared_dtype)}
    if class_name == "Flatten":
        return {**base, "data_format": "channels_last"}
    if class_name == "Dense":
        return {**base, "units": units, "activation": ACTIVATIONS[name], "use_bias": True,
                "kernel_initializer": k3_initializer("GlorotUniform", {"seed": None}),
                "bias_initializer": k3_initializer("Zeros"),
                "kernel_regularizer": None, "bias_regularizer": None,
                "kernel_constraint": None, "bias_constraint": None}
    if class_name == "BatchNormalization":
        return {**base, "axis": -1, "momentum": 0.99, "epsilon": BN_EPSILON, "center": True, "scale": True,
                "beta_initializer": k3_initializer("Zeros"), "gamma_initializer": k3_initializer("Ones"),
                "moving_mean_initializer": k3_initializer("Zeros"),
                "moving_variance_initializer": k3_initializer("Ones"),
                "beta_regularizer": None, "gamma_regularizer": None,
                "beta_constraint": None, "gamma_constraint": None, "synchronized": False}
    if class_name == "LeakyReLU":
        return {**base, "negative_slope": LEAKY_SLOPE}
    if class_name == "Dropout":
        return {**base, "rate": DROPOUT_RATE, "seed": None, "noise_shape": None}
    if class_name == "PReLU":
        return {**base, "alpha_initializer": k3_initializer("Zeros"), "alpha_regularizer": None,
                "alpha_constraint": None, "shared_axes": None}
    raise ValueError(class_name)


def layer_input_shapes():
    """The batch input shape each layer was built with (its build_config)."""
    shapes, shape = {}, [None, *INPUT_SHAPE]
    for name, class_name, units in LAYERS:
        shapes[name] = list(shape)
        if class_name == "Flatten":
            shape = [None, int(np.prod(INPUT_SHAPE))]
        elif class_name == "Dense":
            shape = [None, units]
    return shapes


def k3_input_layer():
    return {"batch_shape": [None, *INPUT_SHAPE], "dtype": "float32", "sparse": False, "ragged": False,
            "name": "input_layer"}


def k3_model_config():
    """config.json of a .keras file without compile_config (serialize_keras_object(model))."""
    shapes = layer_input_shapes()
    layers = [k3_object("keras.layers", "InputLayer", k3_input_layer())]
    for i, (name, class_name, units) in enumerate(LAYERS):
        entry = k3_object("keras.layers", class_name, k3_layer_config(name, class_name, units, shared_dtype=i > 0))
        entry["build_config"] = {"input_shape": shapes[name]}
        layers.append(entry)
    config = {"name": MODEL_NAME, "trainable": True, "dtype": k3_dtype(shared=True), "layers": layers,
              "build_input_shape": [None, *INPUT_SHAPE]}
    model = k3_object("keras", "Sequential", config)
    model["build_config"] = {"input_shape": [None, *INPUT_SHAPE]}
    return model


def float32_value(x):
    """What Keras reports for a hyperparameter held in a float32 variable."""
    return float(np.float32(x))


def k3_optimizer_config(kind):
    common = {"learning_rate": float32_value(0.001 if kind == "adam" else 0.01), "weight_decay": None,
              "clipnorm": None, "global_clipnorm": None, "clipvalue": None, "use_ema": False,
              "ema_momentum": 0.99, "ema_overwrite_frequency": None, "loss_scale_factor": None,
              "gradient_accumulation_steps": None}
    if kind == "adam":
        return "Adam", {"name": "adam", **common, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
                        "amsgrad": False}
    return "SGD", {"name": "SGD", **common, "momentum": 0.9, "nesterov": True}


def k3_compile_config(kind):
    class_name, config = k3_optimizer_config(kind)
    return {"optimizer": k3_object("keras.optimizers", class_name, config),
            "loss": "sparse_categorical_crossentropy", "loss_weights": None, "metrics": ["accuracy"],
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def k3_legacy_model_config():
    """model_config of a Keras 3 legacy .h5 file: the legacy serializer drops
    module / registered_name / build_config at the layer level and shares no
    objects (no shared_object_id); nested objects (dtype policy,
    initializers) keep module / registered_name."""
    full = without_shared_ids(k3_model_config())
    layers = [{"class_name": l["class_name"], "config": l["config"]} for l in full["config"]["layers"]]
    return {"class_name": "Sequential", "config": dict(full["config"], layers=layers)}


def without_shared_ids(obj):
    if isinstance(obj, dict):
        return {k: without_shared_ids(v) for k, v in obj.items() if k != "shared_object_id"}
    if isinstance(obj, list):
        return [without_shared_ids(v) for v in obj]
    return obj


def k3_training_config(kind="adam"):
    compile_config = k3_compile_config(kind)
    optimizer = compile_config.pop("optimizer")
    compile_config["optimizer_config"] = {"class_name": optimizer["class_name"], "config": optimizer["config"]}
    return compile_config


def tf2_initializer(class_name, config=None):
    return {"class_name": class_name, "config": {} if config is None else config}


def tf2_layer_config(name, class_name, units):
    base = {"name": name, "trainable": True, "dtype": "float32"}
    if class_name == "Flatten":
        return {**base, "batch_input_shape": [None, *INPUT_SHAPE], "data_format": "channels_last"}
    if class_name == "Dense":
        return {**base, "units": units, "activation": ACTIVATIONS[name], "use_bias": True,
                "kernel_initializer": tf2_initializer("GlorotUniform", {"seed": None}),
                "bias_initializer": tf2_initializer("Zeros"), "kernel_regularizer": None,
                "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
                "bias_constraint": None}
    if class_name == "BatchNormalization":
        return {**base, "axis": [1], "momentum": 0.99, "epsilon": BN_EPSILON, "center": True, "scale": True,
                "beta_initializer": tf2_initializer("Zeros"), "gamma_initializer": tf2_initializer("Ones"),
                "moving_mean_initializer": tf2_initializer("Zeros"),
                "moving_variance_initializer": tf2_initializer("Ones"),
                "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
                "gamma_constraint": None}
    if class_name == "LeakyReLU":
        # tf.keras stores alpha as cast_to_floatx(alpha) and writes float(alpha).
        return {**base, "alpha": float32_value(LEAKY_SLOPE)}
    if class_name == "Dropout":
        return {**base, "rate": DROPOUT_RATE, "noise_shape": None, "seed": None}
    if class_name == "PReLU":
        return {**base, "alpha_initializer": tf2_initializer("Zeros"), "alpha_regularizer": None,
                "alpha_constraint": None, "shared_axes": None}
    raise ValueError(class_name)


def tf2_model_config():
    layers = [{"class_name": "InputLayer",
               "config": {"batch_input_shape": [None, *INPUT_SHAPE], "dtype": "float32", "sparse": False,
                          "ragged": False, "name": "flatten_input"}}]
    layers += [{"class_name": c, "config": tf2_layer_config(n, c, u)} for n, c, u in LAYERS]
    return {"class_name": "Sequential", "config": {"name": MODEL_NAME, "layers": layers}}


def tf2_training_config(new_optimizer=False):
    if new_optimizer:  # TF 2.11+ optimizer (a real tf.keras 2.12 file)
        optimizer = {"class_name": "Custom>Adam", "config": {
            "name": "Adam", "weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
            "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None, "jit_compile": False,
            "is_legacy_optimizer": False, "learning_rate": float32_value(0.001), "beta_1": 0.9,
            "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}}
    else:  # OptimizerV2: hyperparameters read back from their float32 variables
        optimizer = {"class_name": "Adam", "config": {
            "name": "Adam", "learning_rate": float32_value(0.001), "decay": 0.0,
            "beta_1": float32_value(0.9), "beta_2": float32_value(0.999), "epsilon": 1e-07, "amsgrad": False}}
    return {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"], "weighted_metrics": None,
            "loss_weights": None, "optimizer_config": optimizer}


def to_json(obj):
    # json.dumps with its default separators, as Keras calls it.
    return json.dumps(obj)


# ----------------------------------------------------------------------------
# HDF5 writers


def string_array(names, fixed_length):
    """An attribute value for a list of names: h5py 2.x (tf.keras 2.0-2.4)
    stored Keras's list of bytes as a fixed-length array, h5py 3 stores it as
    variable-length strings. An empty list becomes float64 [0] in both, as
    np.asarray([]) is."""
    encoded = [n.encode("utf8") for n in names]
    if not encoded:
        return np.asarray([])
    return np.array(encoded) if fixed_length else encoded


def write_dataset(group, path, value):
    # create_dataset + fill, as hdf5_format.save_subset_weights_to_hdf5_group.
    dataset = group.create_dataset(path, value.shape, dtype=value.dtype)
    if value.shape:
        dataset[:] = value
    else:
        dataset[()] = value


def write_legacy_h5(f, *, keras_version, model_config, training_config, weight_names_of, weights,
                    optimizer_weights, fixed_length):
    """The legacy HDF5 layout (hdf5_format.save_model_to_hdf5 / Keras 3's
    legacy_h5_format): root attrs, model_weights, optimizer_weights.

    weight_names_of(layer, var) -> the stored weight name; optimizer_weights
    is [(name, value)] in the optimizer's variable order, or None."""
    f.attrs["keras_version"] = keras_version
    f.attrs["backend"] = "tensorflow"
    f.attrs["model_config"] = to_json(model_config).encode("utf8")
    if training_config is not None:
        f.attrs["training_config"] = to_json(training_config).encode("utf8")
    group = f.create_group("model_weights")
    group.attrs["layer_names"] = string_array([name for name, _, _ in LAYERS], fixed_length)
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = keras_version.encode("utf8")
    # Groups are created in sorted name order ("strictly growing" names).
    for layer in sorted(name for name, _, _ in LAYERS):
        g = group.create_group(layer)
        names = [weight_names_of(layer, var) for var, _ in weights.get(layer, [])]
        g.attrs["weight_names"] = string_array(names, fixed_length)
        for name, (_, value) in zip(names, weights.get(layer, [])):
            write_dataset(g, name, value)
    group.create_group("top_level_model_weights").attrs["weight_names"] = string_array([], fixed_length)
    if optimizer_weights:
        g = f.create_group("optimizer_weights")
        g.attrs["weight_names"] = string_array([name for name, _ in optimizer_weights], fixed_length)
        for name, value in optimizer_weights:
            write_dataset(g, name, value)


def tf2_legacy_optimizer_weights(weights, slots):
    """OptimizerV2's weights: iterations, then add_slot order (Adam's
    _create_slots: every m, then every v)."""
    out = [("Adam/iter:0", np.array(ADAM_STEPS, dtype=np.int64))]
    for slot in ("m", "v"):
        for (layer, var, _), value in zip(trainable_variables(weights), slots[slot]):
            out.append((f"Adam/{layer}/{var}/{slot}:0", value))
    return out


def tf212_optimizer_weights(weights, slots):
    """The TF 2.11+ optimizer's variables: iteration, then m and v per variable."""
    out = [("iteration:0", np.array(ADAM_STEPS, dtype=np.int64))]
    for i, (layer, var, _) in enumerate(trainable_variables(weights)):
        out += [(f"m/{layer}/{var}:0", slots["m"][i]), (f"v/{layer}/{var}:0", slots["v"][i])]
    return out


def k3_optimizer_variables(kind, weights, slots):
    """Keras 3 optimizer.variables: iteration, learning_rate, then the
    per-variable slots interleaved (add_optimizer_variables). Returns
    [(legacy h5 name, value)]."""
    trainable = trainable_variables(weights)
    opt = "adam" if kind == "adam" else "SGD"
    out = [(f"{opt}/iteration", np.array(ADAM_STEPS, dtype=np.int64)),
           (f"{opt}/learning_rate", np.array(0.001 if kind == "adam" else 0.01, dtype=np.float32))]
    slot_names = [("m", "momentum"), ("v", "velocity")] if kind == "adam" else [("momentum", "momentum")]
    for i, (layer, var, _) in enumerate(trainable):
        for key, suffix in slot_names:
            out.append((f"{opt}/{MODEL_NAME}_{layer}_{var}_{suffix}", slots[key][i]))
    return out


def write_h5_file(path, writer):
    with h5py.File(path, "w") as f:
        writer(f)


def tf2_h5(f, weights, slots, compiled=True, model_config=None):
    write_legacy_h5(
        f, keras_version=TF2_VERSION, model_config=model_config or tf2_model_config(),
        training_config=tf2_training_config() if compiled else None,
        weight_names_of=lambda layer, var: f"{layer}/{var}:0", weights=weights,
        optimizer_weights=tf2_legacy_optimizer_weights(weights, slots) if compiled else None, fixed_length=True)


def tf212_h5(f, weights, slots):
    write_legacy_h5(
        f, keras_version=TF212_VERSION, model_config=tf2_model_config(),
        training_config=tf2_training_config(new_optimizer=True),
        weight_names_of=lambda layer, var: f"{layer}/{var}:0", weights=weights,
        optimizer_weights=tf212_optimizer_weights(weights, slots), fixed_length=False)


def keras3_h5(f, weights, slots):
    write_legacy_h5(
        f, keras_version=KERAS3_VERSION, model_config=k3_legacy_model_config(),
        training_config=k3_training_config(),
        weight_names_of=lambda layer, var: f"{MODEL_NAME}/{layer}/{var}", weights=weights,
        optimizer_weights=k3_optimizer_variables("adam", weights, slots), fixed_length=False)


# ----------------------------------------------------------------------------
# .keras writer


def snake_case_groups():
    """{layer name: its group under layers/}: saving_lib names a group by
    the class (snake_case) and a per-class counter, not by the layer name."""
    snake = {"Flatten": "flatten", "Dense": "dense", "BatchNormalization": "batch_normalization",
             "LeakyReLU": "leaky_re_lu", "Dropout": "dropout", "PReLU": "p_re_lu"}
    used, groups = {}, {}
    for name, class_name, _ in LAYERS:
        base = snake[class_name]
        groups[name] = base if base not in used else f"{base}_{used[base] + 1}"
        used[base] = used.get(base, -1) + 1
    return groups


def weights_h5_bytes(weights, optimizer_vars):
    """model.weights.h5 as H5IOStore writes it: a vars group per saveable,
    with attr name (Keras 3.6+), datasets "0".."n-1"."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        f.create_group("vars").attrs["name"] = MODEL_NAME
        layers = f.create_group("layers")
        for name, group in snake_case_groups().items():
            entry = layers.create_group(group).create_group("vars")
            entry.attrs["name"] = name
            for i, (_, value) in enumerate(weights.get(name, [])):
                entry[str(i)] = value
        if optimizer_vars is not None:
            opt_name, values = optimizer_vars
            entry = f.create_group("optimizer").create_group("vars")
            entry.attrs["name"] = opt_name
            for i, value in enumerate(values):
                entry[str(i)] = value
    return buffer.getvalue()


def keras_entries(weights, slots, kind):
    """The three entries of a .keras file: name -> bytes."""
    config = k3_model_config()
    optimizer_vars = None
    if kind is not None:
        config["compile_config"] = k3_compile_config(kind)
        variables = k3_optimizer_variables(kind, weights, slots)
        optimizer_vars = ("adam" if kind == "adam" else "SGD", [value for _, value in variables])
    metadata = {"keras_version": KERAS3_VERSION, "date_saved": DATE_SAVED}
    return [("metadata.json", to_json(metadata).encode()), ("config.json", to_json(config).encode()),
            ("model.weights.h5", weights_h5_bytes(weights, optimizer_vars))]


def write_zip(path, entries, compression=zipfile.ZIP_STORED):
    """Entries as saving_lib writes them: ZipFile(..., "w") defaults to
    STORED; metadata.json and config.json go through zf.open(name, "w")
    (1980 date), model.weights.h5 through writestr (the save time; fixed
    here)."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_OPEN_DATE if name.endswith(".json") else ZIP_DATE)
            info.external_attr = ZIP_FILE_MODE
            info.compress_type = compression
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Duplicate name" for the duplicate-entry fixture
                zf.writestr(info, data)


# ----------------------------------------------------------------------------
# Hostile variants


def edit_h5(src, dst, edit):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data)
    with h5py.File(dst, "r+") as f:
        edit(f)


def replace_dataset(f, path, value):
    del f[path]
    f.create_dataset(path, data=value)


TF2_KERNEL = "model_weights/dense/dense/kernel:0"


def hostile_h5_files(out, weights, slots):
    base = os.path.join(out, "mlp_tf2.h5")
    kernel = weights["dense"][0][1]
    edits = {
        "hostile_kernel_int32.h5": lambda f: replace_dataset(f, TF2_KERNEL, kernel.astype(np.int32)),
        "hostile_kernel_float16.h5": lambda f: replace_dataset(f, TF2_KERNEL, kernel.astype(np.float16)),
        "hostile_kernel_string.h5": lambda f: replace_dataset(
            f, TF2_KERNEL, np.array([b"not a number"] * kernel.size).reshape(kernel.shape)),
        "hostile_kernel_shape.h5": lambda f: replace_dataset(f, TF2_KERNEL, kernel[:, :7]),
        "hostile_no_model_weights.h5": lambda f: f.__delitem__("model_weights"),
        "hostile_missing_layer_group.h5": lambda f: f["model_weights"].__delitem__("dense_1"),
        "hostile_missing_dataset.h5": lambda f: f.__delitem__(TF2_KERNEL),
        "hostile_config_not_json.h5": lambda f: f.attrs.__setitem__("model_config", b'{"class_name": "Sequential", '),
        "hostile_config_deep.h5": lambda f: f.attrs.__setitem__(
            "model_config", ('{"class_name": "Sequential", "config": {"layers": ' + "[" * 10000 + "]" * 10000
                             + "}}").encode()),
        "hostile_unknown_layer.h5": lambda f: set_layer_class(f, "leaky_re_lu", "MysteryActivation"),
        "hostile_bn_renorm.h5": lambda f: set_bn_renorm(f),
        "hostile_unstored_kernel.h5": lambda f: unstored_dataset(f, TF2_KERNEL, kernel.shape),
    }
    for name, edit in edits.items():
        edit_h5(base, os.path.join(out, name), edit)
    write_h5_file(os.path.join(out, "hostile_huge_dataset.h5"), huge_dataset_model)


def unstored_dataset(f, path, shape):
    """The right shape and dtype, chunked, but no chunk ever written: every
    value reads as the fill value (NaN)."""
    del f[path]
    f.create_dataset(path, shape, dtype=np.float32, chunks=(1, shape[1]), fillvalue=np.nan)


def set_model_config(f, edit):
    config = json.loads(f.attrs["model_config"])
    edit(config)
    f.attrs["model_config"] = to_json(config).encode("utf8")


def set_layer_class(f, layer_name, class_name):
    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["config"]["name"] == layer_name:
                layer["class_name"] = class_name
    set_model_config(f, edit)


def set_bn_renorm(f):
    def edit(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "BatchNormalization":
                # tf.keras writes these three keys only when renorm is on.
                layer["config"].update({"renorm": True, "renorm_clipping": None, "renorm_momentum": 0.99})
    set_model_config(f, edit)


HUGE_UNITS = 1 << 20  # a [2^20, 2^20] kernel: 2^40 float32 elements, 4 TiB


def huge_dataset_model(f):
    """A one-Dense model whose config agrees with its kernel's declared
    [2^20, 2^20] shape; the kernel is chunked and never written, so HDF5
    stores only the fill value and the file stays a few KB."""
    config = {"class_name": "Sequential", "config": {"name": MODEL_NAME, "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, HUGE_UNITS], "dtype": "float32",
                                                "sparse": False, "ragged": False, "name": "dense_input"}},
        {"class_name": "Dense", "config": dict(tf2_layer_config("dense", "Dense", HUGE_UNITS),
                                               batch_input_shape=[None, HUGE_UNITS], activation="linear")}]}}
    f.attrs["keras_version"] = TF2_VERSION
    f.attrs["backend"] = "tensorflow"
    f.attrs["model_config"] = to_json(config).encode("utf8")
    group = f.create_group("model_weights")
    group.attrs["layer_names"] = string_array(["dense"], True)
    group.attrs["backend"] = b"tensorflow"
    group.attrs["keras_version"] = TF2_VERSION.encode()
    g = group.create_group("dense")
    g.attrs["weight_names"] = string_array(["dense/kernel:0", "dense/bias:0"], True)
    g.create_dataset("dense/kernel:0", (HUGE_UNITS, HUGE_UNITS), dtype=np.float32, chunks=(1, 1024),
                     fillvalue=1.0)
    g.create_dataset("dense/bias:0", (HUGE_UNITS,), dtype=np.float32, chunks=(1024,), fillvalue=0.0)
    group.create_group("top_level_model_weights").attrs["weight_names"] = string_array([], True)


BOMB_BYTES = 1_000_000_001  # decompresses to more than 1 GB; < 1 MB deflated (level 9)


def hostile_keras_files(out, weights, slots):
    entries = keras_entries(weights, slots, "adam")
    named = dict(entries)
    variants = {
        "hostile_traversal_dotdot.keras": entries + [("../evil", b"escaped\n")],
        "hostile_traversal_abs.keras": entries + [("/abs/evil", b"escaped\n")],
        "hostile_duplicate_entry.keras": entries + [("config.json", b'{"class_name": "Evil"}')],
        "hostile_no_config.keras": [e for e in entries if e[0] != "config.json"],
        "hostile_weights_not_hdf5.keras": [e for e in entries if e[0] != "model.weights.h5"]
        + [("model.weights.h5", b"this is not an HDF5 file\n" * 40)],
        "hostile_kernel_shape.keras": [(n, d if n != "model.weights.h5" else edited_weights(d, shrink_kernel))
                                       for n, d in entries],
        "hostile_missing_vars.keras": [(n, d if n != "model.weights.h5" else edited_weights(d, drop_layer_group))
                                       for n, d in entries],
    }
    for name, variant in variants.items():
        write_zip(os.path.join(out, name), variant)
    write_zip_bomb(os.path.join(out, "hostile_zip_bomb.keras"), named)


def edited_weights(data, edit):
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+") as f:
        edit(f)
    return buffer.getvalue()


def shrink_kernel(f):
    kernel = f["layers/dense/vars/0"][()]
    del f["layers/dense/vars/0"]
    f["layers/dense/vars/0"] = kernel[:, :7]


def drop_layer_group(f):
    del f["layers/batch_normalization"]


def write_zip_bomb(path, named):
    """config.json deflates 1 GB of zeros into ~970 KB: the entry's header
    declares the full size, and reading it unbounded would take 1 GB. The
    other entries are deflated too so that the file stays under 1 MB."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in ("metadata.json", "model.weights.h5"):
            zf.writestr(zip_info(name), named[name])
        chunk = bytes(1 << 20)
        with zf.open(zip_info("config.json"), "w", force_zip64=False) as entry:
            left = BOMB_BYTES
            while left:
                n = min(left, len(chunk))
                entry.write(chunk[:n])
                left -= n


def zip_info(name):
    info = zipfile.ZipInfo(name, date_time=ZIP_OPEN_DATE)
    info.external_attr = ZIP_FILE_MODE
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


# ----------------------------------------------------------------------------


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else OUT_DIR
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    weights = make_weights(rng)
    adam = make_slots(rng, weights, ["m", "v"])
    sgd = make_slots(rng, weights, ["momentum"])
    x = rng.uniform(0.0, 1.0, (BATCH, *INPUT_SHAPE)).astype(np.float32)
    np.save(os.path.join(out, "mlp_x.npy"), x)
    np.save(os.path.join(out, "mlp_y.npy"), forward(x, weights))

    write_h5_file(os.path.join(out, "mlp_tf2.h5"), lambda f: tf2_h5(f, weights, adam))
    write_h5_file(os.path.join(out, "mlp_tf2_uncompiled.h5"), lambda f: tf2_h5(f, weights, adam, compiled=False))
    write_h5_file(os.path.join(out, "mlp_tf212.h5"), lambda f: tf212_h5(f, weights, adam))
    write_h5_file(os.path.join(out, "mlp_keras3.h5"), lambda f: keras3_h5(f, weights, adam))
    write_zip(os.path.join(out, "mlp.keras"), keras_entries(weights, adam, "adam"))
    write_zip(os.path.join(out, "mlp_sgd.keras"), keras_entries(weights, sgd, "sgd"))
    write_zip(os.path.join(out, "mlp_uncompiled.keras"), keras_entries(weights, None, None))
    hostile_h5_files(out, weights, adam)
    hostile_keras_files(out, weights, adam)


if __name__ == "__main__":
    main()
