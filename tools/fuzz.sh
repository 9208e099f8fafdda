#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (bazel --config=fuzz:
# AddressSanitizer + UBSan + libFuzzer) and runs each for a bounded time,
# starting from its committed seed corpus tests/fuzz/corpus/<target>/.
#
#   tools/fuzz.sh                 # 60 s per target
#   tools/fuzz.sh 10 idx_fuzzer   # 10 s, one target
#
# Prints one line per target: executions, inputs that found new coverage, and
# whether it crashed. A crash (or a failed invariant, or a leak, or an input
# slower than 10 s or above 2 GiB) leaves its input in the artifact folder it
# prints: add that file to tests/fuzz/regressions/<target>/ so the replay test
# (bazel test //tests/fuzz/...) keeps it fixed. Exit status: 0 if no target crashed.
#
# CC=clang makes Bazel re-detect its C++ toolchain, so this uses an output
# base of its own (GRADFLOW_CLANG_OUTPUT_BASE, shared with --config=tsan); the
# shared one keeps its gcc build. New corpus inputs go to GRADFLOW_FUZZ_WORK
# (a temporary folder by default), never into the committed seeds.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
# Default: every target, one per tests/fuzz/<name>_fuzzer.cc.
if ((${#targets[@]} == 0)); then
  for source in tests/fuzz/*_fuzzer.cc; do targets+=("$(basename "$source" .cc)"); done
fi
# One per checkout (an output base belongs to one workspace).
output_base="${GRADFLOW_CLANG_OUTPUT_BASE:-$HOME/.cache/gradflow-clang/$(pwd -P | md5sum | cut -c1-12)}"
work="${GRADFLOW_FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gradflow-fuzz.XXXXXX")}"
# Fixed libFuzzer seed: the same inputs are tried in the same order (the
# count within the time bound still depends on the machine's speed).
fuzz_seed="${GRADFLOW_FUZZ_SEED:-1}"

bazel_fuzz=(bazel "--output_base=$output_base")
labels=()
for t in "${targets[@]}"; do labels+=("//tests/fuzz:$t"); done
# --symlink_prefix=/: no bazel-* links, so the workspace's links keep pointing
# at the shared output base.
if ! "${bazel_fuzz[@]}" build --config=fuzz --symlink_prefix=/ "${labels[@]}"; then
  echo "fuzz: build failed"
  exit 1
fi
bin="$("${bazel_fuzz[@]}" info --config=fuzz bazel-bin 2>/dev/null)/tests/fuzz"

failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  log="$work/$t/fuzz.log"
  "$bin/$t" -max_total_time="$seconds" -seed="$fuzz_seed" -print_final_stats=1 \
      -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$work/$t/artifacts/" \
      "$work/$t/corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  added="$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)"
  rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)"
  if ((rc == 0)); then
    echo "fuzz $t: ${runs:-?} executions in ${seconds} s, ${added:-?} new inputs, peak RSS ${rss:-?} MB, no crash"
  else
    failed=1
    echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} executions; log: $log"
    grep -E "^==[0-9]+==ERROR|runtime error|fuzz invariant failed|SUMMARY" "$log" | head -5
    ls "$work/$t/artifacts/"* 2>/dev/null | sed 's/^/  input: /'
  fi
done
exit "$failed"
