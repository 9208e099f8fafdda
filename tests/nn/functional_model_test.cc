// Functional models (nn::Model::Create): two inputs, two outputs, a skip
// connection and a shared layer; their gradients against the same network
// built by hand from ops; reported names; Summary's "Connected to"; the
// errors of Create and of feeding the wrong tensors.

#include <cmath>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "graph/autodiff.h"
#include "graph/session.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "nn/merge_layers.h"
#include "nn/model.h"
#include "nn/model_config.h"
#include "nn/saving.h"
#include "ops/activations.h"
#include "ops/array.h"
#include "ops/concat.h"
#include "ops/dense.h"
#include "ops/losses.h"
#include "ops/math.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

Tensor Filled(Shape shape, double phase) {
  Tensor t(DType::kF32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = static_cast<float>(std::sin(0.7 * i + phase));
  return t;
}

// wide [3] ----------------------------------------------.
// deep [4] -> shared -> h1 -> shared -> h2 -> add(h1, h2) -> concat -> main [1]
//                                        `-> aux [1]
struct WideAndDeep {
  nn::KerasTensor wide = nn::Input({3}, {.name = "wide"});
  nn::KerasTensor deep = nn::Input({4}, {.name = "deep"});
  nn::LayerPtr shared = nn::Dense(4, {.activation = "tanh", .name = "shared"});
  nn::KerasTensor h1 = shared(deep);
  nn::KerasTensor h2 = shared(h1);
  nn::KerasTensor skip = nn::Add()({h1, h2});
  nn::KerasTensor main = nn::Dense(1, {.name = "main"})(nn::Concatenate()({wide, skip}));
  nn::KerasTensor aux = nn::Dense(1, {.name = "aux"})(h2);

  absl::StatusOr<nn::Model> Create() { return nn::Model::Create({wide, deep}, {main, aux}, "wide_and_deep"); }
};

nn::CompileOptions TwoOutputOptions(double learning_rate) {
  return {.loss = "mse",
          .optimizer = optimizers::SGD{.learning_rate = learning_rate},
          .metrics = {"mae"},
          .outputs = {{.loss_weight = 0.9}, {.loss_weight = 0.1}}};
}

constexpr int64_t kRows = 16;

struct Data {
  Tensor wide = Filled({kRows, 3}, 0.1), deep = Filled({kRows, 4}, 0.2);
  Tensor main = Filled({kRows, 1}, 0.3), aux = Filled({kRows, 1}, 0.4);
};

TEST(FunctionalModelTest, GradientsMatchTheSameNetworkBuiltFromOps) {
  WideAndDeep net;
  absl::StatusOr<nn::Model> model = net.Create();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile(TwoOutputOptions(1.0)).ok());
  const std::map<std::string, Tensor> before = *model->GetWeights();
  Data d;
  // One full-batch SGD step with learning rate 1: each weight moves by minus its gradient.
  ASSERT_TRUE(model->Fit({d.wide, d.deep}, {d.main, d.aux}, {.batch_size = kRows, .shuffle = false, .verbose = 0}).ok());
  const std::map<std::string, Tensor> after = *model->GetWeights();

  Graph g;
  auto constant = [&](const std::string& name) { return ops::Constant(g, before.at(name), name); };
  Output ks = constant("shared/kernel"), bs = constant("shared/bias");
  Output km = constant("main/kernel"), bm = constant("main/bias");
  Output ka = constant("aux/kernel"), ba = constant("aux/bias");
  Output wide = ops::Constant(g, d.wide, "wide"), deep = ops::Constant(g, d.deep, "deep");
  Output h1 = ops::Activation(g, ops::Dense(g, deep, ks, bs), "tanh");
  Output h2 = ops::Activation(g, ops::Dense(g, h1, ks, bs), "tanh");
  Output main = ops::Dense(g, ops::Concat(g, {wide, ops::Add(g, h1, h2)}), km, bm);
  Output aux = ops::Dense(g, h2, ka, ba);
  Output loss = ops::Add(g, ops::Mul(g, ops::MeanSquaredError(g, ops::Constant(g, d.main), main), 0.9f),
                         ops::Mul(g, ops::MeanSquaredError(g, ops::Constant(g, d.aux), aux), 0.1f));
  absl::StatusOr<std::vector<Output>> grads = AddGradients(g, loss, {ks, bs, km, bm, ka, ba});
  ASSERT_TRUE(grads.ok()) << grads.status();
  Session session(g);
  absl::StatusOr<Plan> plan = session.Compile(std::vector<ValueRef>(grads->begin(), grads->end()));
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<std::vector<Tensor>> want = plan->Run({});
  ASSERT_TRUE(want.ok()) << want.status();

  const char* names[] = {"shared/kernel", "shared/bias", "main/kernel", "main/bias", "aux/kernel", "aux/bias"};
  for (int v = 0; v < 6; ++v) {
    const Tensor& w0 = before.at(names[v]);
    for (int64_t i = 0; i < w0.num_elements(); ++i) {
      const double got = double(w0.data<float>()[i]) - after.at(names[v]).data<float>()[i];
      EXPECT_NEAR(got, (*want)[v].data<float>()[i], 1e-5) << names[v] << "[" << i << "]";
    }
  }
}

