#ifndef GRADFLOW_NN_KERAS_H_
#define GRADFLOW_NN_KERAS_H_

// Keras model files in and out (features K1-K3): the legacy HDF5 `.h5`
// models of tf.keras 2.x and Keras 3, and Keras 3's `.keras` zip archives.
//
//   // The chapter's model_A = keras.models.load_model("my_model_A.h5"):
//   nn::KerasLoadReport report;
//   absl::StatusOr<nn::Model> model_a = nn::LoadKerasModel("my_model_A.h5", {}, &report);
//   // nn::LoadModel reads these files too, telling the formats apart by content.
//
//   model.Save("my_model.keras");  // Keras 3's layout; ".h5" the legacy one
//
// What is read: the model config (Sequential, or Functional; an InputLayer becomes
// the first layer's input shape), every layer weight, and, when the file is
// compiled, the loss, metrics and optimizer (Keras 3 and tf.keras 2.x keys,
// `lr` and `decay` included) with the optimizer's state, so Fit continues
// where Keras stopped. Every dataset's type and shape is checked against
// the configuration before it is read. A Keras feature gradflow does not
// have is an error naming the layer, its class and its position; one that
// changes nothing numerically (BatchNormalization's `fused`) is a note in
// the report. libhdf5 parses the HDF5 structure itself: it is not hardened
// against files crafted to attack it, so load HDF5 files from sources you trust.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nn/model.h"
#include "nn/saving.h"

namespace gradflow::nn {

struct KerasLoadReport {
  ModelFormat format = ModelFormat::kKeras;
  std::string keras_version;       // as the file gives it ("2.12.0", "3.10.0")
  std::vector<std::string> notes;  // Keras settings read but without effect in gradflow
  bool optimizer_state_loaded = false;
};

// Loads a Keras `.keras` or `.h5` model (recognized by content). Errors name
// the file and the place in it.
absl::StatusOr<Model> LoadKerasModel(const std::string& path, LoadModelOptions options = {},
                                          KerasLoadReport* report = nullptr);

// Writes `model` (compiled) in Keras 3's `.keras` layout or the legacy `.h5`
// one (Model::Save calls it for those formats). Layers Keras has no
// class for (RReLU, MCDropout) and settings Keras 3 cannot express are
// errors, so Keras never gets a file it would misread. Atomic, as Save.
absl::Status SaveKerasModel(Model& model, const std::string& path, ModelFormat format,
                            const SaveOptions& options);

// The format of the file's bytes: a zip archive is `.keras`, an HDF5 file
// `.h5`, anything else gradflow's safetensors.
absl::StatusOr<ModelFormat> DetectModelFormat(const std::string& path);
// The format Save picks from a path's extension: ".keras", ".h5" / ".hdf5"
// / ".hdf", else gradflow's.
ModelFormat ModelFormatForPath(const std::string& path);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_KERAS_H_
