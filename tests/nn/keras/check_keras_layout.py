#!/usr/bin/env python3
"""Checks that a file has exactly the layout Keras reads, independently of
gradflow (and of Keras, which is not needed):

    /usr/bin/python3 tests/nn/keras/check_keras_layout.py FILE

FILE is a Keras 3 `.keras` zip (what keras.saving.load_model reads through
saving_lib) or a legacy HDF5 `.h5` file written by tf.keras 2.x or Keras 3
(what legacy_h5_format.load_model_from_hdf5 reads). On success it prints a
JSON summary on stdout (layer groups and their variable shapes, the
optimizer and its variable count) and exits 0; otherwise it prints every
problem found, one per line, and exits 1 (usage errors: 2).

What it checks (tests/nn/keras/testdata/README.md has the layouts):
  .keras  entry names (no duplicates, no "..", no absolute names, nothing
          but metadata.json, config.json, model.weights.h5 and assets/),
          declared sizes and compression ratios before anything is read,
          metadata.json's keys, config.json's module / class_name / config /
          registered_name / build_config / compile_config, every layer group
          layers/<snake_case class>[_n]/vars with datasets "0".."n-1" of the
          shapes the config implies, float32, fully stored; optimizer/vars
          when compile_config has an optimizer (Adam, SGD)
  .h5     root attrs keras_version / backend / model_config
          (/ training_config), model_weights with layer_names in model
          order, each layer's weight_names naming datasets of the config's
          shapes (tf.keras 2.x "<layer>/<var>:0", Keras 3
          "<model>/<layer>/<var>"), optimizer_weights in the optimizer's
          order (tf.keras OptimizerV2, the TF 2.11+ optimizer, Keras 3)
The layer classes it knows are the ones the fixtures use: InputLayer,
Flatten, Dense, BatchNormalization (without renorm), LeakyReLU, Dropout,
PReLU, Activation; and Normalization (axis -1). Only h5py, json and zipfile are used; no data is read
beyond shapes, dtypes and storage sizes.
"""

import io
import json
import re
import sys
import zipfile

import h5py

MAX_JSON_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 1 << 30
MAX_JSON_DEPTH = 64
# A member larger than this must not expand more than MAX_RATIO times.
RATIO_FLOOR_BYTES = 1 << 20
MAX_RATIO = 100
MAX_VARIABLE_ELEMENTS = 1 << 28  # 1 GiB of float32
MAX_UNITS = 1 << 20
KERAS_ENTRIES = ("metadata.json", "config.json", "model.weights.h5")
ACTIVATIONS = {"linear", "relu", "elu", "selu", "softmax", "sigmoid", "tanh", "softplus", "softsign",
               "swish", "silu", "gelu", "exponential", "hard_sigmoid", "leaky_relu", "relu6", "mish"}
DATE_SAVED = re.compile(r"^\d{4}-\d{2}-\d{2}@\d{2}:\d{2}:\d{2}$")


class Problems:
    """Every problem found, in order; checks go on after one so that a
    file's report is complete."""

    def __init__(self):
        self.lines = []

    def add(self, where, message):
        self.lines.append(f"{where}: {message}")

    def __bool__(self):
        return bool(self.lines)


# ----------------------------------------------------------------------------
# Shared: JSON, the model's layers and the variables they imply


