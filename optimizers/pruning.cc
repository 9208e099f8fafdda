#include "optimizers/pruning.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"

namespace gradflow::optimizers {
namespace {

// The live tensors of `names`, checked to be f32.
absl::StatusOr<std::vector<Tensor>> F32Variables(const VariableStore& store, const std::vector<std::string>& names) {
  if (names.empty()) return absl::InvalidArgumentError("pruning: no variables named");
  std::vector<Tensor> tensors;
  for (const std::string& name : names) {
    if (!store.Has(name)) {
      return absl::NotFoundError(absl::StrCat("pruning: no variable '", name,
                                              "' in the store (compile or initialize the model first)"));
    }
    GF_ASSIGN_OR_RETURN(Tensor t, store.Get(name));
    if (t.dtype() != DType::kF32) {
      return absl::InvalidArgumentError(absl::StrCat("pruning: '", name, "' is ", std::string(DTypeName(t.dtype())),
                                                     t.shape().ToString(), "; only f32 weights can be pruned"));
    }
    tensors.push_back(t);
  }
  return tensors;
}

// Zeros the k smallest |w| among `tensors` (ties: earlier tensor, earlier element).
void ZeroSmallest(std::vector<Tensor*> tensors, int64_t k) {
  struct Entry {
    float magnitude;
    int32_t tensor;
    int64_t index;
  };
  std::vector<Entry> entries;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const float* w = tensors[t]->data<float>();
    for (int64_t i = 0; i < tensors[t]->num_elements(); ++i) {
      entries.push_back({std::abs(w[i]), static_cast<int32_t>(t), i});
    }
  }
  k = std::min<int64_t>(k, static_cast<int64_t>(entries.size()));
  if (k <= 0) return;
  auto smaller = [](const Entry& a, const Entry& b) {
    if (a.magnitude != b.magnitude) return a.magnitude < b.magnitude;
    return a.tensor != b.tensor ? a.tensor < b.tensor : a.index < b.index;
  };
  std::nth_element(entries.begin(), entries.begin() + (k - 1), entries.end(), smaller);
  for (int64_t j = 0; j < k; ++j) tensors[entries[j].tensor]->data<float>()[entries[j].index] = 0.0f;
}

}  // namespace

std::string SparsityReport::ToString() const {
  size_t width = 8;  // "variable"
  for (const VariableSparsity& v : variables) width = std::max(width, v.name.size());
  std::string s = absl::StrFormat("%-*s %12s %12s %9s\n", width, "variable", "elements", "zeros", "sparsity");
  for (const VariableSparsity& v : variables) {
    absl::StrAppend(&s, absl::StrFormat("%-*s %12d %12d %8.2f%%\n", width, v.name, v.elements, v.zeros,
                                        100 * v.sparsity()));
  }
  absl::StrAppend(&s, absl::StrFormat("%-*s %12d %12d %8.2f%%\n", width, "total", elements, zeros, 100 * sparsity()));
  return s;
}

absl::StatusOr<SparsityReport> MeasureSparsity(const VariableStore& store, const std::vector<std::string>& names) {
  GF_ASSIGN_OR_RETURN(std::vector<Tensor> tensors, F32Variables(store, names));
  SparsityReport report;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::span<const float> w = std::as_const(tensors[i]).flat<float>();
    VariableSparsity v{names[i], tensors[i].num_elements(), std::count(w.begin(), w.end(), 0.0f)};
    report.elements += v.elements;
    report.zeros += v.zeros;
    report.variables.push_back(std::move(v));
  }
  return report;
}

absl::StatusOr<SparsityReport> PruneByMagnitude(VariableStore& store, const std::vector<std::string>& names,
                                                const PruningOptions& options) {
  if (options.threshold.has_value() == options.target_sparsity.has_value()) {
    return absl::InvalidArgumentError("pruning: set exactly one of threshold and target_sparsity");
  }
  if (options.threshold && !(*options.threshold >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("pruning: threshold must be >= 0, got ", *options.threshold));
  }
  if (options.target_sparsity && !(*options.target_sparsity >= 0 && *options.target_sparsity <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pruning: target_sparsity must be in [0, 1], got ", *options.target_sparsity));
  }
  GF_ASSIGN_OR_RETURN(std::vector<Tensor> tensors, F32Variables(store, names));
  auto to_zero = [&](int64_t elements) {
    return static_cast<int64_t>(std::ceil(*options.target_sparsity * double(elements) - 1e-9));
  };
  if (options.threshold) {
    const float threshold = static_cast<float>(*options.threshold);
    for (Tensor& t : tensors) {
      for (float& w : t.flat<float>()) {
        if (std::abs(w) < threshold) w = 0.0f;
      }
    }
  } else if (options.per_variable) {
    for (Tensor& t : tensors) ZeroSmallest({&t}, to_zero(t.num_elements()));
  } else {
    std::vector<Tensor*> all;
    int64_t elements = 0;
    for (Tensor& t : tensors) {
      all.push_back(&t);
      elements += t.num_elements();
    }
    ZeroSmallest(all, to_zero(elements));
  }
  return MeasureSparsity(store, names);
}

}  // namespace gradflow::optimizers
