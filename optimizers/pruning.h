#ifndef GRADFLOW_OPTIMIZERS_PRUNING_H_
#define GRADFLOW_OPTIMIZERS_PRUNING_H_

// Sparse models: magnitude pruning of a trained model's weights, as an
// operation on the VariableStore (the chapter's "get rid of the tiny
// weights"), and a sparsity report.
//
//   auto report = optimizers::PruneByMagnitude(session.variables(),
//                                              {"hidden/kernel", "out/kernel"},
//                                              {.target_sparsity = 0.8});
//   std::cout << report->ToString();
//
// Pruning writes zeros into the live tensors, so compiled plans see them at
// once. It keeps no mask: training on afterwards (or optimizer slots with
// momentum) can make pruned weights non-zero again. Prune after training, or
// prune and fine-tune and prune again.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/session.h"

namespace gradflow::optimizers {

struct PruningOptions {
  // Exactly one of the two:
  // zero every weight with |w| < threshold;
  std::optional<double> threshold;
  // or zero the smallest-magnitude weights until at least this fraction of
  // the elements are zero (ceil(target_sparsity * elements); weights that are
  // already zero count; ties go to the earlier variable and element).
  std::optional<double> target_sparsity;
  // With target_sparsity: reach it in each variable separately (layer-wise,
  // as TF Model Optimization's prune_low_magnitude) instead of over all the
  // listed variables together (global magnitude pruning).
  bool per_variable = false;
};

struct VariableSparsity {
  std::string name;
  int64_t elements = 0;
  int64_t zeros = 0;
  double sparsity() const { return elements ? double(zeros) / double(elements) : 0.0; }
};

struct SparsityReport {
  std::vector<VariableSparsity> variables;  // in the order asked for
  int64_t elements = 0;
  int64_t zeros = 0;
  double sparsity() const { return elements ? double(zeros) / double(elements) : 0.0; }
  // A table: variable, elements, zeros, sparsity (%), and a total line.
  std::string ToString() const;
};

// Exact zeros in the named f32 variables.
absl::StatusOr<SparsityReport> MeasureSparsity(const VariableStore& store, const std::vector<std::string>& names);

// Prunes the named f32 variables in place and reports the sparsity after.
// Unknown names, non-f32 variables, both or neither criterion, a negative
// threshold or a target outside [0, 1] are InvalidArgument/NotFound errors,
// reported before anything is changed.
absl::StatusOr<SparsityReport> PruneByMagnitude(VariableStore& store, const std::vector<std::string>& names,
                                                const PruningOptions& options);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_PRUNING_H_
