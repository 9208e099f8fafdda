// Bad input from C++ callers: one test per row of the README's "Failure
// behaviour" table. Each checks the status code and that the message names
// what is wrong (and, where there is one, the fix).

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "core/random.h"
#include "gmock/gmock.h"
#include "graph/session.h"
#include "gtest/gtest.h"
#include "nn/dropout_layers.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "ops/array.h"
#include "ops/math.h"

namespace gradflow {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// The message, also printed (the test log shows what a caller gets).
std::string Msg(const absl::Status& s) {
  std::printf("  -> %s: %s\n", absl::StatusCodeToString(s.code()).c_str(), std::string(s.message()).c_str());
  return std::string(s.message());
}
template <typename T> std::string Msg(const absl::StatusOr<T>& s) { return Msg(s.status()); }

// ------------------------------------------------------------ graph level

// x [-1, 3] -> y = 2x.
struct Doubler {
  Graph g;
  Output x, y;
  Doubler() {
    x = ops::Placeholder(g, "x", DType::kF32, {-1, 3});
    y = ops::Scale(g, x, 2.0f);
  }
};

Tensor Rows(int64_t n) { return Tensor(DType::kF32, {n, 3}); }

TEST(BadInputTest, FeedOfTheWrongDtype) {
  Doubler m;
  Session s(m.g);
  auto plan = s.Compile({m.y});
  ASSERT_TRUE(plan.ok());
  auto out = plan->Run({{m.x, Tensor(DType::kI32, {2, 3})}});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(out), HasSubstr("feed for placeholder 'x' is i32[2, 3] but the placeholder is f32[-1, 3]"));
}

TEST(BadInputTest, FeedOfTheWrongShape) {
  Doubler m;
  Session s(m.g);
  auto plan = s.Compile({m.y});
  ASSERT_TRUE(plan.ok());
  auto out = plan->Run({{m.x, Tensor(DType::kF32, {2, 4})}});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(out), AllOf(HasSubstr("f32[2, 4] but the placeholder is f32[-1, 3]"),
                              HasSubstr("-1 matches any batch size")));
  out = plan->Run({{m.x, Tensor(DType::kF32, {3})}});  // wrong rank
  EXPECT_THAT(Msg(out), HasSubstr("f32[3] but the placeholder is f32[-1, 3]"));
}

TEST(BadInputTest, FeedsWithDifferentBatchSizes) {
  Graph g;
  Output a = ops::Placeholder(g, "a", DType::kF32, {-1, 3});
  Output b = ops::Placeholder(g, "b", DType::kF32, {-1, 3});
  Output sum = ops::Add(g, a, b);
  Session s(g);
  auto plan = s.Compile({sum});
  ASSERT_TRUE(plan.ok());
  auto out = plan->Run({{a, Rows(4)}, {b, Rows(5)}});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(out), HasSubstr("feeds disagree on the batch size: 'a' has 4, 'b' has 5"));
}

TEST(BadInputTest, MissingFeed) {
  Doubler m;
  Session s(m.g);
  auto plan = s.Compile({m.y});
  ASSERT_TRUE(plan.ok());
  auto out = plan->Run({});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(out), HasSubstr("placeholder 'x' f32[-1, 3] must be fed"));
}

TEST(BadInputTest, FeedingANodeThatIsNotAPlaceholder) {
  Doubler m;
  Session s(m.g);
  auto plan = s.Compile({m.y});
  ASSERT_TRUE(plan.ok());
  auto out = plan->Run({{m.x, Rows(1)}, {m.y, Rows(1)}});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(out), HasSubstr("only placeholders are fed"));
}

TEST(BadInputTest, FetchOrFeedOfANodeFromAnotherGraph) {
  Doubler mine, other;
  Session s(mine.g);
  auto plan = s.Compile({other.y});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(plan), HasSubstr("'" + other.y.name() + "' belongs to another graph than this session's"));

  auto good = s.Compile({mine.y});
  ASSERT_TRUE(good.ok());
  auto out = good->Run({{other.x, Rows(1)}});
  EXPECT_THAT(Msg(out), HasSubstr("'x' belongs to another graph"));
}

TEST(BadInputTest, FetchOfAnUnknownName) {
  Doubler m;
  Session s(m.g);
  auto plan = s.Compile({"no_such_node"});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(plan), HasSubstr("no node output named 'no_such_node'"));
}

TEST(BadInputTest, CompilingAGraphWithABuildError) {
  Doubler m;
  Output bad = ops::Add(m.g, m.x, ops::Placeholder(m.g, "z", DType::kF32, {-1, 4}));  // [.,3] + [.,4]
  EXPECT_FALSE(bad.valid());
  Session s(m.g);
  auto plan = s.Compile({m.y});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(plan), HasSubstr("the graph has a build error"));
}