TEST(FunctionalModelTest, ReportsTheTotalLossEachOutputsLossAndMetrics) {
  WideAndDeep net;
  absl::StatusOr<nn::Model> model = net.Create();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile(TwoOutputOptions(0.05)).ok());
  Data d;
  absl::StatusOr<nn::History> history = model->Fit(
      {d.wide, d.deep}, {d.main, d.aux},
      {.epochs = 20, .batch_size = 4, .validation_data = nn::ValidationData{{d.wide, d.deep}, {d.main, d.aux}}, .verbose = 0});
  ASSERT_TRUE(history.ok()) << history.status();
  for (const char* name : {"loss", "main_loss", "aux_loss", "main_mae", "aux_mae", "val_loss", "val_main_loss",
                           "val_aux_loss", "val_main_mae", "val_aux_mae"}) {
    EXPECT_EQ(history->history.count(name), 1u) << name;
  }
  const auto& loss = history->history.at("loss");
  EXPECT_LT(loss.back(), loss.front());
  absl::StatusOr<std::map<std::string, double>> eval = model->Evaluate({d.wide, d.deep}, {d.main, d.aux}, kRows);
  ASSERT_TRUE(eval.ok()) << eval.status();
  // The total is the weighted sum of the outputs' losses (no penalties here).
  EXPECT_NEAR(eval->at("loss"), 0.9 * eval->at("main_loss") + 0.1 * eval->at("aux_loss"), 1e-6);

  absl::StatusOr<std::vector<Tensor>> predicted = model->PredictOutputs({d.wide, d.deep});
  ASSERT_TRUE(predicted.ok()) << predicted.status();
  ASSERT_EQ(predicted->size(), 2u);
  EXPECT_EQ((*predicted)[0].shape(), Shape({kRows, 1}));
  EXPECT_THAT(std::string(model->Predict({d.wide, d.deep}).status().message()), HasSubstr("PredictOutputs"));
}

TEST(FunctionalModelTest, AChainIsTheSequentialModelOfItsLayers) {
  nn::LayerPtr a = nn::Dense(5, {.activation = "relu", .input_shape = Shape({4})}), b = nn::Dense(2);
  nn::Sequential sequential({a, b});
  ASSERT_TRUE(sequential.Compile({.loss = "mse"}).ok());
  // The same layer objects (hence the same weights) in a functional model.
  nn::KerasTensor x = nn::Input({4});
  absl::StatusOr<nn::Model> functional = nn::Model::Create({x}, {b(a(x))});
  ASSERT_TRUE(functional.ok()) << functional.status();
  ASSERT_TRUE(functional->Compile({.loss = "mse"}).ok());
  Tensor in = Filled({kRows, 4}, 0.5);
  Tensor want = *sequential.Predict(in), got = *functional->Predict(in);
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < want.num_elements(); ++i) EXPECT_EQ(got.data<float>()[i], want.data<float>()[i]);
  EXPECT_EQ(functional->input().node->name, "input_layer");
}

