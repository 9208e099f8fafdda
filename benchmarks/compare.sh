#!/bin/bash
# gradflow vs the raw oneDNN limit vs PyTorch (Python and libtorch C++) on the
# issue-7 workloads, alternating, 3 repetitions, medians and ratios, peak RSS.
#   benchmarks/compare.sh            # all workloads
#   benchmarks/compare.sh --reps=5 --filter=W1
#   benchmarks/compare.sh --baseline=/tmp/gradflow_runner_before   # before/after of a change
#     (a gradflow_runner built with -c opt from the earlier commit, e.g. in a
#     `git worktree`; it runs alongside, rotated like the other runners)
# Needs the peers: benchmarks/install_peers.sh (Debian's python3-torch,
# libtorch-dev and libopenblas0-openmp). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build -c opt //benchmarks:gradflow_runner //benchmarks:onednn_limit //benchmarks:gemm_peak >&2
# bazel-bin follows whichever configuration built last; ask for the opt one.
export GRADFLOW_BENCH_BIN="$(bazel info -c opt bazel-bin 2>/dev/null)/benchmarks"
LIBTORCH_BIN=""
if [ -f /usr/include/torch/csrc/api/include/torch/torch.h ]; then
  LIBTORCH_BIN="${TMPDIR:-/tmp}/gradflow_compare_libtorch"
  if [ ! -x "$LIBTORCH_BIN" ] || [ benchmarks/compare_libtorch.cc -nt "$LIBTORCH_BIN" ] ||
     [ benchmarks/runner_flags.h -nt "$LIBTORCH_BIN" ]; then
    echo "building the libtorch twin (g++, about 30 s)" >&2
    g++ -O2 -std=c++17 benchmarks/compare_libtorch.cc -I. -I/usr/include/torch/csrc/api/include \
      -ltorch -ltorch_cpu -lc10 -lz -o "$LIBTORCH_BIN"
  fi
else
  echo "libtorch-dev not installed: skipping the C++ peer" >&2
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
exec /usr/bin/python3 benchmarks/compare.py --libtorch="$LIBTORCH_BIN" "$@"
