// ops/activations: every activation against a reference formula evaluated in
// double (benchdnn style), forward and backward (through AddGradients), plus
// SELU's constants and self-normalization, the Keras-name dispatcher and the
// fusion helper EltwiseAlgorithmOf.

#include "ops/activations.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>

#include "core/random.h"
#include "graph/autodiff.h"
#include "graph/op_registry.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/array.h"
#include "ops/softmax.h"
#include "tests/ops/op_grad_check.h"
#include "tests/util/messages.h"

namespace gradflow {
namespace {

using testing_util::ExpectMentions;
using dnnl::algorithm;

// oneDNN's jit kernels approximate exp/erf/log to a few ulp of f32; the
// forward/backward results must match the double reference to this
// tolerance relative to max(1, |reference|).
constexpr double kTolerance = 2e-5;

double Sigm(double x) { return 1 / (1 + std::exp(-x)); }
double Phi(double x) { return 0.5 * (1 + std::erf(x / std::numbers::sqrt2)); }
double PhiDensity(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi); }
// Constants of the tanh form of GELU (Hendrycks & Gimpel 2016), as in Keras.
constexpr double kGeluTanhC = 0.044715;
const double kSqrt2OverPi = std::sqrt(2 / std::numbers::pi);

struct Case {
  std::string name;  // for the test trace
  std::function<Output(const Scope&, Output)> build;
  std::function<double(double)> f, df;
};

std::vector<Case> Cases() {
  auto elu = [](double a) {
    return std::pair<std::function<double(double)>, std::function<double(double)>>{
        [a](double x) { return x > 0 ? x : a * (std::exp(x) - 1); },
        [a](double x) { return x > 0 ? 1 : a * std::exp(x); }};
  };
  auto [elu1, delu1] = elu(1.0);
  auto [elu03, delu03] = elu(0.3);
  auto [eluselu, deluselu] = elu(ops::kSeluAlpha);
  return {
      {"sigmoid", ops::Sigmoid, Sigm, [](double x) { return Sigm(x) * (1 - Sigm(x)); }},
      {"tanh", ops::Tanh, [](double x) { return std::tanh(x); },
       [](double x) { return 1 - std::tanh(x) * std::tanh(x); }},
      {"relu", ops::Relu, [](double x) { return x > 0 ? x : 0; }, [](double x) { return x > 0 ? 1 : 0; }},
      // Keras 3's activations.leaky_relu: negative_slope 0.2 (was 0.01 here).
      {"leaky_relu default", [](const Scope& s, Output x) { return ops::Activation(s, x, "leaky_relu"); },
       [](double x) { return x > 0 ? x : 0.2 * x; }, [](double x) { return x > 0 ? 1 : 0.2; }},
      {"leaky_relu 0.01", [](const Scope& s, Output x) { return ops::LeakyRelu(s, x, 0.01); },
       [](double x) { return x > 0 ? x : 0.01 * x; }, [](double x) { return x > 0 ? 1 : 0.01; }},
      {"elu", [](const Scope& s, Output x) { return ops::Elu(s, x); }, elu1, delu1},
      {"elu 0.3", [](const Scope& s, Output x) { return ops::Elu(s, x, 0.3); }, elu03, delu03},
      // Init-captures: clang 14 (--config=tsan) cannot capture structured bindings.
      // dselu/dx = scale at x = 0 exactly (TensorFlow's SeluGrad), scale alpha exp(x) below.
      {"selu", ops::Selu, [eluselu = eluselu](double x) { return ops::kSeluScale * eluselu(x); },
       [deluselu = deluselu](double x) { return x == 0 ? ops::kSeluScale : ops::kSeluScale * deluselu(x); }},
      {"gelu", [](const Scope& s, Output x) { return ops::Gelu(s, x); },
       [](double x) { return x * Phi(x); }, [](double x) { return Phi(x) + x * PhiDensity(x); }},
      {"gelu approximate", [](const Scope& s, Output x) { return ops::Gelu(s, x, true); },
       [](double x) {
         return 0.5 * x * (1 + std::tanh(kSqrt2OverPi * (x + kGeluTanhC * x * x * x)));
       },
       [](double x) {
         double t = std::tanh(kSqrt2OverPi * (x + kGeluTanhC * x * x * x));
         return 0.5 * (1 + t) +
                0.5 * x * (1 - t * t) * kSqrt2OverPi * (1 + 3 * kGeluTanhC * x * x);
       }},
      {"silu", [](const Scope& s, Output x) { return ops::Activation(s, x, "silu"); },
       [](double x) { return x * Sigm(x); }, [](double x) { return Sigm(x) + x * Sigm(x) * (1 - Sigm(x)); }},
      {"swish (alias of silu)", ops::Swish, [](double x) { return x * Sigm(x); },
       [](double x) { return Sigm(x) + x * Sigm(x) * (1 - Sigm(x)); }},
      // Keras 3 relu6 = min(max(x, 0), 6); TensorFlow's Relu6Grad is 1 on (0, 6) only.
      {"relu6", [](const Scope& s, Output x) { return ops::Activation(s, x, "relu6"); },
       [](double x) { return std::clamp(x, 0.0, 6.0); }, [](double x) { return x > 0 && x < 6 ? 1 : 0; }},
      // Keras 3 softsign = x / (1 + |x|); d/dx = 1 / (1 + |x|)^2.
      {"softsign", [](const Scope& s, Output x) { return ops::Activation(s, x, "softsign"); },
       [](double x) { return x / (1 + std::abs(x)); }, [](double x) { return 1 / ((1 + std::abs(x)) * (1 + std::abs(x))); }},
      {"hard_swish (alias of hard_silu)", [](const Scope& s, Output x) { return ops::Activation(s, x, "hard_swish"); },
       [](double x) { return x * std::clamp(x + 3, 0.0, 6.0) / 6; },
       [](double x) { return x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6; }},
      {"mish", [](const Scope& s, Output x) { return ops::Activation(s, x, "mish"); },
       [](double x) { return x * std::tanh(std::log1p(std::exp(x))); },
       [](double x) {
         const double t = std::tanh(std::log1p(std::exp(x)));
         return t + x * (1 - t * t) * Sigm(x);
       }},
      {"hard_silu", [](const Scope& s, Output x) { return ops::Activation(s, x, "hard_silu"); },
       [](double x) { return x * std::clamp(x + 3, 0.0, 6.0) / 6; },
       [](double x) { return x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6; }},
      // log(1 + exp(x)), written so exp cannot overflow.
      {"softplus", ops::Softplus,
       [](double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }, Sigm},
  };
}

// 4 rows of 9: 0 exactly, both sides of every kink, and tails.
Tensor Inputs() {
  std::vector<float> v = {0.0f, 1e-3f, -1e-3f, 0.1f, -0.1f, 0.5f, -0.5f, 1.0f, -1.0f,
                          1.7f, -1.7f, 2.5f, -2.5f, 3.0f, -3.0f, 4.2f, -4.2f, 5.0f,
                          -5.0f, 7.5f, -7.5f, 10.0f, -10.0f, 0.25f, -0.25f, 0.75f, -0.75f,
                          15.0f, -15.0f, 20.0f, -20.0f, 0.05f, -0.05f, 1.3f, -1.3f, -6.0f};
  return Tensor::FromVector<float>({4, 9}, v).value();
}

// y = f(x) and dx = d(sum y)/dx for x fed into a [-1, 9] placeholder.
struct Evaluated {
  std::vector<float> y, dx;
};
Evaluated Evaluate(const std::function<Output(const Scope&, Output)>& build, const Tensor& x) {
  Graph g;
  Output xp = ops::Placeholder(g, "x", DType::kF32, {-1, x.shape()[1]});
  Output y = build(g, xp);
  EXPECT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(y.shape(), Shape({-1, x.shape()[1]}));
  auto grads = AddGradients(g, y, {xp});
  EXPECT_TRUE(grads.ok()) << grads.status();
  if (!grads.ok()) return {};
  Session s(g);
  auto plan = s.Compile({y, (*grads)[0]}, {}, Phase::kTrain);
  EXPECT_TRUE(plan.ok()) << plan.status();
  if (!plan.ok()) return {};
  auto out = plan->Run({{xp, x}});
  EXPECT_TRUE(out.ok()) << out.status();
  if (!out.ok()) return {};
  EXPECT_EQ((*out)[0].shape(), x.shape());
  return {(*out)[0].ToVector<float>(), (*out)[1].ToVector<float>()};
}

TEST(ActivationsTest, ForwardAndBackwardMatchReferenceFormulas) {
  Tensor x = Inputs();
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    Evaluated got = Evaluate(c.build, x);
    ASSERT_EQ(got.y.size(), size_t(x.num_elements()));
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      double xi = x.data<float>()[i];
      double want_y = c.f(xi), want_dx = c.df(xi);
      EXPECT_NEAR(got.y[i], want_y, kTolerance * std::max(1.0, std::abs(want_y))) << "x = " << xi;
      EXPECT_NEAR(got.dx[i], want_dx, kTolerance * std::max(1.0, std::abs(want_dx))) << "x = " << xi;
    }
  }
}

