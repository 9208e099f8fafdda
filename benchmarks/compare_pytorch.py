#!/usr/bin/python3
"""PyTorch peer of benchmarks/gradflow_runner.cc: one measurement of one
issue-7 workload (see benchmarks/workloads.h), printed as one JSON line
{"samples_per_s": ..., "seconds": [...]}.

Same models (784-300-100-10 / 20x100, ELU, He normal = truncated normal with
stddev sqrt(2 / fan_in) as Keras, zero biases), same optimizers (SGD lr 0.01
momentum 0.9 / Adam lr 0.001 eps 1e-7), batch norm with Keras's momentum 0.99
(PyTorch momentum 0.01) and epsilon 1e-3, dropout 0.2, softmax cross-entropy
from the logits, the same data (Fashion-MNIST train split) reshuffled every
epoch, the loss read back every step as Fit does.

Run with Debian's interpreter: /usr/bin/python3 benchmarks/compare_pytorch.py
--workload=W1 --mode=train --batch=32. Threads: torch.set_num_threads(
$OMP_NUM_THREADS); the BLAS build is chosen by LD_LIBRARY_PATH (compare.sh
measures the pthread and the OpenMP OpenBLAS). --autocast=bf16 runs the
forward pass (and so the backward of its ops) under
torch.autocast("cpu", dtype=torch.bfloat16), the peer of gradflow's
mixed_bfloat16 policy.
"""
import argparse
import contextlib
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

DATA_DIR = os.environ.get("GRADFLOW_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"


def load_train():
    try:
        with gzip.open(os.path.join(DATA_DIR, "train-images-idx3-ubyte.gz")) as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16)
        with gzip.open(os.path.join(DATA_DIR, "train-labels-idx1-ubyte.gz")) as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
        x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 28, 28)
        y = torch.from_numpy(labels.astype(np.int64))
        return x, y, True
    except OSError:
        g = torch.Generator().manual_seed(42)
        return torch.rand(60000, 28, 28, generator=g), torch.randint(0, 10, (60000,), generator=g), False


def he_normal_(linear):
    fan_in = linear.weight.shape[1]
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # Keras: truncated normal's stddev correction
    torch.nn.init.trunc_normal_(linear.weight, std=std, a=-2 * std, b=2 * std)
    if linear.bias is not None:
        torch.nn.init.zeros_(linear.bias)
    return linear


def build(workload):
    layers = [torch.nn.Flatten()]
    widths = [784]
    if workload == "W1":
        for units in (300, 100):
            layers += [he_normal_(torch.nn.Linear(widths[-1], units)), torch.nn.ELU()]
            widths.append(units)
    elif workload == "W2":
        for _ in range(20):
            layers += [he_normal_(torch.nn.Linear(widths[-1], 100)), torch.nn.ELU()]
            widths.append(100)
    elif workload == "W3":
        for units in (300, 100):
            layers += [he_normal_(torch.nn.Linear(widths[-1], units, bias=False)),
                       torch.nn.BatchNorm1d(units, eps=1e-3, momentum=0.01), torch.nn.ELU()]
            widths.append(units)
    elif workload == "W4":
        for units in (300, 100):
            layers += [torch.nn.Dropout(0.2), he_normal_(torch.nn.Linear(widths[-1], units)), torch.nn.ELU()]
            widths.append(units)
        layers.append(torch.nn.Dropout(0.2))
    else:
        raise SystemExit(f"unknown workload {workload!r}; use W1, W2, W3 or W4")
    layers.append(he_normal_(torch.nn.Linear(widths[-1], 10)))
    model = torch.nn.Sequential(*layers)
    if workload == "W2":
        opt = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7, foreach=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True)
    return model, opt


def autocast(kind):
    """torch's CPU mixed precision for --autocast=bf16, else nothing."""
    if kind == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_epoch(model, opt, x, y, batch, gen, cast=""):
    model.train()
    n = x.shape[0]
    order = torch.randperm(n, generator=gen)
    loss_sum = 0.0
    for begin in range(0, n, batch):
        idx = order[begin:begin + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        with autocast(cast):
            logits = model(xb)
        loss = F.cross_entropy(logits.float(), yb)
        loss.backward()
        opt.step()
        loss_sum += loss.item() * xb.shape[0]
    return loss_sum / n


def predict(model, x, batch, cast=""):
    model.eval()
    with torch.inference_mode(), autocast(cast):
        return torch.cat([model(x[begin:begin + batch]) for begin in range(0, x.shape[0], batch)])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workload", default="W1")
    p.add_argument("--mode", default="train")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--samples", type=int, default=60000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--autocast", default="", choices=["", "bf16"])
    a = p.parse_args()
    threads = int(os.environ.get("OMP_NUM_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    x_all, y_all, real = load_train()
    x, y = (x_all, y_all) if a.samples == x_all.shape[0] else (x_all[:a.samples].clone(), y_all[:a.samples].clone())
    model, opt = build(a.workload)
    gen = torch.Generator().manual_seed(42)
    warm = min(a.samples, 2 * a.batch)
    seconds = []
    for _ in range(a.repeats):
        if a.mode == "train":
            train_epoch(model, opt, x[:warm], y[:warm], a.batch, gen, a.autocast)
            start = time.perf_counter()
            train_epoch(model, opt, x, y, a.batch, gen, a.autocast)
        else:
            predict(model, x[:warm], a.batch, a.autocast)
            start = time.perf_counter()
            predict(model, x, a.batch, a.autocast)
        seconds.append(time.perf_counter() - start)
    med = sorted(seconds)[len(seconds) // 2]
    print(json.dumps({"samples_per_s": round(a.samples / med, 1), "seconds": seconds,
                      "threads": torch.get_num_threads(), "real_data": real,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