TEST(FunctionalModelTest, SummaryListsInputsAndWhatEachLayerIsConnectedTo) {
  WideAndDeep net;
  absl::StatusOr<nn::Model> model = net.Create();
  ASSERT_TRUE(model.ok()) << model.status();
  const std::string before = model->Summary();
  EXPECT_THAT(before, HasSubstr("Connected to"));
  EXPECT_THAT(before, HasSubstr("wide (InputLayer)"));
  EXPECT_THAT(before, HasSubstr("deep[0][0], shared[0][0]"));  // the shared layer's two calls
  EXPECT_THAT(before, HasSubstr("shared[0][0], shared[1][0]"));  // the skip connection
  EXPECT_THAT(before, HasSubstr("wide[0][0], add[0][0]"));
  EXPECT_THAT(before, HasSubstr("Total params: 33"));  // shared 20 (once), main 8, aux 5
  ASSERT_TRUE(model->Compile(TwoOutputOptions(0.01)).ok());
  EXPECT_EQ(model->Summary(), before);
}

TEST(FunctionalModelTest, CreateRefusesDisconnectedOrRepeatedTensors) {
  nn::KerasTensor a = nn::Input({3}, {.name = "a"}), b = nn::Input({3}, {.name = "b"});
  nn::KerasTensor ya = nn::Dense(1)(a);
  auto message = [](const absl::StatusOr<nn::Model>& m) { return std::string(m.status().message()); };
  EXPECT_THAT(message(nn::Model::Create({b}, {ya})), HasSubstr("the Input 'a'"));
  EXPECT_THAT(message(nn::Model::Create({a, b}, {ya})), HasSubstr("inputs[1]"));
  EXPECT_THAT(message(nn::Model::Create({a, a}, {ya})), HasSubstr("same tensor"));
  EXPECT_THAT(message(nn::Model::Create({a}, {a})), HasSubstr("must come from a layer"));
  EXPECT_THAT(message(nn::Model::Create({ya}, {ya})), HasSubstr("not an nn::Input"));
  nn::KerasTensor bad = nn::Dense(1)(nn::Concatenate(0)({a, nn::Input({4})}));
  EXPECT_FALSE(nn::Model::Create({a}, {bad}).ok());
  nn::KerasTensor same_name = nn::Dense(1, {.name = "a"})(a);
  EXPECT_THAT(message(nn::Model::Create({a}, {same_name})), HasSubstr("two layers are named 'a'"));
}

TEST(FunctionalModelTest, FeedsMustMatchTheInputsAndOutputs) {
  WideAndDeep net;
  absl::StatusOr<nn::Model> model = net.Create();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile(TwoOutputOptions(0.01)).ok());
  Data d;
  auto fit_error = [&](const nn::TensorList& x, const nn::TensorList& y) {
    return std::string(model->Fit(x, y, {.verbose = 0}).status().message());
  };
  EXPECT_THAT(fit_error({d.wide}, {d.main, d.aux}), HasSubstr("x has 1 tensors but the model has 2"));
  EXPECT_THAT(fit_error({d.deep, d.wide}, {d.main, d.aux}), HasSubstr("x[0] ('wide')"));
  EXPECT_THAT(fit_error({d.wide, d.deep}, {d.main}), HasSubstr("y has 1 tensors"));
  Tensor short_deep = Filled({kRows - 1, 4}, 0);
  EXPECT_THAT(fit_error({d.wide, short_deep}, {d.main, d.aux}), HasSubstr("samples"));
  nn::CompileOptions three = TwoOutputOptions(0.01);
  three.outputs.push_back({});
  EXPECT_THAT(std::string(model->Compile(three).message()), HasSubstr("3 entries but the model has 2 outputs"));
}