TEST(ActivationsTest, WorksOnAnyRank) {
  for (Shape shape : {Shape{}, Shape{5}, Shape{2, 3, 4}}) {
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, shape);
    Output y = ops::Elu(g, x);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(y.shape(), shape);
    Tensor xv(DType::kF32, shape);
    for (int64_t i = 0; i < xv.num_elements(); ++i) xv.data<float>()[i] = float(i % 7) - 3.0f;
    Session s(g);
    auto plan = s.Compile({y});
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto out = plan->Run({{x, xv}});
    ASSERT_TRUE(out.ok()) << out.status();
    for (int64_t i = 0; i < xv.num_elements(); ++i) {
      double v = xv.data<float>()[i];
      EXPECT_NEAR((*out)[0].data<float>()[i], v > 0 ? v : std::expm1(v), kTolerance);
    }
  }
}

// oneDNN 2.6's eltwise_soft_relu must be log(1 + exp(x)), with no slope
// parameter and no overflow for large x (its 3.x form takes an alpha).
TEST(ActivationsTest, SoftplusIsLogOnePlusExpWithoutOverflow) {
  std::vector<float> v = {-80.0f, -30.0f, -1.0f, 0.0f, 1.0f, 30.0f, 80.0f, 100.0f};
  Evaluated got = Evaluate(ops::Softplus, Tensor::FromVector<float>({1, 8}, v).value());
  ASSERT_EQ(got.y.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    double x = v[i];
    double want = std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x)));
    EXPECT_TRUE(std::isfinite(got.y[i])) << "x = " << x;
    EXPECT_NEAR(got.y[i], want, kTolerance * std::max(1.0, want)) << "x = " << x;
    EXPECT_NEAR(got.dx[i], Sigm(x), kTolerance) << "x = " << x;
  }
}

