#!/usr/bin/env python3
"""Writes tests/core/testdata/python_fixture.safetensors, an independent check
of gradflow's checkpoint reader (core/checkpoint.cc).

Only the Python standard library (struct + json) is used, following the
published safetensors format:
  8 bytes   header length N, unsigned little-endian
  N bytes   JSON: name -> {"dtype", "shape", "data_offsets": [begin, end]},
            plus "__metadata__" (string -> string); padded with spaces to a
            multiple of 8 bytes
  rest      raw little-endian tensor data, offsets relative to its start

Deliberate differences from gradflow's own writer, so the reader is tested on
a layout it did not produce: header keys in insertion order (not sorted),
data in an order unrelated to the names, JSON with escaped non-ASCII.

Usage: /usr/bin/python3 tools/make_safetensors_fixture.py [OUTPUT]
The expected values are repeated in tests/core/checkpoint_test.cc.
"""

import json
import os
import struct
import sys

DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "core",
                              "testdata", "python_fixture.safetensors")

# name, dtype, shape, values; the data section follows this order.
TENSORS = [
    ("step", "I64", [], [1234567890123]),
    ("dense/kernel", "F32", [2, 3], [0.5, -1.25, 3.0, 0.1, -0.0, 1e-40]),
    ("dense/bias", "F32", [3], [1.0, 2.0, -3.5]),
    ("labels", "I32", [4], [-2147483648, -1, 0, 2147483647]),
    ("empty", "F32", [0, 3], []),
]
METADATA = {"format": "gradflow-test", "note": "caf\u00e9 \u2713 \U0001F600"}
STRUCT_CODES = {"F32": "f", "I32": "i", "I64": "q"}


def main():
    output = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUTPUT
    header = {}
    data = b""
    for name, dtype, shape, values in TENSORS:
        raw = struct.pack("<%d%s" % (len(values), STRUCT_CODES[dtype]), *values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    header["__metadata__"] = METADATA
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(output, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
