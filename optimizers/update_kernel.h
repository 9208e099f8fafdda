#ifndef GRADFLOW_OPTIMIZERS_UPDATE_KERNEL_H_
#define GRADFLOW_OPTIMIZERS_UPDATE_KERNEL_H_

// The machinery every optimizer's update op shares (internal to optimizers/).
//
// An update op's inputs are `num_vars` groups of (variable, slots...,
// gradient), all f32 of the variable's shape, followed by the optimizer's
// scalars (the learning rate first, then e.g. the step counter). It writes the
// variables and slots in place and has no outputs. With num_vars = 1 it is the
// update of one variable; Minimize's fused mode gives one node all variables
// (a multi-tensor update), so the update phase is one parallel pass over the
// parameters and their slots.
//
// An optimizer supplies a Rule:
//
//   struct Rule {
//     struct Coefficients { ... };               // per step, from the scalars
//     explicit Rule(const Node& node);           // reads the node's attrs
//     int num_slots() const;
//     std::vector<DType> scalar_dtypes() const;  // learning rate first
//     Coefficients Prepare(const ScalarInputs& scalars) const;
//     // Updates elements [begin, end) of one group; t = var, slots..., grad.
//     void Update(const Coefficients& c, float* const* t, int64_t begin, int64_t end) const;
//   };
//
// A fused node and per-variable nodes run the same kernel code (this op with
// num_vars = N or 1), which cuts every variable into the same
// kUpdateChunk-element pieces counted from the variable's start, so both run
// the same instructions over the same element ranges and give bit-identical
// results (tests/optimizers/minimize_test.cc checks it for every optimizer).
// Each element is computed once, by one thread, in a fixed order: results do
// not depend on the thread count. Threads take the pieces dynamically: the
// pieces differ in size (a variable's last piece, the biases), and a static
// split left one of 2 threads up to 40% more elements (W1), measured 2-7%
// more samples/s for W1 and W2 with 2 threads (benchmarks/README.md).

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/describe.h"
#include "core/status.h"
#include "graph/op_registry.h"
#include "ops/op_util.h"

namespace gradflow::optimizers::internal {

// Elements per work item: 32 KiB of each array, so a piece's variable, slots
// and gradient stay in L2 while it is updated.
inline constexpr int64_t kUpdateChunk = 8192;
// Below this many elements in total, one thread: a parallel region costs more.
inline constexpr int64_t kUpdateParallelMin = ops::kParallelMin;

// The scalar inputs of an update node, read at Run time.
struct ScalarInputs {
  std::vector<const void*> values;
  float f32(int i) const { return *static_cast<const float*>(values[i]); }
  int64_t i64(int i) const { return *static_cast<const int64_t*>(values[i]); }
};

inline int64_t NumVars(const Node& node) { return node.attr<int64_t>("num_vars"); }

template <typename Rule>
absl::Status InferUpdate(InferContext& ctx) {
  const Rule rule(ctx.node());
  const int64_t num_vars = NumVars(ctx.node());
  const int group = rule.num_slots() + 2;
  const std::vector<DType> scalars = rule.scalar_dtypes();
  const int64_t want = num_vars * group + static_cast<int64_t>(scalars.size());
  if (num_vars < 1 || ctx.num_inputs() != want) {
    return ctx.Error(absl::StrCat("takes ", num_vars, " group(s) of (variable, ", rule.num_slots(),
                                  " slot(s), gradient) and ", scalars.size(), " scalar(s): ", want,
                                  " inputs, got ", ctx.num_inputs()));
  }
  for (int64_t v = 0; v < num_vars; ++v) {
    const int first = static_cast<int>(v * group);
    for (int i = first; i < first + group; ++i) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
      if (ctx.shape(i) != ctx.shape(first)) {
        return ctx.Error(absl::StrCat(ctx.Describe(i), " must match the variable ", ctx.Describe(first)));
      }
    }
  }
  for (size_t s = 0; s < scalars.size(); ++s) {
    const int i = static_cast<int>(num_vars * group + s);
    GF_RETURN_IF_ERROR(ctx.ExpectDType(i, scalars[s]));
    if (ctx.shape(i).rank() != 0) return ctx.Error(absl::StrCat(ctx.Describe(i), " must be a scalar"));
  }
  return absl::OkStatus();  // no outputs: the op writes its variables and slots
}