// Klambauer et al.'s alpha and scale make N(0, 1) a fixed point of selu:
// for z ~ N(0, 1) with Phi(-1) = erfc(1/sqrt 2)/2, Phi(-2) = erfc(sqrt 2)/2,
//   E[selu z]   = scale (1/sqrt(2 pi) + alpha (e^{1/2} Phi(-1) - 1/2))               = 0
//   E[selu z^2] = scale^2 (1/2 + alpha^2 (e^2 Phi(-2) - 2 e^{1/2} Phi(-1) + 1/2))   = 1
TEST(ActivationsTest, SeluConstantsAreTheSelfNormalizingFixedPoint) {
  EXPECT_DOUBLE_EQ(ops::kSeluAlpha, 1.6732632423543772848170429916717);
  EXPECT_DOUBLE_EQ(ops::kSeluScale, 1.0507009873554804934193349852946);
  const double a = ops::kSeluAlpha, l = ops::kSeluScale;
  const double phi_m1 = 0.5 * std::erfc(1 / std::numbers::sqrt2);
  const double phi_m2 = 0.5 * std::erfc(std::numbers::sqrt2);
  const double mean = l * (1 / std::sqrt(2 * std::numbers::pi) + a * (std::exp(0.5) * phi_m1 - 0.5));
  const double second =
      l * l * (0.5 + a * a * (std::exp(2.0) * phi_m2 - 2 * std::exp(0.5) * phi_m1 + 0.5));
  EXPECT_NEAR(mean, 0.0, 1e-12);
  EXPECT_NEAR(second, 1.0, 1e-12);
}

