#!/usr/bin/python3
"""Driver of benchmarks/compare.sh: runs gradflow, the raw oneDNN limit and
the PyTorch peers (Python on the OpenMP and on the pthread OpenBLAS, and the
libtorch C++ twin on the OpenMP OpenBLAS) on every issue-7 workload,
alternating: each repetition visits every workload and, within it, every
runner in an order rotated by the repetition number. One process per
measurement, so its peak RSS (from wait4) is that workload's.

The limit runs each of its routes (onednn_limit --route=...) as a runner of
its own; gradflow is measured against the faster route per workload.
gradflow_fastest is gradflow_runner --autotune=fastest (W1/W2 training).

The mixed-precision rows (POLICY_ROWS) also run gradflow under Keras's
mixed_bfloat16 policy (bf16_gradflow) and PyTorch under
torch.autocast("cpu", bfloat16) (bf16_torch_autocast, on the OpenMP
OpenBLAS); their table compares each with gradflow's float32 and gives the
achieved GFLOP/s against benchmarks/gemm_peak's bf16 peak.

Prints the CPU model, oneDNN's effective ISA and the peers' OpenBLAS core
(openblas_core), per-run lines, then a table of median samples/s, the
ratios gradflow / best PyTorch and gradflow / limit (ratios of medians), the
route of that limit, and the median peak RSS of each runner.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPENMP_BLAS = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
LIMIT = "onednn_limit"  # its runners are named onednn_limit_<route>

# (label, workload, mode, batch, threads, samples)
WORKLOADS = [
    ("W1 train b32", "W1", "train", 32, 2, 16384),
    ("W1 train b32 60k", "W1", "train", 32, 2, 60000),  # the full epoch: the RSS target
    ("W1 train b256", "W1", "train", 256, 2, 16384),
    ("W1 train b1024", "W1", "train", 1024, 2, 16384),
    ("W2 train b32", "W2", "train", 32, 2, 8192),
    ("W2 train b256", "W2", "train", 256, 2, 16384),
    ("W3 train b32", "W3", "train", 32, 2, 16384),
    ("W3 train b256", "W3", "train", 256, 2, 16384),
    ("W4 train b32", "W4", "train", 32, 2, 16384),
    ("W1 predict b1", "W1", "predict", 1, 2, 2048),
    ("W1 predict b256", "W1", "predict", 256, 2, 16384),
    ("W3 predict b256", "W3", "predict", 256, 2, 16384),
    ("W1 train b32 1thr", "W1", "train", 32, 1, 16384),
    ("W2 train b32 1thr", "W2", "train", 32, 1, 8192),
]


# Rows also run under the mixed_bfloat16 policy.
POLICY_ROWS = ("W1 train b256", "W1 train b1024", "W2 train b256", "W3 train b256", "W1 predict b256")

# Multiply-adds per sample of each workload's Dense layers (benchmarks/workloads.cc):
# W1 and W3 784-300-100-10, W2 784-100, 19 x 100-100, 100-10.
MACS_PER_SAMPLE = {"W1": 784 * 300 + 300 * 100 + 100 * 10, "W3": 784 * 300 + 300 * 100 + 100 * 10,
                   "W2": 784 * 100 + 19 * 100 * 100 + 100 * 10}


def flops_per_sample(workload, mode):
    """Forward 2 flops per multiply-add; training about 3x (dx and dW beside y)."""
    return 2 * MACS_PER_SAMPLE[workload] * (3 if mode == "train" else 1)


def bench_bin(name):
    bin_dir = os.environ.get("GRADFLOW_BENCH_BIN") or os.path.join(ROOT, "bazel-bin/benchmarks")
    return os.path.join(bin_dir, name)


def machine_info():
    """The CPU model and onednn_limit's --info line (oneDNN version, effective ISA, routes)."""
    with open("/proc/cpuinfo") as f:
        models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    p = subprocess.run([bench_bin(LIMIT), "--info=1"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{bench_bin(LIMIT)} --info=1 failed: {p.stderr.strip()}")
    info = json.loads(p.stdout)
    info["cpu"] = models[0] if models else "unknown"
    info["peaks"] = gemm_peaks()
    info["openblas"] = openblas_core()
    return info


def openblas_core():
    """(default, override): the OpenBLAS kernel set the PyTorch peers get, and
    the OPENBLAS_CORETYPE they run with (None: none needed).

    Debian's OpenBLAS 0.3.21 picks its kernels from a table of CPU models;
    a model it does not know gets the generic Prescott (SSE3) kernels, which
    made PyTorch several times slower on a Xeon of family 6, model 207
    (benchmarks/README.md). Any OPENBLAS_CORETYPE it does not know makes it
    choose from the CPU's features instead ("Core not found: ..." then
    "Core: Cooperlake" there), so where the table fails the peers run with
    that core named."""
    def core(extra):
        env = dict(os.environ, OPENBLAS_VERBOSE="2", **extra)
        p = subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True, text=True, env=env)
        found = re.findall(r"Core: (\w+)", p.stdout + p.stderr)
        return found[-1] if found else None
    default = core({})
    if default != "Prescott":
        return default, None
    return default, core({"OPENBLAS_CORETYPE": "from_cpu_features"})


def gemm_peaks():
    """benchmarks/gemm_peak's GFLOP/s by (dtype, threads); None where it fails (no bf16)."""
    peaks = {}
    for dtype in ("f32", "bf16"):
        for threads in (1, 2):
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            p = subprocess.run([bench_bin("gemm_peak"), f"--dtype={dtype}"], capture_output=True, text=True, env=env)
            peaks[(dtype, threads)] = json.loads(p.stdout)["gflops"] if p.returncode == 0 else None
            if p.returncode != 0:
                print(f"  gemm_peak --dtype={dtype}: {p.stderr.strip()}", file=sys.stderr)
    return peaks


def peaks_line(peaks):
    cell = lambda v: f"{v:.0f}" if v else "n/a"
    return "GEMM peak 2048^3 (GFLOP/s, 1 / 2 threads): f32 " + " / ".join(
        cell(peaks[("f32", t)]) for t in (1, 2)) + ", bf16 " + " / ".join(cell(peaks[("bf16", t)]) for t in (1, 2))


def openblas_line(default, override):
    if override:
        return f"OpenBLAS core of the PyTorch peers: {override} (OPENBLAS_CORETYPE; its CPU-model table gives {default})"
    return f"OpenBLAS core of the PyTorch peers: {default or 'unknown'}"


def runners(libtorch_bin, baseline_bin, limit_routes, openblas_override):
    py = ["/usr/bin/python3", os.path.join(ROOT, "benchmarks/compare_pytorch.py")]
    core = {"OPENBLAS_CORETYPE": openblas_override} if openblas_override else {}
    omp_blas = dict(core, LD_LIBRARY_PATH=OPENMP_BLAS)
    limit_covers = lambda w: w[1] in ("W1", "W2") and (w[2] == "train" or w[1] == "W1")
    policy = lambda w: w[0] in POLICY_ROWS
    r = [("gradflow", [bench_bin("gradflow_runner")], {}, lambda w: True),
         ("gradflow_fastest", [bench_bin("gradflow_runner"), "--autotune=fastest"], {},
          lambda w: w[1] in ("W1", "W2") and w[2] == "train")]
    r += [(f"{LIMIT}_{route}", [bench_bin(LIMIT), f"--route={route}"], {}, limit_covers) for route in limit_routes]
    r += [("torch_py_omp", py, omp_blas, lambda w: True),
          ("torch_py_pthread", py, core, lambda w: True)]
    if libtorch_bin:
        r.append(("libtorch_omp", [libtorch_bin], omp_blas, lambda w: True))
    r += [("bf16_gradflow", [bench_bin("gradflow_runner"), "--dtype_policy=mixed_bfloat16"], {}, policy),
          ("bf16_torch_autocast", py + ["--autocast=bf16"], omp_blas, policy)]
    if baseline_bin:  # gradflow_runner built from an earlier commit: before/after in one run
        r.append(("gradflow_before", [baseline_bin], {}, lambda w: True))
    return r


def run_one(cmd, extra_env, w):
    _, workload, mode, batch, threads, samples = w
    env = dict(os.environ)
    env.update(extra_env)
    env.update({"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)})
    args = cmd + [f"--workload={workload}", f"--mode={mode}", f"--batch={batch}", f"--samples={samples}"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # A measurement that a co-runner stalls for minutes is dropped, so the
    # whole comparison stays within its time budget.
    deadline = time.time() + 180
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > deadline:
            p.kill()
            _, status, usage = os.wait4(p.pid, 0)
            print(f"  TIMEOUT {' '.join(args)}", file=sys.stderr)
            return None
        time.sleep(0.05)
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        print(f"  FAILED {' '.join(args)}: {err.strip()[-300:]}", file=sys.stderr)
        return None
    result = json.loads(out.strip().splitlines()[-1])
    result["rss_mib"] = usage.ru_maxrss / 1024.0
    return result


def speed_table(ws, names, value):
    """Samples/s per workload and float32 runner (value(key)) and gradflow's
    ratios; the limit is the faster of its routes, named in the "limit route"
    column."""
    names = [n for n in names if not n.startswith("bf16_")]
    before = "gradflow_before" in names
    print("| workload | " + " | ".join(names) + " | gradflow / best PyTorch | gradflow / limit | limit route |"
          + " fastest / limit |" + (" after / before |" if before else ""))
    print("|" + "---|" * (len(names) + 5 + before))
    for w in ws:
        cells = [value((w[0], n)) for n in names]
        cell = dict(zip(names, cells))
        torch_best = max([c for n, c in cell.items() if n.startswith(("torch", "libtorch")) and c] or [0])
        limits = [(c, n) for n, c in cell.items() if n.startswith(LIMIT) and c]
        lim, lim_name = max(limits) if limits else (None, None)
        ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
        gf = cell["gradflow"]
        route = lim_name[len(LIMIT) + 1:] if lim_name else "-"
        row = (f"| {w[0]} | " + " | ".join(f"{c:.0f}" if c else "-" for c in cells)
               + f" | {ratio(gf, torch_best)} | {ratio(gf, lim)} | {route} | {ratio(cell.get('gradflow_fastest'), lim)} |")
        if before:
            old = cell["gradflow_before"]
            row += f" {gf / old:.3f}x |" if gf and old else " - |"
        print(row)


def bf16_table(ws, value, peaks):
    """The mixed_bfloat16 rows: gradflow bf16 against its float32 and against
    PyTorch's autocast, and its GFLOP/s as a share of the bf16 GEMM peak."""
    print("| workload | gradflow f32 | bf16_gradflow | bf16 / f32 | bf16_torch_autocast | gradflow bf16 / autocast |"
          " GFLOP/s | of bf16 peak |")
    print("|" + "---|" * 8)
    for w in ws:
        if w[0] not in POLICY_ROWS:
            continue
        f32, bf16, torch_bf16 = (value((w[0], n)) for n in ("gradflow", "bf16_gradflow", "bf16_torch_autocast"))
        ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
        gflops = bf16 * flops_per_sample(w[1], w[2]) / 1e9 if bf16 else None
        peak = peaks.get(("bf16", w[4]))
        share = f"{100 * gflops / peak:.0f}%" if gflops and peak else "-"
        print(f"| {w[0]} | " + " | ".join(f"{c:.0f}" if c else "-" for c in (f32, bf16))
              + f" | {ratio(bf16, f32)} | " + (f"{torch_bf16:.0f}" if torch_bf16 else "-")
              + f" | {ratio(bf16, torch_bf16)} | " + (f"{gflops:.0f}" if gflops else "-") + f" | {share} |")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--libtorch", default="")
    p.add_argument("--baseline", default="",
                   help="a gradflow_runner built from an earlier commit, measured alongside")
    p.add_argument("--filter", default="", help="substring of the workload labels to run")
    a = p.parse_args()
    ws = [w for w in WORKLOADS if a.filter in w[0]]
    info = machine_info()
    machine = (f"cpu: {info['cpu']}; oneDNN {info['onednn']}, effective ISA {info['isa']}\n"
               + peaks_line(info["peaks"]) + "\n" + openblas_line(*info["openblas"]))
    print(machine, flush=True)
    rs = runners(a.libtorch, a.baseline, info["routes"], info["openblas"][1])
    width = max(len(r[0]) for r in rs)
    results = {}  # (label, runner) -> list of dicts
    start = time.time()
    for rep in range(a.reps):
        for w in ws:
            pending = [r for r in rs if r[3](w)]
            shift = rep % len(pending)
            for name, cmd, env, _ in pending[shift:] + pending[:shift]:
                res = run_one(cmd, env, w)
                if res:
                    results.setdefault((w[0], name), []).append(res)
                    print(f"rep {rep + 1} {w[0]:<18} {name:<{width}} {res['samples_per_s']:>10.0f} samples/s "
                          f"rss {res['rss_mib']:.0f} MiB", flush=True)
    names = [r[0] for r in rs]
    med = lambda k: statistics.median(x["samples_per_s"] for x in results[k]) if k in results else None
    rss = lambda k: statistics.median(x["rss_mib"] for x in results[k]) if k in results else None
    print(f"\n{machine}\n{a.reps} repetitions, {time.time() - start:.0f} s; load average at the end: "
          f"{os.getloadavg()[0]:.2f}; medians of samples/s (higher is better)\n")
    speed_table(ws, names, med)
    # On a shared machine a co-runner's burst slows one repetition by up to
    # 100x (OpenMP barriers wait for a descheduled thread); the best
    # repetition is the least disturbed estimate of each runner's own speed.
    print("\nbest of the repetitions (samples/s), same columns\n")
    speed_table(ws, names, lambda k: max(x["samples_per_s"] for x in results[k]) if k in results else None)
    if any(w[0] in POLICY_ROWS for w in ws):
        print("\nmixed_bfloat16 (Keras's policy; PyTorch: torch.autocast(\"cpu\", bfloat16)), medians; "
              "GFLOP/s from the Dense layers' multiply-adds, against the bf16 GEMM peak at the same threads\n")
        bf16_table(ws, med, info["peaks"])
    print("\nmedian peak RSS (MiB) per process (gradflow arena = planned peak bytes of the plan)\n")
    print("| workload | " + " | ".join(names) + " | gradflow arena KiB |")
    print("|" + "---|" * (len(names) + 2))
    for w in ws:
        cells = [rss((w[0], n)) for n in names]
        arena = results.get((w[0], "gradflow"), [{}])[0].get("arena_bytes")
        arena_cell = f"{arena / 1024:.0f}" if arena is not None else "-"
        print(f"| {w[0]} | " + " | ".join(f"{c:.0f}" if c else "-" for c in cells) + f" | {arena_cell} |")
    data = results.get((ws[0][0], "gradflow"), [{}])[0].get("data_bytes")
    if data:
        print(f"\ndataset in memory: {data / 2**20:.0f} MiB; RSS target for W1 training: "
              f"< {data / 2**20 + 64:.0f} MiB")


if __name__ == "__main__":
    main()