template <typename Rule>
absl::StatusOr<std::unique_ptr<Kernel>> UpdateKernel(const KernelContext& k) {
  const Rule rule(k.node);
  const int64_t num_vars = NumVars(k.node);
  const int group = rule.num_slots() + 2;
  struct Piece {
    int64_t group_offset, begin, end;
  };
  std::vector<float*> tensors;
  std::vector<Piece> pieces;
  int64_t total = 0;
  for (int64_t v = 0; v < num_vars; ++v) {
    for (int i = 0; i < group; ++i) tensors.push_back(k.in<float>(static_cast<int>(v * group + i)));
    const int64_t n = k.in_shape(static_cast<int>(v * group)).NumElements();
    for (int64_t b = 0; b < n; b += kUpdateChunk) pieces.push_back({v * group, b, std::min(n, b + kUpdateChunk)});
    total += n;
  }
  ScalarInputs scalars;
  for (int i = static_cast<int>(num_vars * group); i < static_cast<int>(k.inputs.size()); ++i) {
    scalars.values.push_back(k.inputs[i]);
  }
  return ops::MakeKernel([rule, tensors, pieces, scalars, total](const RunContext&) {
    const typename Rule::Coefficients c = rule.Prepare(scalars);
    const int64_t num_pieces = static_cast<int64_t>(pieces.size());
#pragma omp parallel for schedule(dynamic, 1) if (total > kUpdateParallelMin)
    for (int64_t p = 0; p < num_pieces; ++p) {
      rule.Update(c, tensors.data() + pieces[p].group_offset, pieces[p].begin, pieces[p].end);
    }
    return absl::OkStatus();
  });
}

// An update op's attrs are its optimizer's Fields (core/describe.h) but the
// learning rate, which is a scalar input: the names are written once, in
// Fields, and the defaults once, in the struct. All are required, since
// DescribeUpdate sets every one.
template <typename T>
constexpr AttrType AttrTypeOf() {
  if constexpr (std::is_same_v<T, bool>) return AttrType::kBool;
  else if constexpr (std::is_integral_v<T>) return AttrType::kInt;
  else return AttrType::kFloat;
}

inline bool IsLearningRate(const Field& field) { return std::string_view(field.name) == "learning_rate"; }

// The attr declarations of an update op for optimizer O.
template <typename O>
std::vector<AttrDef> FieldAttrDefs() {
  std::vector<AttrDef> defs;
  const O defaults;
  VisitFields(defaults, [&](const Field& field, const auto& value) {
    if (!IsLearningRate(field)) defs.push_back(RequiredAttr(field.name, AttrTypeOf<std::decay_t<decltype(value)>>()));
  });
  return defs;
}

// The attrs DescribeUpdate gives the node: `o`'s fields but the learning rate.
template <typename O>
Attrs FieldAttrs(const O& o) {
  Attrs attrs;
  VisitFields(o, [&](const Field& field, const auto& value) {
    using V = std::decay_t<decltype(value)>;
    if (IsLearningRate(field)) return;
    if constexpr (std::is_same_v<V, bool> || std::is_same_v<V, double>) attrs[field.name] = value;
    else attrs[field.name] = static_cast<int64_t>(value);
  });
  return attrs;
}

// The optimizer a node's attrs describe (its learning rate left at the
// default: the kernel reads the rate from its scalar input), for the Rule.
template <typename O>
O FromFieldAttrs(const Node& node) {
  O o;
  VisitFields(o, [&](const Field& field, auto& value) {
    using V = std::decay_t<decltype(value)>;
    if (IsLearningRate(field)) return;
    if constexpr (std::is_same_v<V, bool> || std::is_same_v<V, double>) value = node.attr<V>(field.name);
    else value = static_cast<V>(node.attr<int64_t>(field.name));
  });
  return o;
}

// The OpDef of an update op following `Rule` whose nodes carry `attrs`
// (plus num_vars, set by the fused form).
template <typename Rule>
OpDef UpdateOpDef(std::string name, std::vector<AttrDef> attrs = {}) {
  attrs.push_back(OptionalAttr("num_vars", int64_t{1}).AtLeast(1));
  return OpDef{
      .name = std::move(name),
      .num_inputs = -1,
      .attrs = std::move(attrs),
      .infer = InferUpdate<Rule>,
      .kernel = UpdateKernel<Rule>,
      .no_gradient_reason = "update op: writes variables and slots, produces no value",
      .mutates_input = 0,
  };
}

}  // namespace gradflow::optimizers::internal

#endif  // GRADFLOW_OPTIMIZERS_UPDATE_KERNEL_H_