// The same, statistically, through the op: 10^5 standard normal samples have
// a sample mean with standard error 1/sqrt(10^5) ~ 0.0032 and a sample
// stddev with standard error ~ 0.0022 (about sqrt(Var[y^2]) / 2 / sqrt n);
// 0.015 is > 4.5 standard errors for both.
TEST(ActivationsTest, SeluKeepsStandardNormalMeanZeroStdOne) {
  constexpr int64_t kSamples = 100000;
  constexpr double kStatTolerance = 0.015;
  Rng rng(2017);
  Tensor x(DType::kF32, {kSamples / 100, 100});
  double in_mean = 0;
  for (float& v : x.flat<float>()) in_mean += (v = static_cast<float>(rng.Normal()));
  in_mean /= kSamples;
  ASSERT_NEAR(in_mean, 0.0, kStatTolerance);  // the input itself is sane

  Graph g;
  Output xp = ops::Placeholder(g, "x", DType::kF32, {-1, 100});
  Output y = ops::Selu(g, xp);
  Session s(g);
  auto plan = s.Compile({y});
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto out = plan->Run({{xp, x}});
  ASSERT_TRUE(out.ok()) << out.status();
  double sum = 0, sum_sq = 0;
  for (float v : (*out)[0].flat<float>()) {
    sum += v;
    sum_sq += double(v) * v;
  }
  const double mean = sum / kSamples;
  const double stddev = std::sqrt(sum_sq / kSamples - mean * mean);
  EXPECT_NEAR(mean, 0.0, kStatTolerance);
  EXPECT_NEAR(stddev, 1.0, kStatTolerance);
}

TEST(ActivationsTest, ActivationMapsKerasNamesToOps) {
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"},   {"relu", "Relu"},   {"leaky_relu", "LeakyRelu"},
      {"elu", "Elu"},         {"selu", "Selu"},   {"gelu", "Gelu"},   {"silu", "Silu"},   {"swish", "Silu"},
      {"relu6", "Relu6"},     {"softsign", "Softsign"}, {"hard_swish", "HardSilu"},
      {"softplus", "Softplus"}, {"softmax", "Softmax"}, {"hard_sigmoid", "HardSigmoid"},
      {"rrelu", "RRelu"}, {"mish", "Mish"}, {"exponential", "Exp"}, {"log_softmax", "LogSoftmax"},
      {"hard_silu", "HardSilu"}};
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  for (const auto& [name, op] : expected) {
    Output y = ops::Activation(g, x, name);
    ASSERT_TRUE(y.valid()) << name << ": " << g.status();
    EXPECT_EQ(y.node->op_name(), op) << name;
    EXPECT_EQ(ops::ActivationOpName(name), op) << name;
  }
  EXPECT_EQ(ops::Activation(g, x, "linear"), x);
  EXPECT_EQ(ops::Activation(g, x, ""), x);
  // Keras's defaults: elu alpha 1; gelu exact (erf); leaky_relu 0.2 (Keras 3).
  EXPECT_EQ(ops::Activation(g, x, "elu").node->attr<double>("alpha"), 1.0);
  EXPECT_EQ(ops::Activation(g, x, "leaky_relu").node->attr<double>("alpha"), 0.2);
  // Keras 3 serializes an alias by its activation's name.
  EXPECT_EQ(ops::CanonicalActivationName("swish"), "silu");
  EXPECT_EQ(ops::CanonicalActivationName("hard_swish"), "hard_silu");
  EXPECT_EQ(ops::CanonicalActivationName("relu"), "relu");
  EXPECT_EQ(ops::Activation(g, x, "gelu").node->attr<bool>("approximate"), false);
  EXPECT_TRUE(g.ok()) << g.status();

  std::vector<std::string> names = ops::ActivationNames();
  EXPECT_EQ(names.size(), expected.size() + 1);  // + "linear"
  for (const auto& [name, op] : expected) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  EXPECT_NE(std::find(names.begin(), names.end(), "linear"), names.end());
}

TEST(ActivationsTest, UnknownActivationNameIsAnErrorListingValidNames) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output y = ops::Activation(g.Scope("hidden"), x, "relu7");
  EXPECT_FALSE(y.valid());
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(g.status().message());
  EXPECT_NE(msg.find("'relu7'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hidden"), std::string::npos) << msg;
  for (const std::string& name : ops::ActivationNames()) {
    EXPECT_NE(msg.find(name), std::string::npos) << name << " missing from: " << msg;
  }
}

TEST(ActivationsTest, RejectsNonFloatInput) {
  Graph g;
  Output labels = ops::Placeholder(g, "labels", DType::kI32, {-1});
  EXPECT_FALSE(ops::Relu(g.Scope("act"), labels).valid());
  ExpectMentions(g.status().message(), {"act/Relu", "labels", "i32[-1]"});
}