// Graphs only grow (nodes are appended, never changed or removed), so a plan
// stays valid when nodes are added after it was compiled: it runs the nodes
// it was compiled with, and gives the same result. New nodes need a new plan.
TEST(BadInputTest, PlanRunsUnchangedAfterItsGraphGrew) {
  Doubler m;
  Session s(m.g);
  auto plan = s.Compile({m.y});
  ASSERT_TRUE(plan.ok());
  Tensor x = Tensor::FromVector<float>({1, 3}, {1, 2, 3}).value();
  auto before = plan->Run({{m.x, x}});
  ASSERT_TRUE(before.ok());

  Output z = ops::Add(m.g, m.y, 1.0f);  // the graph grows, with new nodes
  ops::Placeholder(m.g, "unused", DType::kF32, {2});
  ASSERT_TRUE(m.g.ok());
  auto after = plan->Run({{m.x, x}});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)[0].ToVector<float>(), (*before)[0].ToVector<float>());
  EXPECT_EQ(plan->NodeNames().size(), 2u) << "the old plan does not pick up new nodes";

  auto grown = s.Compile({z});
  ASSERT_TRUE(grown.ok());
  auto out = grown->Run({{m.x, x}});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].ToVector<float>(), (std::vector<float>{3, 5, 7}));
}

TEST(BadInputTest, SettingAVariableToAValueOfAnotherShape) {
  Graph g;
  ops::Variable(g, "w", {2, 3}, Zeros());
  Session s(g);
  ASSERT_TRUE(s.InitializeVariables().ok());
  absl::Status st = s.variables().Set("w", Tensor(DType::kF32, {3, 2}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(st), HasSubstr("variable 'w' is f32[2, 3] but the new value is f32[3, 2]"));
}

// ------------------------------------------------------------ model level

// A 4-feature, 10-class classifier and data for it.
struct Data {
  Tensor x, y;
};

Data MakeData(int64_t n, int num_classes = 10) {
  Data d{Tensor(DType::kF32, {n, 4}), Tensor(DType::kI32, {n})};
  Rng rng(7);
  for (int64_t i = 0; i < n; ++i) {
    d.y.data<int32_t>()[i] = static_cast<int32_t>(i % num_classes);
    for (int k = 0; k < 4; ++k) d.x.data<float>()[4 * i + k] = static_cast<float>(rng.Normal());
  }
  return d;
}

nn::Sequential Classifier(nn::CompileOptions options = {}) {
  nn::Sequential model({nn::Dense(16, {.activation = "relu", .input_shape = Shape{4}}),
                        nn::Dense(10, {.activation = "softmax"})});
  absl::Status s = model.Compile(std::move(options));
  EXPECT_TRUE(s.ok()) << s;
  return model;
}

TEST(BadInputTest, LabelOutOfRangeForTheLoss) {
  nn::Sequential model = Classifier();
  Data d = MakeData(8);
  d.y.data<int32_t>()[5] = 12;  // 10 classes: 0..9
  // The row is the row in the batch (here the whole unshuffled data).
  auto history = model.Fit(d.x, d.y, {.shuffle = false, .verbose = 0});
  EXPECT_EQ(history.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(history), AllOf(HasSubstr("label 12 in row 5"), HasSubstr("10 classes"),
                                  HasSubstr("class indices 0..9")));
  d.y.data<int32_t>()[5] = -1;
  EXPECT_THAT(Msg(model.Evaluate(d.x, d.y)), HasSubstr("label -1 in row 5"));
}

TEST(BadInputTest, EmptyDataset) {
  nn::Sequential model = Classifier();
  Data empty = MakeData(0);
  auto history = model.Fit(empty.x, empty.y, {.verbose = 0});
  EXPECT_EQ(history.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(history), HasSubstr("Fit: no training samples (x has 0 rows); pass at least one sample"));
  Data one = MakeData(1);
  EXPECT_THAT(Msg(model.Fit(one.x, one.y, {.validation_split = 0.5, .verbose = 0})),
              HasSubstr("the validation data has no samples (validation_split 0.5 of 1 samples)"));
  EXPECT_THAT(Msg(model.Fit(one.x, one.y, {.validation_data = nn::ValidationData{empty.x, empty.y},
                                           .verbose = 0})),
              HasSubstr("the validation data has no samples; give more data or no validation"));
  EXPECT_THAT(Msg(model.Evaluate(empty.x, empty.y)), HasSubstr("at least one sample"));
  // Predicting nothing is not an error: the result has no rows.
  auto predicted = model.Predict(empty.x);
  ASSERT_TRUE(predicted.ok()) << predicted.status();
  EXPECT_EQ(predicted->shape(), (Shape{0, 10}));
}

TEST(BadInputTest, BatchSizeZeroOrNegative) {
  nn::Sequential model = Classifier();
  Data d = MakeData(8);
  for (int64_t batch : {0, -4}) {
    auto history = model.Fit(d.x, d.y, {.batch_size = batch, .verbose = 0});
    EXPECT_EQ(history.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Msg(history), HasSubstr("Fit: batch_size must be > 0, got " + std::to_string(batch)));
  }
  EXPECT_THAT(Msg(model.Evaluate(d.x, d.y, 0)), HasSubstr("batch_size > 0"));
  EXPECT_THAT(Msg(model.Predict(d.x, 0)), HasSubstr("batch_size must be > 0"));
}

// Keras runs one partial batch when batch_size exceeds the data: the same
// step as batch_size = n.
TEST(BadInputTest, BatchSizeLargerThanTheDatasetIsOnePartialBatch) {
  Data d = MakeData(10);
  nn::Sequential big = Classifier(), exact = Classifier();
  auto a = big.Fit(d.x, d.y, {.epochs = 2, .batch_size = 1000, .shuffle = false, .verbose = 0});
  auto b = exact.Fit(d.x, d.y, {.epochs = 2, .batch_size = 10, .shuffle = false, .verbose = 0});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->history.at("loss"), b->history.at("loss"));
  auto wa = big.GetWeights(), wb = exact.GetWeights();
  for (const auto& [name, value] : *wa) EXPECT_EQ(value.ToVector<float>(), wb->at(name).ToVector<float>()) << name;
}

