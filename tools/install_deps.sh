#!/usr/bin/env bash
# Installs the Debian 12 packages gradflow needs to build and test offline
# (see /work/shared/BUILDING.md for what each is for). Idempotent: when every
# package is already installed it touches nothing and needs no network.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap       # Bazel 4.2.3
  bazel-rules-java      # local rules_java for the WORKSPACE
  bazel-platforms       # local platforms for the WORKSPACE
  libdnnl-dev           # oneDNN 2.6 kernels
  libabsl-dev           # Status/StatusOr, strings, containers
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  nlohmann-json3-dev    # safetensors headers
  zlib1g-dev            # gzip'd IDX files
  libhdf5-dev           # Keras .h5 and model.weights.h5 (nn/keras)
  libzip-dev            # Keras .keras archives (nn/keras)
  python3-h5py          # tests/nn/keras: fixture generator and layout reader
  dataset-fashion-mnist # /usr/share/datasets/fashion-mnist
  pkg-config
  g++
  python3-numpy
  clang                 # tools/fuzz.sh: libFuzzer targets (bazel --config=fuzz)
  libclang-rt-14-dev    # clang's libFuzzer and sanitizer runtimes
  libomp-dev            # OpenMP for clang (-fopenmp)
  lld                   # the fuzz config's linker
  libopenmpi-dev        # data parallel (--config=mpi, tests/mpi)
  openmpi-bin           # mpirun
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install_deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then SUDO=(sudo); fi

echo "install_deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