TEST(ActivationsTest, EltwiseGradChecksShapes) {
  Graph g;
  Output dy = ops::Placeholder(g, "dy", DType::kF32, {-1, 3});
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output dx = g.AddNode1(g, "EltwiseGrad", {dy, x}, {{"activation", std::string("Relu")}});
  EXPECT_FALSE(dx.valid());
  ExpectMentions(g.status().message(), {"EltwiseGrad", "'dy' f32[-1, 3]", "'x' f32[-1, 4]"});

  Graph g2;
  Output a = ops::Placeholder(g2, "a", DType::kF32, {2});
  EXPECT_FALSE(g2.AddNode1(g2, "EltwiseGrad", {a, a}, {{"activation", std::string("Softmax")}}).valid());
  EXPECT_NE(std::string(g2.status().message()).find("not an eltwise activation"), std::string::npos)
      << g2.status();
}

// Sigmoid, Tanh and Relu differentiate from y (oneDNN's use_dst_for_bwd), the
// others from x; the gradient node is named after the activation.
TEST(ActivationsTest, GradientReadsOutputWhereTheDerivativeAllows) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  Output sig = ops::Sigmoid(g, x);
  Output elu = ops::Elu(g, x);
  auto grads = AddGradients(g, ops::AddN(g, {sig, elu}), {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  int found = 0;
  for (const Node& n : g.nodes()) {
    if (n.op_name() != "EltwiseGrad") continue;
    const std::string& act = n.attr<std::string>("activation");
    if (act == "Sigmoid") {
      EXPECT_EQ(n.inputs[1], sig);
      EXPECT_NE(n.name.find("SigmoidGrad"), std::string::npos) << n.name;
      ++found;
    } else if (act == "Elu") {
      EXPECT_EQ(n.inputs[1], x);
      EXPECT_EQ(n.attr<double>("alpha"), 1.0);
      ++found;
    }
  }
  EXPECT_EQ(found, 2);
}

TEST(ActivationsTest, EltwiseAlgorithmOfForFusion) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  auto alg = [&](Output y) { return ops::EltwiseAlgorithmOf(*y.node); };

  // relu runs as elu with alpha 0: the same values, but NaN stays NaN
  // (oneDNN 2.6's eltwise_relu with alpha 0 returns 0 for NaN).
  auto relu = alg(ops::Relu(g, x));
  ASSERT_TRUE(relu.has_value());
  EXPECT_EQ(relu->first, algorithm::eltwise_elu);
  EXPECT_EQ(relu->second, std::make_pair(0.0f, 0.0f));

  auto leaky = alg(ops::LeakyRelu(g, x, 0.2));
  ASSERT_TRUE(leaky.has_value());
  EXPECT_EQ(leaky->first, algorithm::eltwise_relu);
  EXPECT_FLOAT_EQ(leaky->second.first, 0.2f);

  EXPECT_EQ(alg(ops::Sigmoid(g, x))->first, algorithm::eltwise_logistic);
  EXPECT_EQ(alg(ops::Tanh(g, x))->first, algorithm::eltwise_tanh);
  EXPECT_EQ(alg(ops::Elu(g, x, 0.5))->second.first, 0.5f);
  EXPECT_EQ(alg(ops::Gelu(g, x))->first, algorithm::eltwise_gelu_erf);
  EXPECT_EQ(alg(ops::Gelu(g, x, true))->first, algorithm::eltwise_gelu_tanh);
  EXPECT_EQ(alg(ops::Swish(g, x))->second.first, 1.0f);
  EXPECT_EQ(alg(ops::Softplus(g, x))->first, algorithm::eltwise_soft_relu);
  EXPECT_FALSE(alg(ops::Selu(g, x)).has_value());
  EXPECT_FALSE(alg(ops::Activation(g, x, "relu6")).has_value());  // a loop, not oneDNN
  EXPECT_FALSE(alg(ops::Softmax(g, x)).has_value());
  EXPECT_FALSE(alg(x).has_value());
  EXPECT_TRUE(g.ok()) << g.status();
}

// The eltwise ops of ops/activations.cc, from the Keras names.
std::vector<std::string> EltwiseActivationOps() {
  std::vector<std::string> ops;
  for (const std::string& name : ops::ActivationNames()) {
    const std::string op = ops::ActivationOpName(name);
    if (op.empty()) continue;  // linear
    Graph g;
    Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
    // Selu, Relu6 and Softsign run (partly) as loops: no single oneDNN algorithm.
    const bool eltwise = ops::EltwiseAlgorithmOf(*ops::Activation(g, x, name).node) || op == "Selu" ||
                         op == "Relu6" || op == "Softsign";
    if (eltwise && std::find(ops.begin(), ops.end(), op) == ops.end()) ops.push_back(op);
  }
  return ops;
}

