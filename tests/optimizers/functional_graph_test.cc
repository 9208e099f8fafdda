// Functional (non-sequential) models (feature M5): any graph built with the
// C++ graph API trains with optimizers::Minimize and a Session. Here a
// two-input "wide and deep" network with a skip connection, the functional
// API example of Hands-On ML's chapter 10, learns a regression target.

#include <cmath>
#include <cstring>
#include <vector>

#include "core/random.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/dense.h"
#include "ops/losses.h"
#include "ops/math.h"
#include "optimizers/optimizers.h"

namespace gradflow {
namespace {

constexpr int64_t kSamples = 256;
constexpr int kSteps = 300;

// y = 0.5 * sum(deep) - wide[0] + max(deep[0], 0) * wide[1]: a wide (linear)
// part and a deep (non-linear) part.
struct Data {
  Tensor deep, wide, y;
};

Data MakeData() {
  Data d{Tensor(DType::kF32, {kSamples, 5}), Tensor(DType::kF32, {kSamples, 3}), Tensor(DType::kF32, {kSamples, 1})};
  Rng rng(17);
  for (int64_t i = 0; i < kSamples; ++i) {
    float* deep = d.deep.data<float>() + 5 * i;
    float* wide = d.wide.data<float>() + 3 * i;
    double sum = 0;
    for (int k = 0; k < 5; ++k) sum += deep[k] = static_cast<float>(rng.Normal());
    for (int k = 0; k < 3; ++k) wide[k] = static_cast<float>(rng.Normal());
    d.y.data<float>()[i] = static_cast<float>(0.5 * sum - wide[0] + std::max(deep[0], 0.0f) * wide[1]);
  }
  return d;
}

TEST(FunctionalGraphTest, TwoInputsAndASkipConnectionTrainWithMinimize) {
  Graph g(5);
  Output deep_in = ops::Placeholder(g, "deep_input", DType::kF32, {-1, 5});
  Output wide_in = ops::Placeholder(g, "wide_input", DType::kF32, {-1, 3});
  Output target = ops::Placeholder(g, "y", DType::kF32, {-1, 1});
  auto dense = [&](const std::string& name, Output x, int64_t units, bool relu, bool trainable = true) {
    Scope s = g.Scope(name);
    Output w = ops::Variable(s, "kernel", {x.shape()[1], units}, HeNormal(), trainable);
    Output b = ops::Variable(s, "bias", {units}, Zeros(), trainable);
    Output y = ops::Dense(s, x, w, b);
    return relu ? ops::Relu(s, y) : y;
  };
  // Deep path: two hidden layers, the second with a residual (skip) connection.
  Output h1 = dense("hidden1", deep_in, 16, true);
  Output h2 = ops::Add(g, dense("hidden2", h1, 16, true), h1);
  // Wide path straight to the output; a frozen projection of the wide input
  // joins the deep path too.
  Output wide_features = dense("wide_projection", wide_in, 16, false, /*trainable=*/false);
  Output joined = ops::Add(g, h2, wide_features);
  Output output = ops::Add(g, dense("deep_out", joined, 1, false), dense("wide_out", wide_in, 1, false));
  Output loss = ops::MeanSquaredError(g, target, output);
  Output train = optimizers::Minimize(g, loss, optimizers::Adam{.learning_rate = 0.01});
  ASSERT_TRUE(g.ok()) << g.status();

  Session session(g);
  auto step = session.Compile({loss}, {train}, Phase::kTrain);
  auto evaluate = session.Compile({loss}, {}, Phase::kInfer);
  ASSERT_TRUE(step.ok() && evaluate.ok());
  Data data = MakeData();
  const std::vector<Feed> feeds = {{deep_in, data.deep}, {wide_in, data.wide}, {target, data.y}};
  auto initial = evaluate->Run(feeds);
  ASSERT_TRUE(initial.ok()) << initial.status();
  std::map<std::string, Tensor> before;
  for (const std::string& name : session.variables().Names()) before[name] = session.variables().Get(name)->Clone();

  std::vector<Tensor> fetched;
  for (int i = 0; i < kSteps; ++i) ASSERT_TRUE(step->Run(feeds, &fetched).ok());
  auto final_loss = evaluate->Run(feeds);
  ASSERT_TRUE(final_loss.ok());
  const float start = (*initial)[0].data<float>()[0], end = (*final_loss)[0].data<float>()[0];
  EXPECT_LT(end, 0.05f * start) << "initial " << start << ", final " << end;

  // Every trainable variable of both paths learned; the frozen one did not.
  for (const char* name : {"hidden1/kernel", "hidden2/kernel", "deep_out/kernel", "wide_out/kernel"}) {
    auto after = session.variables().Get(name);
    EXPECT_NE(std::memcmp(after->raw(), before.at(name).raw(), after->num_bytes()), 0) << name;
  }
  auto frozen = session.variables().Get("wide_projection/kernel");
  EXPECT_EQ(std::memcmp(frozen->raw(), before.at("wide_projection/kernel").raw(), frozen->num_bytes()), 0);
  EXPECT_NE(g.ToDot().find("ApplyAdam"), std::string::npos);
}

}  // namespace
}  // namespace gradflow
