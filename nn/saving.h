#ifndef GRADFLOW_NN_SAVING_H_
#define GRADFLOW_NN_SAVING_H_

// Whole models in one file, and model copies (Keras's save / load_model /
// clone_model). The writing side is Model::Save, SaveWeights and
// LoadWeights (nn/model.h); the file is a safetensors file (core/checkpoint.h):
//
//   tensors   every layer variable by name ("dense_1/kernel",
//             "batch_normalization/moving_mean"); with include_optimizer also
//             the optimizer's slots ("dense_1/kernel/m"), "global_step" and
//             "optimizer/learning_rate"
//   metadata  "gradflow.model":  the configuration JSON (nn/model_config.h)
//             "gradflow.layers": [{"name": "dense", "weights": ["dense/kernel",
//                                 "dense/bias"]}, ...], the layers with weights
//                                 in model order
//             "gradflow.fit":    {"epochs_shuffled": N} (with include_optimizer):
//                                 where Fit's shuffling stands
//
//   model.Save("my_model_A.safetensors");
//   absl::StatusOr<nn::Model> model_a = nn::LoadModel("my_model_A.safetensors");
//
//   // The chapter's transfer learning: a clone, so training B leaves A intact.
//   absl::StatusOr<nn::Model> clone = nn::CloneModel(*model_a);
//   absl::Status copied = clone->SetWeights(*model_a->GetWeights());
//   nn::Sequential model_b(std::vector<nn::LayerPtr>(clone->layers().begin(),
//                                                    clone->layers().end() - 1));
//   model_b.Add(nn::Dense(1, {.activation = "sigmoid"}));

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "nn/model.h"

namespace gradflow::nn {

// The metadata key listing the layers with weights (see above).
inline constexpr char kLayerWeightsMetadataKey[] = "gradflow.layers";
// Where Fit stands ({"epochs_shuffled": N}: the shuffles done so far), saved
// with the optimizer state so a resumed Fit shuffles as an uninterrupted one.
inline constexpr char kFitStateMetadataKey[] = "gradflow.fit";

struct LoadModelOptions {
  // Compile the model with the file's compile options (if it has any) and
  // restore the optimizer state it holds (Keras's compile=True). Otherwise
  // the caller compiles; the weights are held by the layers until then.
  bool compile = true;
  // With compile: compile for data-parallel training over these ranks
  // (CompileOptions::data_parallel, which files do not hold). Every rank
  // loads the same file, e.g. rank 0's ModelCheckpoint, and Fit resumes
  // from it on all of them (initial_epoch as in one process).
  std::optional<DataParallel> data_parallel;
};

// Rebuilds a model saved by Model::Save, or a Keras .keras / .h5 model
// (recognized by content; nn/keras.h, LoadKerasModel): layers from the configuration,
// weights from the tensors (bit for bit), compiled if the file carries
// compile options. Every layer weight must be in the file with the shape the
// configuration gives it (checked before anything is allocated). Errors name
// the file: a damaged safetensors file (core/checkpoint.h), no or malformed
// configuration, unknown layer types / activations / initializers /
// optimizers, missing or mis-shaped weights, tensors that belong nowhere.
absl::StatusOr<Model> LoadModel(const std::string& path, LoadModelOptions options = {});

// A model of the same architecture (fresh layers made from each layer's
// configuration: same names, settings and trainable flags) with fresh
// variables: nothing is shared with `model`, and the clone is not compiled.
// Copy the weights with clone->SetWeights(*model.GetWeights()) (Keras's
// clone_model + set_weights).
absl::StatusOr<Model> CloneModel(const Model& model);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_SAVING_H_