def parse_json(text, where, problems):
    try:
        value = json.loads(text)
    except RecursionError:
        problems.add(where, f"JSON nested too deeply (more than Python's recursion limit); at most {MAX_JSON_DEPTH} levels")
        return None
    except (ValueError, UnicodeDecodeError) as e:
        problems.add(where, f"not valid JSON ({e})")
        return None
    if json_depth(value) > MAX_JSON_DEPTH:
        problems.add(where, f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
        return None
    return value


def json_depth(value):
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def snake_case(class_name):
    """Keras's naming.to_snake_case: drop non-word characters, then split
    before an upper-case letter followed by lower-case ones and between a
    lower-case and an upper-case letter."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def group_names(layers):
    """layers/<group> names saving_lib gives the layers: snake_case class
    name, then _1, _2, ... for later layers of the same class."""
    seen, names = {}, []
    for layer in layers:
        base = snake_case(layer.class_name)
        names.append(base if base not in seen else f"{base}_{seen[base] + 1}")
        seen[base] = seen.get(base, -1) + 1
    return names


class Layer:
    def __init__(self, class_name, config, variables):
        self.class_name = class_name
        self.config = config
        self.name = config.get("name", "?")
        self.variables = variables  # [(var name, shape tuple, trainable)]


def is_shape(value, allow_none_first):
    if not isinstance(value, list) or not value or len(value) > 8:
        return False
    dims = value[1:] if allow_none_first and value[0] is None else value
    return all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= MAX_UNITS for d in dims)


def number(config, key, where, problems, low=None, high=None):
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.add(where, f"'{key}' must be a number, got {json.dumps(value)}")
        return None
    if (low is not None and value < low) or (high is not None and value >= high):
        problems.add(where, f"'{key}' is {value}, outside [{low}, {high})")
    return value


def layer_variables(class_name, config, in_shape, where, problems, flavor):
    """The variables a layer of this class and config creates on an input of
    in_shape (without batch), in Keras's save order, and its output shape."""
    trainable = config.get("trainable", True) is not False
    if class_name in ("Dropout",):
        number(config, "rate", where, problems, 0.0, 1.0)
        return [], in_shape
    if class_name == "Activation":
        check_activation(config, where, problems, flavor)
        return [], in_shape
    if class_name == "LeakyReLU":
        number(config, "alpha" if flavor == "tf2" else "negative_slope", where, problems)
        return [], in_shape
    if class_name == "Flatten":
        size = 1
        for d in in_shape:
            size *= d
        return [], (size,)
    if class_name == "Dense":
        return dense_variables(config, in_shape, where, problems, trainable, flavor)
    if class_name == "BatchNormalization":
        return batch_norm_variables(config, in_shape, where, problems, trainable)
    if class_name == "PReLU":
        shared = config.get("shared_axes") or []
        if not isinstance(shared, list) or not all(isinstance(a, int) and 1 <= a <= len(in_shape) for a in shared):
            problems.add(where, f"'shared_axes' must be null or a list of input axes, got {json.dumps(shared)}")
            shared = []
        alpha = tuple(1 if axis + 1 in shared else d for axis, d in enumerate(in_shape))
        return [("alpha", alpha, trainable)], in_shape
    if class_name == "Normalization":
        return normalization_variables(config, in_shape, where, problems)
    problems.add(where, f"unknown layer class '{class_name}' (this checker knows InputLayer, Flatten, Dense, "
                        "BatchNormalization, LeakyReLU, Dropout, PReLU, Activation, Normalization)")
    return None, in_shape


def check_activation(config, where, problems, flavor):
    """A name, or a weightless layer object as keras.activations.serialize
    writes it: {"module": "keras.layers", "class_name", "config", ...}
    (without module in tf.keras 2.x's layout)."""
    activation = config.get("activation")
    if isinstance(activation, dict):
        class_name, inner = activation.get("class_name"), activation.get("config")
        here = f"{where} activation"
        if activation.get("module", "keras.layers") != "keras.layers" or not isinstance(class_name, str) \
                or not isinstance(inner, dict):
            problems.add(here, f"an activation object must be a keras.layers object, got {json.dumps(activation)}")
            return
        variables, _ = layer_variables(class_name, inner, (1,), here, problems, flavor)
        if variables:
            problems.add(here, f"a {class_name} activation object has weights, which Keras keeps in no group here")
        return
    if activation not in ACTIVATIONS:
        problems.add(where, f"unknown activation {json.dumps(activation)}")


def dense_variables(config, in_shape, where, problems, trainable, flavor):
    units = config.get("units")
    if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= MAX_UNITS:
        problems.add(where, f"'units' must be an integer in [1, {MAX_UNITS}], got {json.dumps(units)}")
        return None, in_shape
    check_activation(config, where, problems, flavor)
    variables = [("kernel", (in_shape[-1], units), trainable)]
    if config.get("use_bias", True):
        variables.append(("bias", (units,), trainable))
    return variables, in_shape[:-1] + (units,)


def batch_norm_variables(config, in_shape, where, problems, trainable):
    if config.get("renorm", False):
        problems.add(where, "BatchNormalization with renorm=true (batch renormalization) is not plain "
                            "batch normalization; the checker (and gradflow) support renorm=false only")
    axis = config.get("axis", -1)
    if axis not in (-1, len(in_shape), [-1], [len(in_shape)]):
        problems.add(where, f"'axis' is {json.dumps(axis)}; only the last axis is supported")
    number(config, "epsilon", where, problems, 0.0)
    features = (in_shape[-1],)
    variables = []
    if config.get("scale", True):
        variables.append(("gamma", features, trainable))
    if config.get("center", True):
        variables.append(("beta", features, trainable))
    variables += [("moving_mean", features, False), ("moving_variance", features, False)]
    return variables, in_shape


# Weights Keras creates with an integer dtype (Normalization's count:
# add_weight(dtype="int"), int64 with the TensorFlow backend, int32 with the
# others); every other layer weight is float32.
INTEGER_WEIGHTS = {("Normalization", "count")}


def weight_dtypes(layer, var):
    return ("<i8", "<i4") if (layer.class_name, var) in INTEGER_WEIGHTS else ("<f4",)


def normalization_variables(config, in_shape, where, problems):
    """keras/src/layers/preprocessing/normalization.py: mean, variance and
    count when adapted (config mean null); none when given mean and variance."""
    axis = config.get("axis", -1)
    if axis not in (-1, len(in_shape), [-1], [len(in_shape)]):
        problems.add(where, f"'axis' is {json.dumps(axis)}; only the last axis is supported")
    if (config.get("mean") is None) != (config.get("variance") is None):
        problems.add(where, "'mean' and 'variance' must both be given or both be null")
    if config.get("mean") is not None:
        return [], in_shape
    features = (in_shape[-1],)
    return [("mean", features, False), ("variance", features, False), ("count", (), False)], in_shape


def describe_layers(entries, where, problems, flavor):
    """Layer objects (InputLayer excluded, as Sequential.layers excludes it)
    from the config's layer list, with the variables each implies."""
    if not isinstance(entries, list) or not entries:
        problems.add(where, "'layers' must be a non-empty list")
        return []
    in_shape, layers = None, []
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict) or \
                not isinstance(entry.get("class_name"), str):
            problems.add(here, "a layer must be an object with 'class_name' (string) and 'config' (object)")
            return []
        class_name, config = entry["class_name"], entry["config"]
        here = f"{here} ({class_name} '{config.get('name', '?')}')"
        declared = config.get("batch_shape", config.get("batch_input_shape"))
        if declared is not None:
            if not is_shape(declared, allow_none_first=True) or declared[0] is not None:
                problems.add(here, f"batch shape must be [null, d1, ...] with dims in [1, {MAX_UNITS}], "
                                   f"got {json.dumps(declared)}")
                return []
            in_shape = tuple(declared[1:])
        if class_name == "InputLayer":
            if i != 0 or declared is None:
                problems.add(here, "an InputLayer must come first and have a batch shape")
            continue
        if in_shape is None:
            problems.add(here, "no input shape: the first layer needs an InputLayer or batch_input_shape")
            return []
        variables, in_shape = layer_variables(class_name, config, in_shape, here, problems, flavor)
        if variables is None:
            return []
        for name, shape, _ in variables:
            elements = 1
            for d in shape:
                elements *= d
            if elements > MAX_VARIABLE_ELEMENTS:
                problems.add(here, f"variable '{name}' would have shape {list(shape)} ({elements} elements), "
                                   f"more than {MAX_VARIABLE_ELEMENTS}")
        layers.append(Layer(class_name, config, variables))
    return layers


