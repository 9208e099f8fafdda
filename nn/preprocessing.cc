#include "nn/preprocessing.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "core/tensor_ops.h"
#include "nn/config_reader.h"
#include "nn/model_config.h"
#include "ops/array.h"
#include "ops/math.h"

namespace gradflow::nn {
namespace {

nlohmann::json OptionalList(const std::optional<std::vector<double>>& values) {
  return values ? nlohmann::json(*values) : nlohmann::json(nullptr);
}

// Keras 3 writes `axis` as a tuple ([-1]); an int is accepted too.
int ReadAxis(ConfigReader& r) {
  const nlohmann::json* given = r.Find("axis");
  if (given == nullptr) return -1;
  if (given->is_null() || (given->is_array() && given->size() != 1)) {
    r.FailField("axis", absl::StrCat("is ", DescribeJson(*given), "; gradflow's Normalization keeps one mean and ",
                                     "variance per index of the last axis only (axis -1)"));
    return -1;
  }
  const nlohmann::json& axis = given->is_array() ? (*given)[0] : *given;
  if (!axis.is_number_integer() || axis.get<int64_t>() < -1 || axis.get<int64_t>() > kMaxConfigInputRank) {
    r.FailField("axis", absl::StrCat("must be -1 or the index of the last axis, got ", DescribeJson(*given)));
    return -1;
  }
  return static_cast<int>(axis.get<int64_t>());
}

// Keras's mean= / variance=: null, one number, or a flat list of numbers.
std::optional<std::vector<double>> ReadValues(ConfigReader& r, const char* key) {
  if (r.IsNull(key)) return std::nullopt;
  const nlohmann::json* given = r.Find(key);
  if (given != nullptr && given->is_number()) return std::vector<double>{r.Number(key, std::nullopt)};
  std::vector<double> values = r.List<double>(key, std::nullopt);
  if (r.ok() && values.empty()) r.FailField(key, "is an empty list; give one value or one per feature");
  return values;
}

absl::Status CheckGivenStatistics(const NormalizationOptions& o) {
  if (o.mean.has_value() != o.variance.has_value()) {
    return absl::InvalidArgumentError("Normalization: give both mean and variance, or neither (then call Adapt)");
  }
  if (!o.mean) return absl::OkStatus();
  if (o.mean->size() != o.variance->size()) {
    return absl::InvalidArgumentError(absl::StrCat("Normalization: mean has ", o.mean->size(), " values but variance ",
                                                   o.variance->size(), "; give them the same length"));
  }
  for (double v : *o.variance) {
    if (!(v >= 0) || !std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat("Normalization: variance ", v, " is not a finite value >= 0"));
    }
  }
  return absl::OkStatus();
}

// `values` (one, or one per feature) as an f32 tensor [features].
Tensor Broadcast(const std::vector<double>& values, int64_t features) {
  Tensor t(DType::kF32, {features});
  for (int64_t i = 0; i < features; ++i) t.data<float>()[i] = static_cast<float>(values[values.size() == 1 ? 0 : i]);
  return t;
}

}  // namespace

NormalizationLayer::NormalizationLayer(NormalizationOptions options) : options_(std::move(options)) {
  input_shape_ = options_.input_shape;
  if (!options_.name.empty()) set_name(options_.name);
}

nlohmann::json NormalizationLayer::Config() const {
  return {{"axis", options_.axis},
          {"mean", OptionalList(options_.mean)},
          {"variance", OptionalList(options_.variance)},
          {"invert", options_.invert}};
}

LayerPtr NormalizationLayer::FromConfig(ConfigReader& r) {
  NormalizationOptions o;
  o.axis = ReadAxis(r);
  o.mean = ReadValues(r, "mean");
  o.variance = ReadValues(r, "variance");
  o.invert = r.Bool("invert", false);
  if (r.ok()) {
    absl::Status given = CheckGivenStatistics(o);
    if (!given.ok()) r.Fail(std::string(given.message()));
  }
  return r.ok() ? Normalization(std::move(o)) : nullptr;
}

std::pair<Output, Output> NormalizationLayer::Statistics(const Scope& scope, int64_t features) {
  if (options_.mean) {
    return {ops::Constant(scope, Broadcast(*options_.mean, features), "mean"),
            ops::Constant(scope, Broadcast(*options_.variance, features), "variance")};
  }
  // Keras's build: mean 0 and variance 1 until adapted (the identity).
  return {AddVariable(scope, "mean", Shape{features}, Zeros(), /*weight_trainable=*/false),
          AddVariable(scope, "variance", Shape{features}, Ones(), /*weight_trainable=*/false)};
}