TEST(BadInputTest, LearningRateZeroNegativeNaNOrInfinite) {
  for (double rate : {0.0, -0.01, std::nan(""), std::numeric_limits<double>::infinity()}) {
    nn::Sequential model({nn::Dense(2, {.input_shape = Shape{4}})});
    absl::Status s = model.Compile({.optimizer = optimizers::SGD{.learning_rate = rate}});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << rate;
    EXPECT_THAT(Msg(s), HasSubstr("learning rate must be > 0, got")) << rate;
  }
  nn::Sequential model = Classifier();
  for (double rate : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    absl::Status s = model.SetLearningRate(rate);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << rate;
    EXPECT_THAT(Msg(s), HasSubstr("the learning rate must be finite and > 0")) << rate;
  }
}

TEST(BadInputTest, DropoutRateOutsideZeroToOne) {
  for (double rate : {1.0, 1.5, -0.1, std::nan("")}) {
    nn::Sequential model({nn::Dense(8, {.input_shape = Shape{4}}), nn::Dropout(rate), nn::Dense(2)});
    absl::Status s = model.Compile({.loss = "mse"});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << rate;
    EXPECT_THAT(Msg(s), AllOf(HasSubstr("'dropout"), HasSubstr("rate must be in [0, 1)")))
        << rate;
  }
}

TEST(BadInputTest, SamplesOfTheWrongShapeOrDtype) {
  nn::Sequential model = Classifier();
  Data d = MakeData(8);
  EXPECT_THAT(Msg(model.Fit(Tensor(DType::kF32, {8, 5}), d.y, {.verbose = 0})),
              HasSubstr("x is f32[8, 5] but the model expects f32[-1, 4]"));
  EXPECT_THAT(Msg(model.Fit(d.x, Tensor(DType::kF32, {8}), {.verbose = 0})),
              HasSubstr("y is f32[8] but the model expects i32[-1]"));
  EXPECT_THAT(Msg(model.Predict(Tensor(DType::kF32, {8, 4, 1}))),
              HasSubstr("x is f32[8, 4, 1] but the model expects f32[-1, 4]"));
}

TEST(BadInputTest, DifferentNumbersOfSamplesAndLabels) {
  nn::Sequential model = Classifier();
  Data d = MakeData(8);
  auto history = model.Fit(d.x, MakeData(7).y, {.verbose = 0});
  EXPECT_EQ(history.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(history), HasSubstr("y has 7 samples but x has 8"));
}

TEST(BadInputTest, ValidationSplitOutsideZeroToOne) {
  nn::Sequential model = Classifier();
  Data d = MakeData(8);
  for (double split : {1.0, -0.2}) {
    EXPECT_THAT(Msg(model.Fit(d.x, d.y, {.validation_split = split, .verbose = 0})),
                HasSubstr("validation_split must be in [0, 1)"));
  }
}

TEST(BadInputTest, UsingAModelBeforeCompile) {
  nn::Sequential model({nn::Dense(2, {.input_shape = Shape{4}})});
  Data d = MakeData(4);
  auto history = model.Fit(d.x, d.y);
  EXPECT_EQ(history.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(history), HasSubstr("call Compile before Fit/Evaluate/Predict"));
}

}  // namespace
}  // namespace gradflow