def trainable_variables(layers):
    return [(layer, name, shape) for layer in layers for name, shape, trainable in layer.variables if trainable]


def check_dataset(dataset, shape, where, problems, dtypes=("<f4",)):
    """A weight dataset: expected dtype and shape, a bounded size, and all of
    its data stored (a chunked dataset with unwritten chunks reads as its
    fill value: a tiny file declaring terabytes)."""
    if not isinstance(dataset, h5py.Dataset):
        problems.add(where, f"is a {type(dataset).__name__}, not a dataset")
        return None
    if dataset.size > MAX_VARIABLE_ELEMENTS:
        problems.add(where, f"declares shape {list(dataset.shape)} ({dataset.size} elements), "
                            f"more than {MAX_VARIABLE_ELEMENTS}")
        return list(dataset.shape)
    if dataset.dtype.str not in dtypes:
        problems.add(where, f"dtype is {dataset.dtype} ({dataset.dtype.str}), expected "
                            f"{' or '.join(dtypes)} ({'float32' if dtypes == ('<f4',) else 'integer'})")
    if shape is not None and tuple(dataset.shape) != tuple(shape):
        problems.add(where, f"shape is {list(dataset.shape)} but the config implies {list(shape)}")
    stored = dataset.id.get_storage_size()
    if dataset.chunks is not None:
        expected = 1
        for d, c in zip(dataset.shape, dataset.chunks):
            expected *= -(-d // c)
        if dataset.size and dataset.id.get_num_chunks() < expected:
            problems.add(where, f"only {dataset.id.get_num_chunks()} of its {expected} chunks are stored "
                                "(the rest would read as the fill value)")
    elif stored < dataset.size * dataset.dtype.itemsize:
        problems.add(where, f"stores {stored} bytes of its {dataset.size * dataset.dtype.itemsize}")
    return list(dataset.shape)


# ----------------------------------------------------------------------------
# .keras (Keras 3 saving_lib)


def check_keras_zip(path, problems):
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        check_entry_names(infos, problems)
        check_entry_sizes(infos, problems)
        present = {info.filename for info in infos}
        for name in KERAS_ENTRIES:
            if name not in present:
                problems.add(path, f"missing entry {name} (a .keras file has {', '.join(KERAS_ENTRIES)})")
        if problems:
            return None
        metadata = parse_json(read_entry(zf, "metadata.json", MAX_JSON_BYTES), "metadata.json", problems)
        config = parse_json(read_entry(zf, "config.json", MAX_JSON_BYTES), "config.json", problems)
        weights = read_entry(zf, "model.weights.h5", MAX_WEIGHTS_BYTES)
    check_metadata(metadata, problems)
    layers, optimizer = check_keras_config(config, problems)
    if problems:
        return None
    try:
        h5 = h5py.File(io.BytesIO(weights), "r")
    except OSError as e:
        problems.add("model.weights.h5", f"not an HDF5 file ({e})")
        return None
    with h5:
        summary = check_weights_h5(h5, layers, optimizer, problems)
    summary.update({"format": "keras", "keras_version": metadata.get("keras_version")})
    return summary


def check_entry_names(infos, problems):
    seen = set()
    for info in infos:
        name = info.filename
        if name in seen:
            problems.add(f"entry {json.dumps(name)}", "duplicate entry name (readers disagree on which one counts)")
        seen.add(name)
        parts = name.split("/")
        if name.startswith("/") or "\\" in name or ".." in parts or re.match(r"^[A-Za-z]:", name):
            problems.add(f"entry {json.dumps(name)}", "path escapes the archive (absolute, drive letter, '..' or '\\')")
        elif name not in KERAS_ENTRIES and not name.startswith("assets/"):
            problems.add(f"entry {json.dumps(name)}", "unexpected entry (a .keras file holds "
                                                      f"{', '.join(KERAS_ENTRIES)} and assets/)")


def check_entry_sizes(infos, problems):
    for info in infos:
        where = f"entry {json.dumps(info.filename)}"
        limit = MAX_WEIGHTS_BYTES if info.filename == "model.weights.h5" else MAX_JSON_BYTES
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.add(where, f"compression method {info.compress_type}; Keras writes stored (0) entries")
        if info.file_size > limit:
            problems.add(where, f"declares {info.file_size} bytes uncompressed, more than {limit}")
        if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            problems.add(where, f"expands {info.compress_size} bytes to {info.file_size} "
                                f"(more than {MAX_RATIO}x): a zip bomb")


def read_entry(zf, name, limit):
    with zf.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{name} is larger than {limit} bytes")
    return data


def check_metadata(metadata, problems):
    if not isinstance(metadata, dict):
        problems.add("metadata.json", "must be a JSON object")
        return
    version = metadata.get("keras_version")
    if not isinstance(version, str) or not version.startswith("3."):
        problems.add("metadata.json", f"'keras_version' must be a \"3.x\" string, got {json.dumps(version)}")
    if not isinstance(metadata.get("date_saved"), str) or not DATE_SAVED.match(metadata["date_saved"]):
        problems.add("metadata.json", "'date_saved' must be a \"%Y-%m-%d@%H:%M:%S\" string")


def check_keras_object(obj, where, problems, module, class_name=None):
    """A serialize_keras_object dict: module, class_name, config, registered_name."""
    if not isinstance(obj, dict):
        problems.add(where, "must be an object")
        return False
    for key in ("module", "class_name", "config", "registered_name"):
        if key not in obj:
            problems.add(where, f"missing key '{key}'")
    if obj.get("module") != module:
        problems.add(where, f"'module' is {json.dumps(obj.get('module'))}, expected \"{module}\"")
    if class_name is not None and obj.get("class_name") != class_name:
        problems.add(where, f"'class_name' is {json.dumps(obj.get('class_name'))}, expected \"{class_name}\"")
    if not isinstance(obj.get("config"), dict):
        problems.add(where, "'config' must be an object")
        return False
    return True


def check_keras_config(config, problems):
    """config.json: the model object, its layers and compile_config.
    Returns (layers, optimizer object or None)."""
    if config is None or not check_keras_object(config, "config.json", problems, "keras", "Sequential"):
        return [], None
    check_build_config(config, "config.json", problems)
    entries = config["config"].get("layers")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        where = f"config.json layers[{i}]"
        if check_keras_object(entry, where, problems, "keras.layers") and entry.get("class_name") != "InputLayer":
            check_build_config(entry, where, problems)
    layers = describe_layers(entries, "config.json layers", problems, "keras3")
    compile_config = config.get("compile_config")
    if compile_config is None:
        return layers, None
    if not isinstance(compile_config, dict):
        problems.add("config.json compile_config", "must be an object or absent")
        return layers, None
    for key in ("optimizer", "loss", "metrics"):
        if key not in compile_config:
            problems.add("config.json compile_config", f"missing key '{key}'")
    optimizer = compile_config.get("optimizer")
    if optimizer is not None and not check_keras_object(optimizer, "config.json compile_config.optimizer",
                                                        problems, "keras.optimizers"):
        optimizer = None
    return layers, optimizer


def check_build_config(obj, where, problems):
    build = obj.get("build_config")
    if not isinstance(build, dict) or not is_shape(build.get("input_shape"), allow_none_first=True):
        problems.add(where, "missing 'build_config': {\"input_shape\": [null, ...]} (Keras writes it for built layers)")


def keras3_optimizer_slots(optimizer, where, problems):
    """The per-variable slot names of a Keras 3 optimizer, in the order
    build() adds them (interleaved per variable), or None if unknown."""
    class_name, config = optimizer.get("class_name"), optimizer.get("config", {})
    if class_name == "Adam":
        return ["momentum", "velocity"], ["velocity_hat"] if config.get("amsgrad") else []
    if class_name == "SGD":
        return (["momentum"] if config.get("momentum", 0) else []), []
    problems.add(where, f"optimizer class {json.dumps(class_name)}: this checker knows Adam and SGD")
    return None, None


def expected_keras3_optimizer_vars(optimizer, layers, where, problems):
    """[(description, shape or None for a scalar, dtypes)] in optimizer.variables order."""
    interleaved, after = keras3_optimizer_slots(optimizer, where, problems)
    if interleaved is None:
        return None
    expected = [("iteration", (), ("<i8", "<i4"))]
    if not isinstance(optimizer["config"].get("learning_rate"), dict):  # a schedule has no variable
        expected.append(("learning_rate", (), ("<f4",)))
    trainable = trainable_variables(layers)
    for layer, name, shape in trainable:
        expected += [(f"{slot} of {layer.name}/{name}", shape, ("<f4",)) for slot in interleaved]
    for slot in after:
        expected += [(f"{slot} of {layer.name}/{name}", shape, ("<f4",)) for layer, name, shape in trainable]
    return expected


def subgroup(parent, key):
    """parent[key] if it is a group (a dataset or nothing there: None)."""
    child = parent.get(key) if isinstance(parent, h5py.Group) else None
    return child if isinstance(child, h5py.Group) else None


def check_vars_group(group, where, expected, problems, name=None):
    """A saveable's vars group: datasets "0".."n-1", nothing else."""
    if not isinstance(group, h5py.Group):
        problems.add(where, "missing (every saveable has a vars group)")
        return []
    stored_name = attr_text(group.attrs.get("name", name))
    if name is not None and (not isinstance(stored_name, str) or stored_name != name):
        problems.add(where, f"attr name is {group.attrs.get('name')!r}, the config says {name!r}")
    wanted = [str(i) for i in range(len(expected))]
    for key in sorted(set(group.keys()) - set(wanted)):
        problems.add(f"{where}/{key}", f"unexpected: the config implies {len(expected)} variables")
    shapes = []
    for key, (description, shape, dtypes) in zip(wanted, expected):
        if key not in group:
            problems.add(f"{where}/{key}", f"missing ({description}, shape {list(shape)})")
            continue
        shapes.append(check_dataset(group[key], shape, f"{where}/{key} ({description})", problems, dtypes))
    return shapes


def check_weights_h5(h5, layers, optimizer, problems):
    for key in sorted(set(h5.keys()) - {"vars", "layers", "optimizer"}):
        problems.add(f"model.weights.h5 /{key}", "unexpected group (expected vars, layers, optimizer)")
    check_vars_group(subgroup(h5, "vars"), "model.weights.h5 /vars", [], problems)
    summary = {"layers": {}, "optimizer": None, "optimizer_vars": 0}
    groups = subgroup(h5, "layers")
    if groups is None:
        problems.add("model.weights.h5", "missing group /layers")
        return summary
    names = group_names(layers)
    for key in sorted(set(groups.keys()) - set(names)):
        problems.add(f"model.weights.h5 /layers/{key}", f"unexpected layer group (the config's layers give {names})")
    for layer, name in zip(layers, names):
        where = f"model.weights.h5 /layers/{name}"
        if name not in groups:
            problems.add(where, f"missing: the group of layer '{layer.name}' ({layer.class_name})")
            continue
        expected = [(f"{layer.name}/{var}", shape, weight_dtypes(layer, var)) for var, shape, _ in layer.variables]
        summary["layers"][name] = check_vars_group(subgroup(groups[name], "vars"), where + "/vars", expected,
                                                   problems, layer.name)
    check_keras3_optimizer_group(h5, layers, optimizer, summary, problems)
    return summary


def check_keras3_optimizer_group(h5, layers, optimizer, summary, problems):
    where = "model.weights.h5 /optimizer/vars"
    if optimizer is None:
        if "optimizer" in h5:
            problems.add(where, "present, but config.json has no compile_config optimizer")
        return
    expected = expected_keras3_optimizer_vars(optimizer, layers, "config.json compile_config.optimizer", problems)
    if expected is None:
        return
    if "optimizer" not in h5:
        problems.add(where, f"missing: compile_config has an optimizer ({optimizer.get('class_name')})")
        return
    check_vars_group(subgroup(h5, "optimizer") and subgroup(h5["optimizer"], "vars"), where, expected, problems,
                     optimizer["config"].get("name"))
    summary["optimizer"] = optimizer.get("class_name")
    summary["optimizer_vars"] = len(expected)


# ----------------------------------------------------------------------------
# Legacy .h5 (tf.keras 2.x hdf5_format, Keras 3 legacy_h5_format)


def attr_text(value):
    return value.decode("utf8", errors="replace") if isinstance(value, bytes) else value


def read_names(group, name, where, problems, kinds):
    """A list-of-names attribute (layer_names, weight_names): fixed-length
    or variable-length strings, possibly split into name0, name1, ...; an
    empty list is stored as an empty float64 array."""
    if name in group.attrs:
        parts = [group.attrs[name]]
    else:
        parts, i = [], 0
        while f"{name}{i}" in group.attrs:
            parts.append(group.attrs[f"{name}{i}"])
            i += 1
        if not parts:
            problems.add(where, f"missing attribute '{name}'")
            return None
    names = []
    for part in parts:
        if getattr(part, "size", 1) == 0:
            continue
        if getattr(part, "dtype", None) is None or part.dtype.kind not in "SOU":
            problems.add(where, f"attribute '{name}' must be an array of strings, got {part!r}")
            return None
        kinds.add("fixed-length" if part.dtype.kind == "S" else "variable-length")
        names += [attr_text(n) for n in part.tolist()]
    return names


def check_legacy_h5(path, problems):
    with h5py.File(path, "r") as f:
        version = attr_text(f.attrs.get("keras_version"))
        flavor = {"2": "tf2", "3": "keras3"}.get(str(version)[:1]) if isinstance(version, str) else None
        if flavor is None:
            problems.add("/ @keras_version", f"must be a \"2.x\" or \"3.x\" string, got {version!r}")
            return None
        backend = attr_text(f.attrs.get("backend"))
        if not isinstance(backend, str) or backend != "tensorflow":
            problems.add("/ @backend", f"is {f.attrs.get('backend')!r}; Keras writes \"tensorflow\" (or the backend's name)")
        config = load_root_json(f, "model_config", problems, required=True)
        training = load_root_json(f, "training_config", problems, required=False)
        if config is None:
            return None
        if not isinstance(config, dict) or config.get("class_name") != "Sequential" or \
                not isinstance(config.get("config"), dict):
            problems.add("/ @model_config", "must be {\"class_name\": \"Sequential\", \"config\": {...}}")
            return None
        model_name = config["config"].get("name", "sequential")
        layers = describe_layers(config["config"].get("layers"), "/ @model_config layers", problems, flavor)
        if problems:
            return None
        kinds = set()
        summary = {"format": "h5", "flavor": "tf.keras 2.x" if flavor == "tf2" else "keras 3",
                   "keras_version": version, "layers": {}, "optimizer": None, "optimizer_vars": 0}
        check_model_weights(f, layers, model_name, flavor, summary, kinds, problems)
        check_optimizer_weights(f, layers, model_name, flavor, training, summary, kinds, problems)
        summary["string_attributes"] = sorted(kinds)
        return summary


def load_root_json(f, name, problems, required):
    if name not in f.attrs:
        if required:
            problems.add("/", f"missing attribute '{name}'")
        return None
    value = f.attrs[name]
    if not isinstance(value, (str, bytes)):
        problems.add(f"/ @{name}", f"must be a string, got {type(value).__name__}")
        return None
    if len(value) > MAX_JSON_BYTES:
        problems.add(f"/ @{name}", f"is {len(value)} bytes, more than {MAX_JSON_BYTES}")
        return None
    return parse_json(value, f"/ @{name}", problems)


def legacy_weight_name(flavor, model_name, layer, var):
    return f"{layer}/{var}:0" if flavor == "tf2" else f"{model_name}/{layer}/{var}"


def check_model_weights(f, layers, model_name, flavor, summary, kinds, problems):
    group = f.get("model_weights")
    if not isinstance(group, h5py.Group):
        problems.add("/model_weights", "missing (the layers' weights live there)")
        return
    names = read_names(group, "layer_names", "/model_weights", problems, kinds)
    expected = [layer.name for layer in layers]
    if names is not None and names != expected:
        problems.add("/model_weights @layer_names", f"is {names}, the config's layers are {expected}")
    for layer in layers:
        where = f"/model_weights/{layer.name}"
        g = group.get(layer.name)
        if not isinstance(g, h5py.Group):
            problems.add(where, f"missing: the weights of layer '{layer.name}' ({layer.class_name})")
            continue
        weight_names = read_names(g, "weight_names", where, problems, kinds)
        wanted = [legacy_weight_name(flavor, model_name, layer.name, var) for var, _, _ in layer.variables]
        if weight_names is None:
            continue
        if weight_names != wanted:
            problems.add(where + " @weight_names", f"is {weight_names}, expected {wanted}")
        shapes = []
        for weight, (var, shape, _) in zip(weight_names, layer.variables):
            if weight not in g:
                problems.add(f"{where}/{weight}", "missing: named in weight_names")
                continue
            shapes.append(check_dataset(g[weight], shape, f"{where}/{weight}", problems, weight_dtypes(layer, var)))
        summary["layers"][layer.name] = shapes
    top = group.get("top_level_model_weights")
    if top is not None and read_names(top, "weight_names", "/model_weights/top_level_model_weights",
                                      problems, kinds):
        problems.add("/model_weights/top_level_model_weights", "a Sequential model has no top-level weights")


def legacy_optimizer_names(optimizer, layers, model_name, flavor, problems):
    """[(weight name, shape, dtypes)] in the order the optimizer's weights are saved."""
    where = "/ @training_config optimizer_config"
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("config"), dict):
        problems.add(where, "must be {\"class_name\": ..., \"config\": {...}}")
        return None
    class_name, config = optimizer.get("class_name"), optimizer["config"]
    if not isinstance(class_name, str):
        problems.add(where, f"'class_name' must be a string, got {json.dumps(class_name)}")
        return None
    base = class_name.replace("Custom>", "")
    if base not in ("Adam", "SGD"):
        problems.add(where, f"optimizer class {json.dumps(class_name)}: this checker knows Adam and SGD")
        return None
    trainable = trainable_variables(layers)
    scalar_int, f32 = ("<i8", "<i4"), ("<f4",)
    if flavor == "keras3":
        opt = config.get("name", base.lower())
        slots, after = keras3_optimizer_slots({"class_name": base, "config": config}, where, problems)
        out = [(f"{opt}/iteration", (), scalar_int)]
        if not isinstance(config.get("learning_rate"), dict):
            out.append((f"{opt}/learning_rate", (), f32))
        for layer, var, shape in trainable:
            out += [(f"{opt}/{model_name}_{layer.name}_{var}_{slot}", shape, f32) for slot in slots]
        for slot in after:
            out += [(f"{opt}/{model_name}_{layer.name}_{var}_{slot}", shape, f32) for layer, var, shape in trainable]
        return out
    slots = ["m", "v"] + (["vhat"] if config.get("amsgrad") else []) if base == "Adam" else \
        (["momentum"] if config.get("momentum", 0) else [])
    if class_name.startswith("Custom>") or config.get("is_legacy_optimizer") is False:
        # TF 2.11+ optimizer: iteration, then the slots of each variable.
        out = [("iteration:0", (), scalar_int)]
        new_slots = [s if s != "momentum" else "m" for s in slots]
        for layer, var, shape in trainable:
            out += [(f"{slot}/{layer.name}/{var}:0", shape, f32) for slot in new_slots]
        return out
    # OptimizerV2: iterations, then each slot for every variable in turn.
    opt = config.get("name", base)
    out = [(f"{opt}/iter:0", (), scalar_int)]
    for slot in slots:
        out += [(f"{opt}/{layer.name}/{var}/{slot}:0", shape, f32) for layer, var, shape in trainable]
    return out