void ExpectSameOutputs(const std::vector<Tensor>& got, const std::vector<Tensor>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_EQ(got[k].shape(), want[k].shape()) << what;
    for (int64_t i = 0; i < want[k].num_elements(); ++i) {
      ASSERT_EQ(got[k].data<float>()[i], want[k].data<float>()[i]) << what << " output " << k << "[" << i << "]";
    }
  }
}

TEST(FunctionalModelTest, SavesAndLoadsInEveryFormatWithTheSamePredictions) {
  WideAndDeep net;
  absl::StatusOr<nn::Model> model = net.Create();
  ASSERT_TRUE(model.ok()) << model.status();
  // One loss and metric list for both outputs: the Keras files take that form.
  ASSERT_TRUE(model->Compile({.loss = "mse", .optimizer = "adam", .metrics = {"mae"}}).ok());
  Data d;
  ASSERT_TRUE(model->Fit({d.wide, d.deep}, {d.main, d.aux}, {.epochs = 2, .batch_size = 4, .verbose = 0}).ok());
  const std::vector<Tensor> want = *model->PredictOutputs({d.wide, d.deep});
  for (const char* file : {"model.safetensors", "model.keras", "model.h5"}) {
    const std::string path = testing_util::TempDir("functional_save") + "/" + file;
    absl::Status saved = model->Save(path);
    ASSERT_TRUE(saved.ok()) << file << ": " << saved;
    absl::StatusOr<nn::Model> loaded = nn::LoadModel(path);
    ASSERT_TRUE(loaded.ok()) << file << ": " << loaded.status();
    EXPECT_FALSE(loaded->sequential());
    EXPECT_EQ(loaded->Summary(), model->Summary()) << file;
    ExpectSameOutputs(*loaded->PredictOutputs({d.wide, d.deep}), want, file);
    // It trains on, with the names of the original.
    absl::StatusOr<nn::History> more = loaded->Fit({d.wide, d.deep}, {d.main, d.aux}, {.verbose = 0});
    ASSERT_TRUE(more.ok()) << file << ": " << more.status();
    EXPECT_EQ(more->history.count("aux_mae"), 1u) << file;
  }
}

TEST(FunctionalModelTest, PerOutputOptionsRoundTripThroughGradflowsFormat) {
  WideAndDeep net;
  absl::StatusOr<nn::Model> model = net.Create();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile(TwoOutputOptions(0.01)).ok());
  const std::string path = testing_util::TempDir("functional_outputs") + "/model.safetensors";
  ASSERT_TRUE(model->Save(path).ok());
  absl::StatusOr<nn::Model> loaded = nn::LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->compile_options()->outputs.size(), 2u);
  EXPECT_EQ(loaded->compile_options()->outputs[1].loss_weight, 0.1);
  // Keras files hold them too: tests/nn/keras_functional_test.cc.
}

