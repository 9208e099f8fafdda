#!/usr/bin/env bash
# Builds the data-parallel tests with --config=mpi and runs each under
# `mpirun -np 2` on loopback, printing one line per check (each test case on
# each rank, and the dead-rank check), "mpi <check>: passed" or
# "mpi <check>: failed (...)", and exiting non-zero if any failed. .ci/run
# counts these lines. Needs Open MPI
# (tools/install_deps.sh installs it).
#   tests/mpi/run.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if ! bazel build --config=mpi //tests/mpi:data_parallel_mpi_test //tests/mpi:dead_rank_check; then
  echo "mpi build: failed"
  exit 1
fi
bin="$(bazel info --config=mpi bazel-bin 2>/dev/null)/tests/mpi"

# One thread per rank on a 2-core machine; root in CI containers; loopback
# only. Two ranks sum as a + b on both, bit for bit, whatever the algorithm
# (tests/mpi/README.md says what to fix for more).
mpirun=(mpirun -np 2 --oversubscribe --mca btl self,vader -x OMP_NUM_THREADS=1)
[[ "$(id -u)" == 0 ]] && mpirun+=(--allow-run-as-root)

failed=0
report() {  # name, ok (0/1), detail
  if [[ "$2" == 0 ]]; then echo "mpi $1: passed"; else echo "mpi $1: failed ($3)"; failed=1; fi
}

xml="$(mktemp -d "${TMPDIR:-/tmp}/gradflow-mpi.XXXXXX")"
trap 'rm -rf "$xml"' EXIT
timeout 600 "${mpirun[@]}" -x GF_MPI_XML_PREFIX="$xml/cases" "$bin/data_parallel_mpi_test"
rc=$?
# Each rank's cases from its gtest XML; a rank without a report failed as a whole.
for r in 0 1; do
  if [[ ! -s "$xml/cases.rank$r.xml" ]]; then
    report "data_parallel_mpi_test rank $r" 1 "no XML report; mpirun exit status $rc"
    continue
  fi
  while read -r name ok; do
    report "$name rank $r" "$ok" "see the output above"
  done < <(/usr/bin/python3 - "$xml/cases.rank$r.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    bad = case.find("failure") is not None or case.find("error") is not None
    print(f"{case.get('classname')}.{case.get('name')}", 1 if bad else 0)
PY
  )
done
(( rc == 0 )) || report "data_parallel_mpi_test exit status" 1 "mpirun exited with $rc"

# A dead rank: the job must stop, with an error, within the limit.
start=$(date +%s)
timeout 60 "${mpirun[@]}" "$bin/dead_rank_check"
rc=$?
elapsed=$(( $(date +%s) - start ))
ok=1
(( rc != 0 && rc != 124 )) && ok=0
report dead_rank_stops_the_job "$ok" "exit status $rc after ${elapsed} s; want non-zero before the 60 s timeout"
exit "$failed"
