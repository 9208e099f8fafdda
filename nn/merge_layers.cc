#include "nn/merge_layers.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "nn/config_reader.h"
#include "nn/layer_registry.h"
#include "ops/array.h"
#include "ops/concat.h"
#include "ops/math.h"

namespace gradflow::nn {
namespace {

// The layers' checks, as graph errors naming the layer and every shape.
bool CheckInputs(const Layer& layer, const Scope& scope, const std::vector<Output>& xs, size_t min, size_t max,
                 bool same_shape) {
  std::string shapes;
  for (const Output& x : xs) absl::StrAppend(&shapes, shapes.empty() ? "" : ", ", x.type().ToString());
  std::string problem;
  if (xs.size() < min || xs.size() > max) {
    problem = min == max ? absl::StrCat("takes exactly ", min, " inputs")
                         : absl::StrCat("takes at least ", min, " inputs");
  }
  for (const Output& x : xs) {
    if (problem.empty() && same_shape && !(x.shape() == xs[0].shape())) problem = "needs inputs of one shape";
  }
  if (problem.empty()) return true;
  scope.graph().RecordError(absl::InvalidArgumentError(
      absl::StrCat("layer '", layer.name(), "' (", layer.type(), ") ", problem, ", but was called on [", shapes, "]")));
  return false;
}

// An elementwise merge: `combine` folds the inputs pairwise, `finish` (may
// be null) maps the result (Average divides by the count).
template <typename Self>
class ElementwiseMerge : public BuiltinLayer<Self> {
 public:
  static constexpr char kExampleConfig[] = "{}";
  static constexpr int kTestInputs = 2;
  nlohmann::json Config() const override { return nlohmann::json::object(); }
  static LayerPtr FromConfig(ConfigReader& r) { return r.ok() ? std::make_shared<Self>() : nullptr; }

 protected:
  Output BuildCall(const Scope& scope, const std::vector<Output>& xs) override {
    const size_t max = Self::kBinary ? 2 : SIZE_MAX;
    if (!CheckInputs(*this, scope, xs, 2, max, /*same_shape=*/true)) return Output{};
    Output y = xs[0];
    for (size_t i = 1; i < xs.size(); ++i) y = Self::Combine(scope, y, xs[i]);
    return Self::Finish(scope, y, xs.size());
  }
  static Output Finish(const Scope&, Output y, size_t) { return y; }
  static constexpr bool kBinary = false;
};

class AddLayer : public ElementwiseMerge<AddLayer> {
 public:
  static constexpr char kClassName[] = "Add";
  static Output Combine(const Scope& s, Output a, Output b) { return ops::Add(s, a, b); }
};

class SubtractLayer : public ElementwiseMerge<SubtractLayer> {
 public:
  static constexpr char kClassName[] = "Subtract";
  static constexpr bool kBinary = true;
  static Output Combine(const Scope& s, Output a, Output b) { return ops::Sub(s, a, b); }
};

class MultiplyLayer : public ElementwiseMerge<MultiplyLayer> {
 public:
  static constexpr char kClassName[] = "Multiply";
  static Output Combine(const Scope& s, Output a, Output b) { return ops::Mul(s, a, b); }
};

class AverageLayer : public ElementwiseMerge<AverageLayer> {
 public:
  static constexpr char kClassName[] = "Average";
  static Output Combine(const Scope& s, Output a, Output b) { return ops::Add(s, a, b); }
  static Output Finish(const Scope& s, Output sum, size_t n) { return ops::Scale(s, sum, 1.0f / float(n)); }
};

class MaximumLayer : public ElementwiseMerge<MaximumLayer> {
 public:
  static constexpr char kClassName[] = "Maximum";
  static Output Combine(const Scope& s, Output a, Output b) { return ops::Maximum(s, a, b); }
};

class MinimumLayer : public ElementwiseMerge<MinimumLayer> {
 public:
  static constexpr char kClassName[] = "Minimum";
  static Output Combine(const Scope& s, Output a, Output b) { return ops::Minimum(s, a, b); }
};

class ConcatenateLayer : public BuiltinLayer<ConcatenateLayer> {
 public:
  static constexpr char kClassName[] = "Concatenate";
  static constexpr char kExampleConfig[] = R"({"axis": -1})";
  static constexpr int kTestInputs = 2;
  explicit ConcatenateLayer(int64_t axis) : axis_(axis) {}
  nlohmann::json Config() const override { return {{"axis", axis_}}; }
  static LayerPtr FromConfig(ConfigReader& r) {
    const int64_t axis = r.Integer("axis", -1, -64, 64);
    return r.ok() ? Concatenate(axis) : nullptr;
  }

 protected:
  Output BuildCall(const Scope& scope, const std::vector<Output>& xs) override {
    if (!CheckInputs(*this, scope, xs, 2, SIZE_MAX, /*same_shape=*/false)) return Output{};
    return ops::Concat(scope, xs, axis_);
  }

 private:
  int64_t axis_;
};

template <typename T>
LayerPtr Named(std::shared_ptr<T> layer, std::string name) {
  layer->set_name(std::move(name));
  return layer;
}

}  // namespace

LayerPtr Concatenate(int64_t axis, std::string name) {
  return Named(std::make_shared<ConcatenateLayer>(axis), std::move(name));
}
LayerPtr Add(std::string name) { return Named(std::make_shared<AddLayer>(), std::move(name)); }
LayerPtr Subtract(std::string name) { return Named(std::make_shared<SubtractLayer>(), std::move(name)); }
LayerPtr Multiply(std::string name) { return Named(std::make_shared<MultiplyLayer>(), std::move(name)); }
LayerPtr Average(std::string name) { return Named(std::make_shared<AverageLayer>(), std::move(name)); }
LayerPtr Maximum(std::string name) { return Named(std::make_shared<MaximumLayer>(), std::move(name)); }
LayerPtr Minimum(std::string name) { return Named(std::make_shared<MinimumLayer>(), std::move(name)); }

}  // namespace gradflow::nn
