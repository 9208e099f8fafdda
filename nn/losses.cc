#include "nn/losses.h"

#include <algorithm>
#include <type_traits>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/describe.h"
#include "core/status.h"
#include "ops/losses.h"

namespace gradflow::nn {
namespace {

// Each entry is one loss class of the losses::Loss variant (a test checks
// every alternative has one): Keras 3's short aliases
// (keras/src/losses/__init__.py ALL_OBJECTS_DICT) and its accuracy. The
// function name ("huber") and the class name ("Huber") are derived.
struct LossEntry {
  losses::Loss config;
  std::vector<std::string> aliases;
  std::string accuracy;
};

std::vector<LossInfo> MakeLosses() {
  const std::vector<LossEntry> entries = {
      {losses::SparseCategoricalCrossentropy{}, {}, "sparse_categorical_accuracy"},
      {losses::CategoricalCrossentropy{}, {}, "categorical_accuracy"},
      {losses::BinaryCrossentropy{}, {"bce", "BCE"}, "binary_accuracy"},
      {losses::MeanSquaredError{}, {"mse", "MSE"}, "categorical_accuracy"},
      {losses::Huber{}, {}, "categorical_accuracy"},
  };
  std::vector<LossInfo> infos;
  for (const LossEntry& e : entries) {
    LossInfo info{.config = e.config, .accuracy = e.accuracy};
    info.names.push_back(std::visit([](const auto& l) { return KerasAlias<std::decay_t<decltype(l)>>(); }, e.config));
    info.names.push_back(VariantName(e.config));  // Keras 3 also takes the class name
    info.names.insert(info.names.end(), e.aliases.begin(), e.aliases.end());
    info.class_index_targets = std::holds_alternative<losses::SparseCategoricalCrossentropy>(e.config);
    infos.push_back(std::move(info));
  }
  return infos;
}

// The cross-entropies that may compute from a softmax's logits.
template <typename L>
constexpr bool kUsesSoftmaxLogits =
    std::is_same_v<L, losses::SparseCategoricalCrossentropy> || std::is_same_v<L, losses::CategoricalCrossentropy>;

template <typename Info>
std::vector<std::string> AllNames(const std::vector<Info>& entries) {
  std::vector<std::string> names;
  for (const Info& info : entries) names.insert(names.end(), info.names.begin(), info.names.end());
  return names;
}

template <typename Info>
absl::StatusOr<const Info*> FindByName(const std::vector<Info>& entries, std::string_view name,
                                       const char* what) {
  for (const Info& info : entries) {
    if (std::find(info.names.begin(), info.names.end(), name) != info.names.end()) return &info;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown ", what, " ", QuoteUserText(name), "; valid names: ",
                                                 absl::StrJoin(AllNames(entries), ", ")));
}

}  // namespace

Output BuildLoss(const Scope& scope, const losses::Loss& config, Output targets, Output output,
                 Output softmax_logits) {
  return std::visit(
      [&](auto l) {
        if constexpr (kUsesSoftmaxLogits<decltype(l)>) {
          if (softmax_logits.valid() && !l.from_logits) {
            l.from_logits = true;
            return ops::Loss(scope, targets, softmax_logits, l);
          }
        }
        return ops::Loss(scope, targets, output, l);
      },
      config);
}

const LossInfo& LossInfoOf(const losses::Loss& config) {
  for (const LossInfo& info : Losses()) {
    if (info.config.index() == config.index()) return info;
  }
  return Losses().front();  // unreachable: every alternative is registered (registry_test)
}

const std::vector<LossInfo>& Losses() {
  static const auto* losses = new std::vector<LossInfo>(MakeLosses());
  return *losses;
}

absl::StatusOr<const LossInfo*> FindLoss(std::string_view name) { return FindByName(Losses(), name, "loss"); }

std::vector<std::string> LossNames() { return AllNames(Losses()); }

}  // namespace gradflow::nn
