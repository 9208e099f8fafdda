#ifndef GRADFLOW_BENCHMARKS_RUNNER_FLAGS_H_
#define GRADFLOW_BENCHMARKS_RUNNER_FLAGS_H_

// The "--name=value" flags of the runners benchmarks/compare.py starts
// (gradflow_runner, onednn_limit, compare_libtorch), and the result line it
// reads back. Header-only C++17: compare.sh builds the libtorch twin with
// plain g++.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace gradflow::benchmarks {

using RunnerFlags = std::map<std::string, std::string>;

// The flags every runner takes, with their defaults.
inline RunnerFlags DefaultRunnerFlags() {
  return {{"workload", "W1"}, {"mode", "train"} /* or "predict" */, {"batch", "32"},
          {"samples", "60000"}, {"repeats", "1"}};
}

// Overwrites `flags` (which lists every accepted name) from argv. On an
// unknown or malformed argument, prints the accepted flags and returns false.
inline bool ParseRunnerFlags(int argc, char** argv, RunnerFlags& flags) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const bool well_formed = arg.rfind("--", 0) == 0 && eq != std::string::npos;
    const std::string name = well_formed ? arg.substr(2, eq - 2) : "";
    if (!well_formed || flags.count(name) == 0) {
      std::string usage;
      for (const auto& flag : flags) usage += " --" + flag.first + "=";
      std::fprintf(stderr, "unknown argument '%s'; use%s\n", arg.c_str(), usage.c_str());
      return false;
    }
    flags[name] = arg.substr(eq + 1);
  }
  return true;
}

// The values of the flags every runner takes, once parsed:
//   const auto [workload, mode, batch, samples, repeats] = RunnerSettingsOf(flags);
// (onednn_limit reads them one by one instead: its lambdas capture them, and
// clang 14, which the tsan config builds with, cannot capture structured
// bindings.)
struct RunnerSettings {
  std::string workload, mode;
  int64_t batch, samples;
  int repeats;
};

inline RunnerSettings RunnerSettingsOf(const RunnerFlags& flags) {
  return {flags.at("workload"), flags.at("mode"), std::atoll(flags.at("batch").c_str()),
          std::atoll(flags.at("samples").c_str()), std::atoi(flags.at("repeats").c_str())};
}

// The JSON line compare.py reads from a runner: throughput from the median
// of the repeats' seconds, every repeat's seconds, the threads, and whether
// the data was the real Fashion-MNIST. (gradflow_runner adds its plan's
// memory to the line and prints its own.)
inline void PrintRunnerResult(int64_t samples, const std::vector<double>& seconds, int threads, bool real_data) {
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  std::string list;
  for (double s : seconds) list += (list.empty() ? "" : ", ") + std::to_string(s);
  std::printf("{\"samples_per_s\": %.1f, \"seconds\": [%s], \"threads\": %d, \"real_data\": %s}\n",
              samples / sorted[sorted.size() / 2], list.c_str(), threads, real_data ? "true" : "false");
}

}  // namespace gradflow::benchmarks

#endif  // GRADFLOW_BENCHMARKS_RUNNER_FLAGS_H_
