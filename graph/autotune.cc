#include "graph/autotune.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gradflow {
namespace {

// A candidate's kernel, which knows which candidate it is.
class ChosenKernel : public Kernel {
 public:
  ChosenKernel(std::unique_ptr<Kernel> kernel, std::string name) : kernel_(std::move(kernel)), name_(std::move(name)) {}
  absl::Status Run(const RunContext& ctx) override { return kernel_->Run(ctx); }
  std::string implementation() const override { return name_; }

 private:
  std::unique_ptr<Kernel> kernel_;
  std::string name_;
};

struct ChoiceCache {
  std::mutex mutex;
  std::map<std::string, std::string> choices;  // key -> candidate name
  double seconds = 0;                          // spent making and timing candidates
};

ChoiceCache& Cache() {
  static ChoiceCache* cache = new ChoiceCache;
  return *cache;
}

// What the choice depends on: the op, its plain attrs, the types and the threads.
std::string ChoiceKey(const KernelContext& k) {
  std::string key = k.node.op_name();
  for (const auto& [name, value] : k.node.attrs) {
    if (const auto* b = std::get_if<bool>(&value)) absl::StrAppend(&key, " ", name, "=", *b);
    if (const auto* i = std::get_if<int64_t>(&value)) absl::StrAppend(&key, " ", name, "=", *i);
    if (const auto* d = std::get_if<double>(&value)) absl::StrAppend(&key, " ", name, "=", *d);
    if (const auto* s = std::get_if<std::string>(&value)) absl::StrAppend(&key, " ", name, "=", *s);
  }
  for (const TensorType& t : k.input_types) absl::StrAppend(&key, " ", t.ToString());
  absl::StrAppend(&key, " ->");
  for (const TensorType& t : k.output_types) absl::StrAppend(&key, " ", t.ToString());
  return absl::StrCat(key, " threads=", omp_get_max_threads());
}

absl::StatusOr<std::unique_ptr<Kernel>> Make(const KernelCandidate& candidate) {
  absl::StatusOr<std::unique_ptr<Kernel>> kernel = candidate.make();
  if (!kernel.ok()) return kernel.status();
  return std::unique_ptr<Kernel>(new ChosenKernel(*std::move(kernel), candidate.name));
}

// One timed run; +inf if the kernel fails.
double TimedRun(Kernel& kernel) {
  const RunContext ctx;
  const auto start = std::chrono::steady_clock::now();
  if (!kernel.Run(ctx).ok()) return std::numeric_limits<double>::infinity();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Rounds of one run per candidate, after a warm-up round (which also pays
// for first-touch page faults). Interleaving puts a burst of load from
// other processes on every candidate alike, and the best run of each is
// the one least disturbed.
constexpr int kRounds = 7;
// Another candidate replaces the first (the default) only when its best run
// is this much faster: a choice that noise could flip stays the default.
constexpr double kMargin = 0.05;

// Makes every candidate and keeps the fastest (above); a candidate that
// cannot be made (a shape its primitive does not support) just loses.
absl::StatusOr<std::unique_ptr<Kernel>> Fastest(const std::vector<KernelCandidate>& candidates) {
  std::vector<std::unique_ptr<Kernel>> kernels;
  absl::Status first_error;
  for (const KernelCandidate& candidate : candidates) {
    absl::StatusOr<std::unique_ptr<Kernel>> kernel = Make(candidate);
    if (kernel.ok()) {
      kernels.push_back(*std::move(kernel));
    } else if (first_error.ok()) {
      first_error = kernel.status();
    }
  }
  if (kernels.empty()) return first_error;
  std::vector<double> best(kernels.size(), std::numeric_limits<double>::infinity());
  std::vector<bool> failed(kernels.size(), false);
  for (int round = 0; round <= kRounds; ++round) {
    for (size_t i = 0; i < kernels.size(); ++i) {
      const double seconds = failed[i] ? 0 : TimedRun(*kernels[i]);
      failed[i] = failed[i] || std::isinf(seconds);
      if (round > 0 && !failed[i]) best[i] = std::min(best[i], seconds);
    }
  }
  for (size_t i = 0; i < kernels.size(); ++i) {
    if (failed[i]) best[i] = std::numeric_limits<double>::infinity();
  }
  size_t chosen = 0;
  for (size_t i = 1; i < kernels.size(); ++i) {
    if (best[i] < best[chosen] * (1 - kMargin)) chosen = i;
  }
  if (std::isinf(best[chosen])) return absl::InternalError("every implementation failed to run");
  return std::move(kernels[chosen]);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> ChooseKernel(const KernelContext& k,
                                                     const std::vector<KernelCandidate>& candidates) {
  if (k.autotune == "first") return Make(candidates.front());
  for (const KernelCandidate& candidate : candidates) {
    if (candidate.name == k.autotune) return Make(candidate);
  }
  if (k.autotune != "fastest") {
    std::vector<std::string> names;
    for (const KernelCandidate& candidate : candidates) names.push_back(candidate.name);
    return absl::InvalidArgumentError(absl::StrCat(
        "node '", k.node.name, "' (", k.node.op_name(), "): SessionOptions::autotune is '", k.autotune,
        "'; use \"fastest\", \"first\" or one of this op's implementations: ", absl::StrJoin(names, ", ")));
  }
  const std::string key = ChoiceKey(k);
  ChoiceCache& cache = Cache();
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.choices.find(key);
    for (const KernelCandidate& candidate : candidates) {
      if (it != cache.choices.end() && candidate.name == it->second) return Make(candidate);
    }
  }
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Kernel>> fastest = Fastest(candidates);
  std::lock_guard<std::mutex> lock(cache.mutex);
  cache.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (fastest.ok()) cache.choices.emplace(key, (*fastest)->implementation());
  return fastest;
}

std::vector<std::pair<std::string, std::string>> AutotuneChoices() {
  ChoiceCache& cache = Cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return {cache.choices.begin(), cache.choices.end()};
}

double AutotuneSeconds() {
  ChoiceCache& cache = Cache();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return cache.seconds;
}

}  // namespace gradflow
