#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Seeds are small files that reach the interesting parts of each reader: valid
files of every dtype and layout, and a few near-misses a mutation turns into
many more. Deterministic: running it again rewrites the same bytes.

Usage: /usr/bin/python3 tools/make_fuzz_seeds.py
"""

import gzip
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz", "corpus")
STRUCT_CODES = {"F32": "f", "I32": "i", "I64": "q"}


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def safetensors(tensors, metadata=None, pad=True):
    """tensors: (name, dtype, shape, values); data in list order."""
    header, data = {}, b""
    for name, dtype, shape, values in tensors:
        raw = struct.pack("<%d%s" % (len(values), STRUCT_CODES.get(dtype, "f")), *values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def raw_header(text, data=b""):
    text = text.encode("utf-8")
    return struct.pack("<Q", len(text)) + text + data


def checkpoint_seeds():
    t = "checkpoint_fuzzer"
    write(t, "every_dtype", safetensors(
        [("step", "I64", [], [7]), ("dense/kernel", "F32", [2, 3], [0.5, -1, 3, 0.1, -0.0, 1e-40]),
         ("dense/bias", "F32", [3], [1, 2, -3.5]), ("labels", "I32", [2], [-1, 9])],
        {"format": "pt", "epoch": "3"}))
    write(t, "empty_header", raw_header("{}"))
    write(t, "only_metadata", raw_header('{"__metadata__":{"k":"v","caf\\u00e9":"\\ud83d\\ude00"}}'))
    write(t, "empty_tensor", safetensors([("e", "F32", [0, 4], []), ("s", "F32", [], [2.5])]))
    write(t, "unpadded", safetensors([("w", "F32", [1], [1.0])], pad=False))
    write(t, "f16_unimplemented", raw_header(
        '{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}', b"\0" * 4))
    write(t, "overlapping", raw_header(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8))
    write(t, "huge_shape", raw_header(
        '{"a":{"dtype":"I64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', b"\0" * 8))
    write(t, "length_past_end", struct.pack("<Q", 1 << 40) + b'{"a":1}')
    # The model metadata a saved model carries (issue 6): a JSON string value.
    config = json.dumps({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Dense", "config": {"units": 2, "activation": "relu"}}]}})
    write(t, "model_metadata", safetensors(
        [("dense/kernel", "F32", [1, 2], [0.25, -0.5]), ("dense/bias", "F32", [2], [0, 0])],
        {"gradflow.model": config}))


def idx(magic, dims, data):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def idx_seeds():
    t = "idx_fuzzer"
    images = idx(0x803, [2, 3, 3], range(0, 18 * 14, 14))
    labels = idx(0x801, [5], [0, 9, 3, 255, 1])
    # First byte: even = the rest as is, odd = gzip'd by the harness.
    write(t, "images_plain", b"\x00" + images)
    write(t, "labels_plain", b"\x00" + labels)
    write(t, "images_harness_gzip", b"\x01" + images)
    write(t, "labels_harness_gzip", b"\x01" + labels)
    write(t, "images_gzip_stream", b"\x00" + gzip.compress(images, mtime=0))
    write(t, "labels_gzip_stream", b"\x00" + gzip.compress(labels, mtime=0))
    write(t, "empty_dataset", b"\x00" + idx(0x803, [0, 28, 28], []))
    write(t, "truncated", b"\x00" + idx(0x801, [100], [1, 2, 3]))
    write(t, "huge_dims", b"\x01" + idx(0x803, [0xFFFFFFFF, 0xFFFFFFFF, 2], []))


def tensor_seeds():
    """See tests/fuzz/tensor_fuzzer.cc for how the bytes are read."""
    t = "tensor_fuzzer"
    # dtype, rank, dims..., count delta, begin, end, rank, dims...
    write(t, "slice_rows", bytes([0, 3, 4, 2, 3, 0, 1, 3, 2, 12, 2]))
    write(t, "slice_past_end", bytes([1, 2, 10, 3, 0, 0, 20, 1, 30]))
    write(t, "slice_reversed", bytes([2, 1, 9, 0, 5, 2, 2, 3, 3]))
    write(t, "count_mismatch", bytes([0, 1, 2, 18, 0, 1, 1, 2]))
    write(t, "reshape_other_count", bytes([0, 3, 4, 7, 7, 0, 0, 4, 2, 8, 0xF0, 9]))
    write(t, "overflowing_dims", bytes([0, 2, 4, 0xF0, 62, 0, 0, 1, 1, 0xF0, 62]))
    write(t, "beyond_memory", bytes([0, 2, 0xF0, 10, 0xF0, 40, 0, 0x80, 1, 0x80, 0]))
    write(t, "unknown_dim", bytes([0, 2, 0xFF, 3, 0, 0, 0, 2, 0xFF, 3]))
    write(t, "scalar", bytes([0, 0, 0, 0, 1, 0]))


if __name__ == "__main__":
    checkpoint_seeds()
    idx_seeds()
    tensor_seeds()