Output NormalizationLayer::Build(const Scope& scope, Output x) {
  Graph& g = scope.graph();
  if (!x.valid()) return {};
  auto fail = [&](const std::string& message) {
    g.RecordError(absl::InvalidArgumentError(absl::StrCat("Normalization layer '", scope.prefix(), "': ", message)));
    return Output{};
  };
  const int rank = x.shape().rank();
  if (rank < 2 || x.dtype() != DType::kF32) {
    return fail(absl::StrCat("needs an f32 input [batch, ..., features], got '", x.name(), "' ", x.type().ToString()));
  }
  if (options_.axis != -1 && options_.axis != rank - 1) {
    return fail(absl::StrCat("axis ", options_.axis, " is not the last axis (", rank - 1, ") of its input ",
                             x.type().ToString(), "; gradflow normalizes the last axis"));
  }
  absl::Status given = CheckGivenStatistics(options_);
  if (!given.ok()) return fail(std::string(given.message()));
  const int64_t features = x.shape()[rank - 1];
  if (options_.mean && options_.mean->size() != 1 && static_cast<int64_t>(options_.mean->size()) != features) {
    return fail(absl::StrCat("mean and variance have ", options_.mean->size(), " values but the input ",
                             x.type().ToString(), " has ", features, " features; give one value or one per feature"));
  }
  auto [mean, variance] = Statistics(scope, features);
  Output scale = ops::Maximum(scope, ops::Sqrt(scope, variance), static_cast<float>(kKerasEpsilon));
  Output y = options_.invert ? ops::Add(scope, ops::Mul(scope, x, scale), mean)
                             : ops::Div(scope, ops::Sub(scope, x, mean), scale);
  if (options_.mean) return y;
  // Nothing reads Keras's count; a control edge keeps it in every plan, so
  // the session creates it and the model saves it with the other weights.
  Output count = AddVariable(scope, "count", Shape{}, Zeros(), /*weight_trainable=*/false, DType::kI64);
  if (!count.valid()) return {};
  std::vector<Output> out = g.AddNode(scope, "Identity", {y}, {}, "output", {count.node});
  return out.empty() ? Output{} : out[0];
}

std::string NormalizationLayer::AdaptWho() const {
  // Before a model names it, a layer has no name yet.
  return absl::StrCat("Adapt: Normalization layer '", name().empty() ? "normalization" : name(), "'");
}

absl::Status NormalizationLayer::CheckAdaptable(const Tensor& x) const {
  const std::string who = AdaptWho();
  if (options_.mean) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, " was given its mean and variance; make it without them to compute them from data"));
  }
  const Shape& s = x.shape();
  if (s.rank() < 2 || x.empty() || !s.IsFullyKnown() || s.NumElements() != x.num_elements()) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": x must be a tensor [samples, ..., features], got ",
                                                   std::string(DTypeName(x.dtype())), s.ToString()));
  }
  if (s[0] == 0 || x.num_elements() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": x ", s.ToString(), " holds no values to adapt to"));
  }
  int64_t expected = -1;
  if (auto held = weights().find("mean"); held != weights().end()) expected = held->second.shape()[0];
  else if (input_shape_ && input_shape_->rank() > 0) expected = (*input_shape_)[input_shape_->rank() - 1];
  if (expected >= 0 && expected != s[s.rank() - 1]) {
    return absl::InvalidArgumentError(absl::StrCat(who, " normalizes ", expected, " features but x ", s.ToString(),
                                                   " has ", s[s.rank() - 1], "; adapt it to data of its input"));
  }
  return absl::OkStatus();
}

absl::Status NormalizationLayer::Adapt(const Tensor& x) {
  GF_RETURN_IF_ERROR(CheckAdaptable(x));
  const int64_t features = x.shape()[x.shape().rank() - 1];
  GF_ASSIGN_OR_RETURN(Tensor values, x.dtype() == DType::kF32 ? x : Cast(x, DType::kF32));
  for (int64_t i = 0; i < values.num_elements(); ++i) {
    if (!std::isfinite(values.data<float>()[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          AdaptWho(), ": x ", x.shape().ToString(), " holds ", values.data<float>()[i],
          " at element ", i, "; remove or impute non-finite values first (they would make every statistic NaN)"));
    }
  }
  // Every axis but the last is pooled: [samples * ..., features].
  GF_ASSIGN_OR_RETURN(Tensor rows, values.Reshaped(Shape{values.num_elements() / features, features}));
  GF_ASSIGN_OR_RETURN(Tensor mean, Mean(rows, 0));
  GF_ASSIGN_OR_RETURN(Tensor variance, Variance(rows, 0));
  GF_ASSIGN_OR_RETURN(Tensor count, Tensor::FromVector<int64_t>(Shape{}, {rows.shape()[0]}));
  GF_RETURN_IF_ERROR(SetWeights({{"mean", mean}, {"variance", variance}, {"count", count}}));
  // As Keras's adapt builds the layer for the data: an adapted layer can
  // start a model without an input_shape.
  if (!input_shape_) input_shape_ = Shape(std::vector<int64_t>(x.shape().dims().begin() + 1, x.shape().dims().end()));
  return absl::OkStatus();
}

std::shared_ptr<NormalizationLayer> Normalization(NormalizationOptions options) {
  return std::make_shared<NormalizationLayer>(std::move(options));
}

}  // namespace gradflow::nn
