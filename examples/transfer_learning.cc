// The chapter's transfer-learning experiment ("Reusing Pretrained Layers"):
//
//   model A  Fashion-MNIST without sandals (5) and shirts (6): 8 classes,
//            Flatten, Dense 300-100-50-50-50 SELU, Dense(8, softmax),
//            SGD lr 1e-3, 20 epochs; saved with Save and reloaded with LoadModel
//   model B  shirt (1) vs sandal (0) from only 200 training images, same
//            hidden layers, Dense(1, sigmoid), SGD lr 1e-3, 20 epochs
//   B on A   a clone of A's layers except the output (CloneModel +
//            SetWeights, so A stays intact) plus Dense(1, sigmoid): the
//            reused layers frozen for 4 epochs (SGD lr 1e-3), then unfrozen
//            and trained 16 more epochs with SGD lr 1e-4
//
// Both B models are evaluated on the test set's shirts and sandals (2,000
// images). Every seed retrains everything (the chapter's own warning: the
// gain depends a lot on the seed).
//
//   bazel build -c opt //examples:transfer_learning
//   ./bazel-bin/examples/transfer_learning --seeds=42,1,2,3,4
//
// --lr_frozen / --lr_unfrozen change the two phases' SGD rates (the
// chapter's 1e-3 and 1e-4 by default); --model_a is where model A is saved.

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "examples/example_util.h"
#include "examples/transfer_tasks.h"
#include "nn/model.h"
#include "nn/saving.h"

using namespace gradflow;
using examples::HiddenLayers;
using examples::Sgd;
using examples::Split;
using examples::SplitDataset;

