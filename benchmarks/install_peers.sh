#!/bin/bash
# The PyTorch peers of benchmarks/compare.sh (Debian 12 packages). Not needed
# to build or test gradflow; CI does not run the comparison.
set -euo pipefail
apt-get install -y python3-torch libtorch-dev libopenblas0-openmp