TEST(ActivationsTest, EveryActivationOpHasGradientChecks) {
  std::vector<std::string> ops = EltwiseActivationOps();
  for (const char* op : {"Sigmoid", "Tanh", "Relu", "LeakyRelu", "Elu", "Selu", "Gelu", "Silu",
                         "Softplus", "Mish", "Relu6", "Softsign"}) {
    EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op;
  }
  for (const std::string& op : ops) {
    const OpDef* def = OpRegistry::Global().Find(op);
    ASSERT_NE(def, nullptr) << op;
    EXPECT_TRUE(def->grad) << op;
    EXPECT_FALSE(def->grad_checks.empty()) << op;
  }
  const OpDef* grad = OpRegistry::Global().Find("EltwiseGrad");
  ASSERT_NE(grad, nullptr);
  EXPECT_FALSE(grad->no_gradient_reason.empty());
}

// Every grad_checks case against central differences with a random upstream
// gradient (independent of other op families).
TEST(ActivationsTest, GradChecksPassWithRandomUpstreamGradient) {
  for (const std::string& op : EltwiseActivationOps()) testing_util::CheckOpGradients(op);
}

// Issue 13 item 15: no activation may turn a NaN into a number (relu did:
// oneDNN's max(x, 0) gives 0). For every Keras name: a NaN input gives a NaN
// output, and the gradient at that input is not zero (NaN, or dy passed
// through as PyTorch's relu does), so a NaN reaches the loss and Fit stops.
// TensorFlow's SeluGrad (and so tf.keras's and Keras 3's TF backend) gives
// dselu/dx = scale at x = 0; oneDNN's elu backward gives scale * alpha there
// (1.7581), which this test would catch.
TEST(ActivationsTest, SeluDerivativeAtZeroIsScale) {
  Tensor x = Tensor::FromVector<float>({1, 3}, {0.0f, -0.0f, 1e-30f}).value();
  Evaluated got = Evaluate(ops::Selu, x);
  ASSERT_EQ(got.dx.size(), 3u);
  for (float dx : got.dx) EXPECT_FLOAT_EQ(dx, static_cast<float>(ops::kSeluScale));
  EXPECT_EQ(got.y[0], 0.0f);
}

// Every name Keras 3's activations.get accepts (keras/src/activations/
// __init__.py ALL_OBJECTS), each building a node; "swish" and "hard_swish"
// are aliases of "silu" and "hard_silu".
TEST(ActivationsTest, AcceptsEveryKeras3ActivationName) {
  Graph g;
  Output x = ops::Placeholder(g, "x", DType::kF32, {-1, 4});
  for (const char* name : {"relu", "sigmoid", "softmax", "softplus", "softsign", "tanh", "selu", "elu",
                           "exponential", "leaky_relu", "relu6", "silu", "swish", "gelu", "hard_sigmoid",
                           "hard_silu", "hard_swish", "linear", "mish", "log_softmax"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(ops::Activation(g, x, name).valid()) << g.status();
    std::vector<std::string> names = ops::ActivationNames();
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end());
  }
  EXPECT_EQ(ops::ActivationOpName("swish"), ops::ActivationOpName("silu"));
  EXPECT_EQ(ops::ActivationOpName("hard_swish"), ops::ActivationOpName("hard_silu"));
}

TEST(ActivationsTest, EveryActivationKeepsNan) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::FromVector<float>({2, 4}, {nan, 1.5f, -0.5f, 0.25f, -2.0f, nan, 0.0f, 3.0f}).value();
  for (const std::string& name : ops::ActivationNames()) {
    SCOPED_TRACE(name);
    Evaluated got = Evaluate([&](const Scope& s, Output in) { return ops::Activation(s, in, name); }, x);
    ASSERT_EQ(got.y.size(), 8u);
    for (int i : {0, 5}) {
      EXPECT_TRUE(std::isnan(got.y[i])) << "y[" << i << "] = " << got.y[i];
      // PyTorch's hardsigmoid_backward is 0 outside (-3, 3), NaN included.
      if (name != "hard_sigmoid") {
        EXPECT_NE(got.dx[i], 0.0f) << "dx[" << i << "]";
      }
    }
  }
}

}  // namespace
}  // namespace gradflow