TEST(FunctionalModelTest, ClonesWithFreshLayersAndFreezesALayer) {
  WideAndDeep net;
  absl::StatusOr<nn::Model> model = net.Create();
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->Compile(TwoOutputOptions(0.05)).ok());
  absl::StatusOr<nn::Model> clone = nn::CloneModel(*model);
  ASSERT_TRUE(clone.ok()) << clone.status();
  ASSERT_EQ(clone->layers().size(), model->layers().size());
  EXPECT_NE(clone->layers()[0], model->layers()[0]);
  EXPECT_EQ(clone->Summary(), model->Summary());
  ASSERT_TRUE(clone->SetWeights(*model->GetWeights()).ok());
  ASSERT_TRUE(clone->Compile(TwoOutputOptions(0.05)).ok());
  Data d;
  ExpectSameOutputs(*clone->PredictOutputs({d.wide, d.deep}), *model->PredictOutputs({d.wide, d.deep}), "clone");

  // Freezing the shared layer (both its calls) keeps its weights; the heads train.
  (*clone->GetLayer("shared"))->trainable = false;
  ASSERT_TRUE(clone->Compile(TwoOutputOptions(0.05)).ok());
  EXPECT_EQ(clone->CountParams(/*trainable=*/false), 20);
  const auto before = *clone->GetWeights();
  ASSERT_TRUE(clone->Fit({d.wide, d.deep}, {d.main, d.aux}, {.epochs = 2, .verbose = 0}).ok());
  const auto after = *clone->GetWeights();
  auto same = [&](const std::string& name) {
    const Tensor &a = before.at(name), &b = after.at(name);
    for (int64_t i = 0; i < a.num_elements(); ++i) {
      if (a.data<float>()[i] != b.data<float>()[i]) return false;
    }
    return true;
  };
  EXPECT_TRUE(same("shared/kernel"));
  EXPECT_FALSE(same("main/kernel"));
  EXPECT_FALSE(same("aux/kernel"));
}

// A functional config's layer graph, as a hostile file could write it.
std::string FunctionalConfig(const std::string& dense_inbound, const std::string& outputs) {
  return R"({"format": "gradflow.model", "format_version": 1, "class_name": "Functional", "name": "f",
    "layers": [
      {"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [null, 3], "dtype": "float32", "name": "x"},
       "inbound_nodes": []},
      {"class_name": "Dense", "name": "d", "config": {"units": 2, "name": "d"}, "inbound_nodes": )" +
         dense_inbound + R"(},
      {"class_name": "Dense", "name": "e", "config": {"units": 2, "name": "e"},
       "inbound_nodes": [[["d", 0, 0, {}]]]}],
    "input_layers": [["x", 0, 0]], "output_layers": )" + outputs + "}";
}

TEST(FunctionalModelTest, HostileLayerGraphsAreErrorsNamingThePlace) {
  auto error = [](const std::string& text) {
    absl::StatusOr<nn::ModelConfig> config = nn::ParseModelConfig(text);
    if (config.ok()) return std::string("parsed");
    return std::string(config.status().message());
  };
  // Well formed (tf.keras 2's node form), to show the others fail for their one fault.
  absl::StatusOr<nn::ModelConfig> good = nn::ParseModelConfig(FunctionalConfig(R"([[["x", 0, 0, {}]]])", R"([["e", 0, 0]])"));
  ASSERT_TRUE(good.ok()) << good.status();
  absl::StatusOr<nn::Model> model = nn::ModelFromConfig(*good);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->layers().size(), 2u);
  // A cycle: d reads e, e reads d.
  EXPECT_THAT(error(FunctionalConfig(R"([[["e", 0, 0, {}]]])", R"([["e", 0, 0]])")), HasSubstr("cycle"));
  EXPECT_THAT(error(FunctionalConfig(R"([[["nope", 0, 0, {}]]])", R"([["e", 0, 0]])")), HasSubstr("names no layer"));
  EXPECT_THAT(error(FunctionalConfig(R"([[["x", 5, 0, {}]]])", R"([["e", 0, 0]])")), HasSubstr("call 5"));
  EXPECT_THAT(error(FunctionalConfig(R"([[["x", 0, 1, {}]]])", R"([["e", 0, 0]])")), HasSubstr("tensor 0"));
  EXPECT_THAT(error(FunctionalConfig(R"([{"args": 7}])", R"([["e", 0, 0]])")), HasSubstr("inbound_nodes[0]"));
  EXPECT_THAT(error(FunctionalConfig("[]", R"([["e", 0, 0]])")), HasSubstr("needs 'inbound_nodes'"));
  EXPECT_THAT(error(FunctionalConfig(R"([[["x", 0, 0, {}]]])", R"("e")")), HasSubstr("output_layers"));
}

}  // namespace
}  // namespace gradflow
