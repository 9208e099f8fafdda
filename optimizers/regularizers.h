#ifndef GRADFLOW_OPTIMIZERS_REGULARIZERS_H_
#define GRADFLOW_OPTIMIZERS_REGULARIZERS_H_

// Weight penalties (Keras regularizers l1, l2, l1_l2). A penalty is attached
// to a variable node (attrs "l1" and "l2"); Minimize adds the penalty of every
// penalized variable the loss depends on to the loss it differentiates, and
// nn::Sequential adds them to the loss it reports, in training and in
// evaluation, as Keras does (its compiled loss includes model.losses).
//
//   Output w = ops::Variable(scope, "kernel", {784, 300}, HeNormal());
//   optimizers::SetRegularizer(w, optimizers::L2(0.01));   // + 0.01 * sum(w^2)

#include <variant>
#include <vector>

#include "core/describe.h"
#include "graph/graph.h"

namespace gradflow::optimizers {

// Keras's default factor of regularizers.l1, l2 and l1_l2.
inline constexpr double kDefaultPenaltyFactor = 0.01;

// penalty(w) = l1 * sum(|w|) + l2 * sum(w^2) (Keras's L1L2).
struct Regularizer {
  double l1 = 0;
  double l2 = 0;
};

// Keras regularizers.l1(0.01): l1 * sum(|w|).
inline Regularizer L1(double l1 = kDefaultPenaltyFactor) { return {.l1 = l1}; }
// Keras regularizers.l2(0.01): l2 * sum(w^2) (no 1/2 factor, unlike some texts).
inline Regularizer L2(double l2 = kDefaultPenaltyFactor) { return {.l2 = l2}; }
// Keras regularizers.l1_l2(l1=0.01, l2=0.01).
inline Regularizer L1L2(double l1 = kDefaultPenaltyFactor, double l2 = kDefaultPenaltyFactor) {
  return {.l1 = l1, .l2 = l2};
}

// Keras 3's regularizer classes, described once (core/describe.h) for
// configs: their names, fields, defaults and ranges. Each is a penalty:
// Penalty() is the Regularizer it adds; DescribeRegularizer goes back.
namespace regularizers {

struct L1 {
  static constexpr const char* kName = "L1";
  double l1 = kDefaultPenaltyFactor;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) { f(Field::NonNegative("l1"), s.l1); }
  Regularizer Penalty() const { return {.l1 = l1}; }
  friend bool operator==(const L1&, const L1&) = default;
};

struct L2 {
  static constexpr const char* kName = "L2";
  double l2 = kDefaultPenaltyFactor;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) { f(Field::NonNegative("l2"), s.l2); }
  Regularizer Penalty() const { return {.l2 = l2}; }
  friend bool operator==(const L2&, const L2&) = default;
};

// Keras 3's L1L2 class defaults to no penalty; the l1_l2() factory above
// keeps tf.keras's 0.01 for both.
struct L1L2 {
  static constexpr const char* kName = "L1L2";
  static constexpr const char* kAlias = "l1_l2";  // Keras's spelling, not to_snake_case's "l1l2"
  double l1 = 0;
  double l2 = 0;
  template <typename Self, typename F> static void Fields(Self& s, F&& f) {
    f(Field::NonNegative("l1"), s.l1);
    f(Field::NonNegative("l2"), s.l2);
  }
  Regularizer Penalty() const { return {.l1 = l1, .l2 = l2}; }
  friend bool operator==(const L1L2&, const L1L2&) = default;
};

}  // namespace regularizers

using DescribedRegularizer = std::variant<regularizers::L1, regularizers::L2, regularizers::L1L2>;

// The described class of a penalty: L1 or L2 when only that factor is
// non-zero, L1L2 otherwise, so a written L2(0.01) reads back as L2(0.01).
inline DescribedRegularizer DescribeRegularizer(const Regularizer& r) {
  if (r.l1 == 0 && r.l2 != 0) return regularizers::L2{r.l2};
  if (r.l2 == 0 && r.l1 != 0) return regularizers::L1{r.l1};
  return regularizers::L1L2{r.l1, r.l2};
}

inline Regularizer PenaltyOf(const DescribedRegularizer& r) {
  return std::visit([](const auto& c) { return c.Penalty(); }, r);
}

// Attaches `regularizer` to the variable `var` (replacing any earlier one).
// A non-variable or a non-finite factor records an error in the graph.
void SetRegularizer(Output var, const Regularizer& regularizer);

// The penalty of every penalized variable that `loss` depends on and whose
// penalty `loss` does not already include, added to `loss` (node
// "regularized_loss"). Returns `loss` itself when there is nothing to
// add, so calling it twice adds each penalty once.
Output AddRegularizationLosses(Graph& graph, Output loss);

}  // namespace gradflow::optimizers

#endif  // GRADFLOW_OPTIMIZERS_REGULARIZERS_H_
