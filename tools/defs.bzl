"""Build macros for gradflow's library folders."""

# target_compatible_with of every target that needs Open MPI: built with
# `--config=mpi` (.bazelrc), skipped as incompatible by a plain `bazel test //...`.
MPI_ONLY = select({
    "//:mpi_enabled": [],
    "//conditions:default": ["@platforms//:incompatible"],
})

def gf_registering_library(name, deps, copts = []):
    """A folder's library whose files register themselves at start-up.

    ops/ (GF_REGISTER_OP), optimizers/ (their update ops) and nn/ (layer
    types, nn/layer_registry.h) register in static initializers: every .cc
    and .h of the folder, linked whole (alwayslink), so that a binary keeps
    the registrations even when it references no symbol of a file.
    """
    native.cc_library(
        name = name,
        srcs = native.glob(["*.cc"]),
        hdrs = native.glob(["*.h"]),
        copts = copts,
        alwayslink = True,
        visibility = ["//visibility:public"],
        deps = deps,
    )