int main(int argc, char** argv) {
  examples::Flags flags(argc, argv, {{"seeds", "42"}, {"epochs_a", "20"}, {"epochs_b", "20"}, {"frozen_epochs", "4"},
                                     {"unfrozen_epochs", "16"}, {"lr_frozen", "0.001"}, {"lr_unfrozen", "0.0001"},
                                     {"train_b", "200"}, {"model_a", "my_model_A.safetensors"}, {"verbose", "0"}});
  auto data = examples::LoadChapterSplits();
  if (!data.ok()) return examples::Fail(data.status());
  const Split train = SplitDataset(data->x_train, data->y_train);
  const Split valid = SplitDataset(data->x_valid, data->y_valid);
  const Split test = SplitDataset(data->x_test, data->y_test);
  const int64_t n_b = std::min<int64_t>(flags.integer("train_b"), train.x_b.shape()[0]);
  const Tensor x_train_b = train.x_b.Slice(0, n_b).value(), y_train_b = train.y_b.Slice(0, n_b).value();
  std::printf("task A: %lld train / %lld valid / %lld test images (8 classes)\n",
              (long long)train.x_a.shape()[0], (long long)valid.x_a.shape()[0], (long long)test.x_a.shape()[0]);
  std::printf("task B: %lld train / %lld valid / %lld test images (shirt vs sandal)\n\n", (long long)n_b,
              (long long)valid.x_b.shape()[0], (long long)test.x_b.shape()[0]);
  const int verbose = flags.integer("verbose");
  const std::string path = flags.str("model_a");

  std::printf("%-6s %-12s %-14s %-14s %-16s %-8s\n", "seed", "A test acc", "B scratch acc", "B on A acc",
              "error ratio", "seconds");
  for (const std::string& seed_text : std::vector<std::string>(absl::StrSplit(flags.str("seeds"), ','))) {
    const uint64_t seed = std::stoull(seed_text);
    const auto start = std::chrono::steady_clock::now();

    // Model A, saved and reloaded as in the chapter.
    std::vector<nn::LayerPtr> layers_a = HiddenLayers();
    layers_a.push_back(nn::Dense(8, {.activation = "softmax"}));
    nn::Sequential model_a(layers_a, "model_A");
    if (auto s = model_a.Compile(Sgd(1e-3, "sparse_categorical_crossentropy", seed)); !s.ok()) return examples::Fail(s);
    auto history_a = model_a.Fit(train.x_a, train.y_a,
                                 {.epochs = flags.integer("epochs_a"),
                                  .validation_data = nn::ValidationData{valid.x_a, valid.y_a},
                                  .verbose = verbose});
    if (!history_a.ok()) return examples::Fail(history_a.status());
    if (auto s = model_a.Save(path); !s.ok()) return examples::Fail(s);
    auto loaded_a = nn::LoadModel(path);
    if (!loaded_a.ok()) return examples::Fail(loaded_a.status());
    auto a_test = loaded_a->Evaluate(test.x_a, test.y_a);
    if (!a_test.ok()) return examples::Fail(a_test.status());

    // Model B from scratch on 200 images.
    std::vector<nn::LayerPtr> layers_b = HiddenLayers();
    layers_b.push_back(nn::Dense(1, {.activation = "sigmoid"}));
    nn::Sequential model_b(layers_b, "model_B");
    if (auto s = model_b.Compile(Sgd(1e-3, "binary_crossentropy", seed)); !s.ok()) return examples::Fail(s);
    auto history_b = model_b.Fit(x_train_b, y_train_b,
                                 {.epochs = flags.integer("epochs_b"),
                                  .validation_data = nn::ValidationData{valid.x_b, valid.y_b},
                                  .verbose = verbose});
    if (!history_b.ok()) return examples::Fail(history_b.status());
    auto b_test = model_b.Evaluate(test.x_b, test.y_b);
    if (!b_test.ok()) return examples::Fail(b_test.status());

    // Model B on A: a clone of A (training it must not change A), all but
    // the output layer, plus a new sigmoid output.
    auto clone = nn::CloneModel(*loaded_a);
    if (!clone.ok()) return examples::Fail(clone.status());
    if (auto s = clone->SetWeights(*loaded_a->GetWeights()); !s.ok()) return examples::Fail(s);
    nn::Sequential b_on_a(std::vector<nn::LayerPtr>(clone->layers().begin(), clone->layers().end() - 1),
                          "model_B_on_A");
    b_on_a.Add(nn::Dense(1, {.activation = "sigmoid"}));
    for (size_t i = 0; i + 1 < b_on_a.layers().size(); ++i) b_on_a.layers()[i]->trainable = false;
    if (auto s = b_on_a.Compile(Sgd(flags.num("lr_frozen"), "binary_crossentropy", seed)); !s.ok()) return examples::Fail(s);
    const nn::ValidationData valid_b{valid.x_b, valid.y_b};
    auto frozen = b_on_a.Fit(x_train_b, y_train_b,
                             {.epochs = flags.integer("frozen_epochs"), .validation_data = valid_b, .verbose = verbose});
    if (!frozen.ok()) return examples::Fail(frozen.status());
    for (const nn::LayerPtr& layer : b_on_a.layers()) layer->trainable = true;
    if (auto s = b_on_a.Compile(Sgd(flags.num("lr_unfrozen"), "binary_crossentropy", seed)); !s.ok()) return examples::Fail(s);
    auto unfrozen = b_on_a.Fit(x_train_b, y_train_b,
                               {.epochs = flags.integer("unfrozen_epochs"), .validation_data = valid_b, .verbose = verbose});
    if (!unfrozen.ok()) return examples::Fail(unfrozen.status());
    auto b_on_a_test = b_on_a.Evaluate(test.x_b, test.y_b);
    if (!b_on_a_test.ok()) return examples::Fail(b_on_a_test.status());

    // A is intact: the clone shared nothing with it.
    auto a_again = loaded_a->Evaluate(test.x_a, test.y_a);
    if (!a_again.ok() || a_again->at("accuracy") != a_test->at("accuracy")) {
      std::fprintf(stderr, "error: training B on A's clone changed A\n");
      return 1;
    }
    const double scratch = b_test->at("accuracy"), reused = b_on_a_test->at("accuracy");
    std::printf("%-6llu %-12.4f %-14.4f %-14.4f %-16s %-8.1f\n", (unsigned long long)seed, a_test->at("accuracy"),
                scratch, reused,
                absl::StrFormat("%.2f%% -> %.2f%%", 100 * (1 - scratch), 100 * (1 - reused)).c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::fflush(stdout);
  }
  return 0;
}