def check_optimizer_weights(f, layers, model_name, flavor, training, summary, kinds, problems):
    optimizer = training.get("optimizer_config") if isinstance(training, dict) else None
    if optimizer is None:
        if "optimizer_weights" in f:
            problems.add("/optimizer_weights", "present, but training_config has no optimizer_config")
        return
    expected = legacy_optimizer_names(optimizer, layers, model_name, flavor, problems)
    if expected is None:
        return
    group = f.get("optimizer_weights")
    if not isinstance(group, h5py.Group):
        problems.add("/optimizer_weights", f"missing: training_config has an optimizer ({optimizer.get('class_name')})")
        return
    names = read_names(group, "weight_names", "/optimizer_weights", problems, kinds)
    wanted = [name for name, _, _ in expected]
    if names is not None and names != wanted:
        problems.add("/optimizer_weights @weight_names", f"is {names}, expected {wanted}")
    for name, shape, dtypes in expected:
        if name not in group:
            problems.add(f"/optimizer_weights/{name}", "missing")
            continue
        check_dataset(group[name], shape, f"/optimizer_weights/{name}", problems, dtypes)
    summary["optimizer"] = optimizer.get("class_name")
    summary["optimizer_vars"] = len(expected)


# ----------------------------------------------------------------------------


def check(path):
    problems = Problems()
    summary = None
    try:
        if zipfile.is_zipfile(path):
            summary = check_keras_zip(path, problems)
        elif h5py.is_hdf5(path):
            summary = check_legacy_h5(path, problems)
        else:
            problems.add(path, "neither a zip archive (.keras) nor an HDF5 file (.h5)")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        problems.add(path, f"{type(e).__name__}: {e}")
    except Exception as e:  # a checker bug must still read as a rejection, not a pass
        problems.add(path, f"internal error of the checker: {type(e).__name__}: {e}")
    return summary, problems


def main(argv):
    if len(argv) != 2:
        print("usage: check_keras_layout.py FILE   (a .keras zip or a legacy .h5 file)", file=sys.stderr)
        return 2
    summary, problems = check(argv[1])
    if problems or summary is None:
        for line in problems.lines or [f"{argv[1]}: not a Keras model file"]:
            print(line)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
