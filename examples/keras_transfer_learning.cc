// The chapter's transfer learning from a Keras file ("Reusing Pretrained
// Layers" starts with model_A = keras.models.load_model("my_model_A.h5")):
//
//   model_A = nn::LoadKerasModel("my_model_A.h5")        (any Keras .h5 or .keras
//             of the chapter's model A: 28x28 input, 8 classes)
//   model_A_clone = CloneModel + SetWeights               (so model A stays intact)
//   model_B_on_A = model_A_clone.layers[:-1] + Dense(1, sigmoid)
//   reused layers frozen; SGD lr 1e-3; fit 4 epochs;
//   unfrozen; SGD lr 1e-4; fit 16 epochs; evaluate on the test shirts and sandals
//
// Without a file at --model_a, model A is trained first (Flatten, Dense
// 300-100-50-50-50 SELU, Dense(8, softmax), SGD lr 1e-3, --epochs_a epochs on
// the chapter's task A) and saved in Keras's .h5 layout with model.Save,
// which a Keras user can load too. --train_a and --train_b pick how many
// training images each task uses (all of task A, 200 of task B by default).
//
//   bazel build -c opt //examples:keras_transfer_learning
//   ./bazel-bin/examples/keras_transfer_learning --model_a=my_model_A.h5

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "examples/example_util.h"
#include "examples/transfer_tasks.h"
#include "nn/keras.h"
#include "nn/model.h"
#include "nn/saving.h"

using namespace gradflow;

namespace {

// Trains the chapter's model A and saves it in Keras's .h5 layout.
absl::Status TrainModelA(const examples::Split& train, const examples::Split& valid, int64_t images, int epochs,
                         uint64_t seed, const std::string& path) {
  std::vector<nn::LayerPtr> layers = examples::HiddenLayers();
  layers.push_back(nn::Dense(8, {.activation = "softmax"}));
  nn::Sequential model_a(layers, "model_A");
  GF_RETURN_IF_ERROR(model_a.Compile(examples::Sgd(1e-3, "sparse_categorical_crossentropy", seed)));
  GF_ASSIGN_OR_RETURN(Tensor x, train.x_a.Slice(0, images));
  GF_ASSIGN_OR_RETURN(Tensor y, train.y_a.Slice(0, images));
  GF_RETURN_IF_ERROR(
      model_a.Fit(x, y, {.epochs = epochs, .validation_data = nn::ValidationData{valid.x_a, valid.y_a}, .verbose = 2})
          .status());
  return model_a.Save(path);
}

void PrintReport(const std::string& path, const nn::KerasLoadReport& report) {
  std::printf("loaded %s: %s, Keras %s, optimizer state %s\n", path.c_str(),
              report.format == nn::ModelFormat::kKeras ? ".keras archive" : "legacy .h5",
              report.keras_version.empty() ? "(unknown)" : report.keras_version.c_str(),
              report.optimizer_state_loaded ? "restored" : "not in the file");
  for (const std::string& note : report.notes) std::printf("  note: %s\n", note.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"model_a", "my_model_A.h5"}, {"epochs_a", "20"}, {"train_a", "0"},
                                     {"train_b", "200"}, {"frozen_epochs", "4"}, {"unfrozen_epochs", "16"},
                                     {"seed", "42"}});
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  const examples::Split train = examples::SplitDataset(data->x_train, data->y_train);
  const examples::Split valid = examples::SplitDataset(data->x_valid, data->y_valid);
  const examples::Split test = examples::SplitDataset(data->x_test, data->y_test);
  const uint64_t seed = flags.integer("seed");
  const std::string path = flags.str("model_a");
  if (!std::filesystem::exists(path)) {
    const int64_t all = train.x_a.shape()[0];
    const int64_t images = flags.integer("train_a") > 0 ? std::min<int64_t>(flags.integer("train_a"), all) : all;
    std::printf("no %s yet: training model A on %lld images and saving it in Keras's .h5 layout\n", path.c_str(),
                (long long)images);
    if (auto s = TrainModelA(train, valid, images, flags.integer("epochs_a"), seed, path); !s.ok()) {
      return examples::Fail(s);
    }
  }

  nn::KerasLoadReport report;
  absl::StatusOr<nn::Model> model_a = nn::LoadKerasModel(path, {}, &report);
  if (!model_a.ok()) return examples::Fail(model_a.status());
  PrintReport(path, report);
  absl::StatusOr<nn::Model> model_a_clone = nn::CloneModel(*model_a);
  if (!model_a_clone.ok()) return examples::Fail(model_a_clone.status());
  if (auto s = model_a_clone->SetWeights(*model_a->GetWeights()); !s.ok()) return examples::Fail(s);
  nn::Sequential model_b_on_a(
      std::vector<nn::LayerPtr>(model_a_clone->layers().begin(), model_a_clone->layers().end() - 1), "model_B_on_A");
  model_b_on_a.Add(nn::Dense(1, {.activation = "sigmoid"}));

  const int64_t n_b = std::min<int64_t>(flags.integer("train_b"), train.x_b.shape()[0]);
  const Tensor x_train_b = train.x_b.Slice(0, n_b).value(), y_train_b = train.y_b.Slice(0, n_b).value();
  const nn::ValidationData valid_b{valid.x_b, valid.y_b};
  for (size_t i = 0; i + 1 < model_b_on_a.layers().size(); ++i) model_b_on_a.layers()[i]->trainable = false;
  std::printf("\nmodel B on A, reused layers frozen (SGD lr 1e-3):\n");
  if (auto s = model_b_on_a.Compile(examples::Sgd(1e-3, "binary_crossentropy", seed)); !s.ok()) return examples::Fail(s);
  auto frozen = model_b_on_a.Fit(x_train_b, y_train_b,
                                 {.epochs = flags.integer("frozen_epochs"), .validation_data = valid_b, .verbose = 2});
  if (!frozen.ok()) return examples::Fail(frozen.status());
  for (const nn::LayerPtr& layer : model_b_on_a.layers()) layer->trainable = true;
  std::printf("\nunfrozen (SGD lr 1e-4):\n");
  if (auto s = model_b_on_a.Compile(examples::Sgd(1e-4, "binary_crossentropy", seed)); !s.ok()) return examples::Fail(s);
  auto unfrozen = model_b_on_a.Fit(x_train_b, y_train_b,
                                   {.epochs = flags.integer("unfrozen_epochs"), .validation_data = valid_b, .verbose = 2});
  if (!unfrozen.ok()) return examples::Fail(unfrozen.status());
  auto result = model_b_on_a.Evaluate(test.x_b, test.y_b);
  if (!result.ok()) return examples::Fail(result.status());
  // The chapter prints model_B_on_A.evaluate(X_test_B, y_test_B): [loss, accuracy].
  std::printf("\nmodel_B_on_A.evaluate(X_test_B, y_test_B): [%.4f, %.4f]\n", result->at("loss"),
              result->at("accuracy"));
  return 0;
}
