"""gradflow's test rules: one line per GoogleTest file, one per fuzz target."""

def gf_test(name, deps, srcs = [], **kwargs):
    """The GoogleTest binary built from <name>.cc (plus `srcs`, e.g. a shared
    test header), linked with gtest_main. Other cc_test arguments pass through."""
    native.cc_test(
        name = name,
        srcs = [name + ".cc"] + srcs,
        deps = deps + ["@system//:gtest_main"],
        **kwargs
    )

def gf_fuzz_target(name, deps):
    """The libFuzzer target <name> (<name>.cc defines LLVMFuzzerTestOneInput)
    and its replay test.

    <name> is tagged manual: `bazel test //...` skips it, and tools/fuzz.sh
    builds every tests/fuzz/*_fuzzer.cc with --config=fuzz (clang's libFuzzer). <name>_replay_test feeds every committed
    seed (corpus/<name>/) and crash regression (regressions/<name>/) through
    the same code with the default toolchain, so the normal and the ASan
    suites run them too. Needs the package's ":fuzzing" config_setting and
    ":fuzz_util" library (tests/fuzz/BUILD).
    """
    deps = deps + [":fuzz_util", "@system//:absl"]
    native.cc_binary(
        name = name,
        testonly = True,
        srcs = [name + ".cc"],
        linkopts = select(
            {":fuzzing": ["-fsanitize=fuzzer"]},
            no_match_error = "fuzz targets need clang's libFuzzer: build them with --config=fuzz (tools/fuzz.sh)",
        ),
        tags = ["manual"],
        deps = deps,
    )
    native.cc_test(
        name = name + "_replay_test",
        size = "small",
        srcs = [name + ".cc", "corpus_replay_test.cc"],
        data = native.glob(["corpus/%s/*" % name, "regressions/%s/*" % name]),
        local_defines = ["GF_FUZZ_TARGET=" + name],
        deps = deps + ["@system//:gtest_main"],
    )
