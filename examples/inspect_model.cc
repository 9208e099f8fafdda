// A command-line look at a saved model: gradflow's own files
// (nn::Model::Save) and Keras's .keras and .h5 files (nn/keras.h),
// told apart by their content:
//
//   inspect_model summary FILE       layers, output shapes, parameter counts,
//                                    compile options, what the file holds
//   inspect_model evaluate FILE      loss and metrics on the 10,000
//                                    Fashion-MNIST test images (the file must
//                                    carry compile options)
//   inspect_model predict FILE [N]   the top 3 classes of the first N test
//                                    images (default 5)
//   inspect_model predict FILE --input=x.npy [--output=y.npy]
//                                    the model's outputs for the samples of
//                                    x.npy (float32 or float64, shape [N,
//                                    input shape]), written to y.npy
//                                    (float32) or printed one row per line
//   inspect_model convert IN OUT     nn::LoadModel(IN), then OUT is written
//                                    by Model::Save (weights, config,
//                                    compile options, optimizer state) in the
//                                    format of its extension: .keras, .h5,
//                                    anything else gradflow's safetensors
//
// Any problem (a missing, damaged or hostile file, a model that does not fit
// Fashion-MNIST or the .npy input) prints one line "inspect_model: error:
// ..." on stderr and exits with status 1; a usage error exits with status 2.
//
//   bazel build -c opt //examples:inspect_model //examples:transfer_learning
//   ./bazel-bin/examples/transfer_learning          # writes my_model_A.safetensors
//   ./bazel-bin/examples/inspect_model summary my_model_A.safetensors

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/checkpoint.h"
#include "core/fashion_mnist.h"
#include "core/npy.h"
#include "core/status.h"
#include "nn/keras.h"
#include "nn/losses.h"
#include "nn/model.h"
#include "nn/saving.h"

using namespace gradflow;

namespace {

constexpr int kDefaultPredictions = 5;
constexpr int kTopClasses = 3;

int Usage() {
  std::fprintf(stderr,
               "usage: inspect_model summary FILE | evaluate FILE | predict FILE [N]\n"
               "       inspect_model predict FILE --input=x.npy [--output=y.npy] | convert IN OUT\n"
               "  FILE, IN: a model nn::LoadModel reads (a file saved by nn::Model::Save)\n"
               "  x.npy: float32 or float64 samples [N, input shape]; y.npy: the float32 outputs\n"
               "  convert: OUT is written by Model::Save\n");
  return 2;
}

int Error(const absl::Status& status) {
  std::string message(status.message());
  std::replace(message.begin(), message.end(), '\n', ' ');
  std::fprintf(stderr, "inspect_model: error: %s\n", message.c_str());
  return 1;
}

std::string DescribeCompile(const nn::CompileOptions& o) {
  return absl::StrCat("loss ", o.loss, ", optimizer ", optimizers::OptimizerName(o.optimizer),
                      o.metrics.empty() ? "" : absl::StrCat(", metrics ", absl::StrJoin(o.metrics, ", ", [](std::string* out, const nn::Metric& m) { out->append(m.name); })),
                      o.learning_rate_schedule
                          ? absl::StrCat(", schedule ", optimizers::ScheduleName(*o.learning_rate_schedule))
                          : "",
                      o.clip ? ", gradient clipping" : "");
}

// The model loaded from `path`, compiled: with the file's options if it
// has them, else (when `need_compile_options` is false) with a placeholder
// loss, only so that shapes are known and Predict runs.
struct Loaded {
  nn::Model model;
  bool compile_options_in_file;
};

absl::StatusOr<Loaded> Load(const std::string& path, bool need_compile_options) {
  GF_ASSIGN_OR_RETURN(nn::Model model, nn::LoadModel(path));
  if (model.compiled()) return Loaded{std::move(model), true};
  if (need_compile_options) {
    return absl::FailedPreconditionError(absl::StrCat(
        "'", path, "' has no compile options (it was saved before Compile); evaluate needs its loss and metrics"));
  }
  GF_RETURN_IF_ERROR(model.Compile({.loss = "mse"}));
  return Loaded{std::move(model), false};
}

// The Fashion-MNIST test images shaped for the model's input, and checks
// that it outputs one score per class.
absl::StatusOr<Tensor> TestImagesFor(nn::Model& model, const Tensor& images) {
  const Shape& input = model.input().shape();
  const int64_t n = images.shape()[0];
  Tensor x;
  if (input == Shape({-1, kFashionMnistImageSize, kFashionMnistImageSize})) {
    x = images;
  } else if (input == Shape({-1, kFashionMnistImageSize * kFashionMnistImageSize})) {
    GF_ASSIGN_OR_RETURN(x, images.Reshaped({n, kFashionMnistImageSize * kFashionMnistImageSize}));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("the model's input is ", input.ToString(),
                                                   "; Fashion-MNIST images need [-1, 28, 28] or [-1, 784]"));
  }
  if (model.output().shape() != Shape({-1, kFashionMnistNumClasses})) {
    return absl::InvalidArgumentError(absl::StrCat("the model outputs ", model.output().shape().ToString(),
                                                   "; a Fashion-MNIST classifier outputs [-1, 10]"));
  }
  return x;
}

// A model and the Fashion-MNIST test set, its images in the input shape the
// model takes: where evaluate and predict both start.
struct ModelAndTestSet {
  Loaded loaded;
  Dataset test;
  Tensor x;
};

absl::StatusOr<ModelAndTestSet> LoadWithTestSet(const std::string& path, bool need_compile_options) {
  GF_ASSIGN_OR_RETURN(Loaded loaded, Load(path, need_compile_options));
  GF_ASSIGN_OR_RETURN(Dataset test, LoadFashionMnist("test"));
  GF_ASSIGN_OR_RETURN(Tensor x, TestImagesFor(loaded.model, test.images));
  return ModelAndTestSet{std::move(loaded), std::move(test), std::move(x)};
}

// What a Keras file held beside the model.
void PrintKerasFile(const std::string& path) {
  nn::KerasLoadReport report;
  if (!nn::LoadKerasModel(path, {}, &report).ok()) return;
  const std::string& version = report.keras_version;
  std::printf("file: %s (%s, written by %s %s)\n", path.c_str(),
              report.format == nn::ModelFormat::kKeras ? "Keras .keras archive" : "Keras legacy .h5",
              version.rfind("3", 0) == 0 ? "Keras" : "tf.keras", version.empty() ? "(version unknown)" : version.c_str());
  std::printf("optimizer state: %s\n", report.optimizer_state_loaded ? "restored" : "none in the file");
  for (const std::string& note : report.notes) std::printf("note: %s\n", note.c_str());
}

int Summary(const std::string& path) {
  absl::StatusOr<Loaded> loaded = Load(path, /*need_compile_options=*/false);
  if (!loaded.ok()) return Error(loaded.status());
  if (absl::StatusOr<nn::ModelFormat> format = nn::DetectModelFormat(path);
      format.ok() && *format != nn::ModelFormat::kGradflow) {
    PrintKerasFile(path);
    std::printf("compile options: %s\n", loaded->compile_options_in_file
                                             ? DescribeCompile(*loaded->model.compile_options()).c_str()
                                             : "none in the file");
    std::printf("%s", loaded->model.Summary().c_str());
    return 0;
  }
  absl::StatusOr<Checkpoint> file = LoadCheckpoint(path);
  if (!file.ok()) return Error(file.status());
  const std::map<std::string, Tensor> weights = *loaded->model.GetWeights();
  int64_t layer_weights = 0, state = 0;
  size_t bytes = 0;
  for (const auto& [name, tensor] : file->tensors) {
    bytes += tensor.num_bytes();
    ++(weights.count(name) ? layer_weights : state);
  }
  std::printf("file: %s\n", path.c_str());
  std::printf("tensors: %zu (%zu bytes of data): %lld layer weights, %lld optimizer state\n",
              file->tensors.size(), bytes, (long long)layer_weights, (long long)state);
  std::printf("compile options: %s\n", loaded->compile_options_in_file
                                           ? DescribeCompile(*loaded->model.compile_options()).c_str()
                                           : "none in the file");
  std::printf("%s", loaded->model.Summary().c_str());
  return 0;
}

int Evaluate(const std::string& path) {
  absl::StatusOr<ModelAndTestSet> loaded = LoadWithTestSet(path, /*need_compile_options=*/true);
  if (!loaded.ok()) return Error(loaded.status());
  nn::Model* model = &loaded->loaded.model;
  const Dataset* test = &loaded->test;
  const Tensor* x = &loaded->x;
  Tensor y = test->labels;
  absl::StatusOr<const nn::LossInfo*> info = nn::FindLoss(model->compile_options()->loss);
  const std::string loss = info.ok() ? (*info)->names[0] : model->compile_options()->loss;
  if (loss == "categorical_crossentropy") {  // one-hot labels
    y = Tensor(DType::kF32, {test->labels.shape()[0], kFashionMnistNumClasses});
    for (int64_t i = 0; i < y.shape()[0]; ++i) {
      y.data<float>()[i * kFashionMnistNumClasses + test->labels.data<int32_t>()[i]] = 1.0f;
    }
  } else if (loss != "sparse_categorical_crossentropy") {
    return Error(absl::InvalidArgumentError(absl::StrCat(
        "the model's loss is ", loss, "; evaluate needs a classifier (sparse_)categorical_crossentropy")));
  }
  absl::StatusOr<std::map<std::string, double>> scores = model->Evaluate(*x, y);
  if (!scores.ok()) return Error(scores.status());
  std::printf("Fashion-MNIST test set (%lld images):", (long long)y.shape()[0]);
  for (const auto& [name, value] : *scores) std::printf(" %s %.4f", name.c_str(), value);
  std::printf("\n");
  return 0;
}

// N of `predict FILE N`: decimal digits only, the whole argument (no sign,
// no space before or after), at least 1. Whether the test set has N images
// is checked once it is loaded.
absl::StatusOr<int64_t> ParseCount(const std::string& count) {
  if (count.empty()) return kDefaultPredictions;
  int64_t n = 0;
  const char* end = count.data() + count.size();
  auto [ptr, error] = std::from_chars(count.data(), end, n);
  if (count[0] == '-' || count[0] == '+' || error != std::errc() || ptr != end || n < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("N must be a positive integer (digits only), got ", QuoteUserText(count)));
  }
  return n;
}

int Predict(const std::string& path, const std::string& count) {
  absl::StatusOr<int64_t> parsed = ParseCount(count);
  if (!parsed.ok()) return Error(parsed.status());
  const int64_t n = *parsed;
  absl::StatusOr<ModelAndTestSet> loaded = LoadWithTestSet(path, /*need_compile_options=*/false);
  if (!loaded.ok()) return Error(loaded.status());
  nn::Model* model = &loaded->loaded.model;
  const Dataset* test = &loaded->test;
  const Tensor* x = &loaded->x;
  if (n > x->shape()[0]) {
    return Error(absl::InvalidArgumentError(absl::StrCat(
        "N is ", n, " but the test set has only ", x->shape()[0], " images; pass N <= ", x->shape()[0])));
  }
  absl::StatusOr<Tensor> first_n = x->Slice(0, n);
  if (!first_n.ok()) return Error(first_n.status());
  absl::StatusOr<Tensor> scores = model->Predict(*first_n);
  if (!scores.ok()) return Error(scores.status());
  for (int64_t i = 0; i < n; ++i) {
    const float* p = scores->data<float>() + i * kFashionMnistNumClasses;
    std::vector<int> order(kFashionMnistNumClasses);
    for (int c = 0; c < kFashionMnistNumClasses; ++c) order[c] = c;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    std::printf("image %lld (label: %s):", (long long)i, kFashionMnistClassNames[test->labels.data<int32_t>()[i]]);
    for (int k = 0; k < kTopClasses; ++k) {
      std::printf("%s %s %.4f", k ? "," : "", kFashionMnistClassNames[order[k]], p[order[k]]);
    }
    std::printf("\n");
  }
  return 0;
}

// The samples of `path` for the model: float32 (float64 and uint8 files are
// converted by ReadNpy), shaped [N, the model's input shape], N >= 1.
absl::StatusOr<Tensor> SamplesFor(const nn::Model& model, const std::string& path) {
  GF_ASSIGN_OR_RETURN(Tensor x, ReadNpy(path));
  const Shape& input = model.input().shape();
  const std::string wanted = absl::StrCat("[N, ", absl::StrJoin(input.dims().begin() + 1, input.dims().end(), ", "),
                                          "] with N >= 1 (the model's input is ", input.ToString(), ")");
  if (x.dtype() != DType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' holds ", DTypeName(x.dtype()).data(),
                                                   " values; the model's inputs are float32 (save them with "
                                                   "np.save(path, x.astype(np.float32)))"));
  }
  if (x.shape().rank() == 0 || x.shape()[0] < 1 || !x.shape().SameUpToBatch(input)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' has shape ", x.shape().ToString(), "; the model needs ", wanted));
  }
  return x;
}

// One line per sample: its outputs, space-separated, as %.9g (float32
// printed so that it reads back exactly).
void PrintRows(const Tensor& y) {
  const int64_t rows = y.shape()[0], columns = rows ? y.num_elements() / rows : 0;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < columns; ++j) std::printf("%s%.9g", j ? " " : "", y.data<float>()[i * columns + j]);
    std::printf("\n");
  }
}

int PredictNpy(const std::string& path, const std::string& input, const std::string& output) {
  absl::StatusOr<Loaded> loaded = Load(path, /*need_compile_options=*/false);
  if (!loaded.ok()) return Error(loaded.status());
  absl::StatusOr<Tensor> x = SamplesFor(loaded->model, input);
  if (!x.ok()) return Error(x.status());
  absl::StatusOr<Tensor> y = loaded->model.Predict(*x);
  if (!y.ok()) return Error(y.status());
  if (output.empty()) {
    PrintRows(*y);
    return 0;
  }
  absl::Status written = WriteNpy(output, *y);
  if (!written.ok()) return Error(written);
  std::printf("wrote %s: float32 %s\n", output.c_str(), y->shape().ToString().c_str());
  return 0;
}

// Model::Save needs a compiled model (it saves the compile options), so
// a file without compile options is refused rather than given invented ones.
int Convert(const std::string& in, const std::string& out) {
  absl::StatusOr<nn::Model> model = nn::LoadModel(in);
  if (!model.ok()) return Error(model.status());
  if (!model->compiled()) {
    return Error(absl::FailedPreconditionError(absl::StrCat(
        "'", in, "' has no compile options; convert writes OUT with Model::Save, which needs a compiled ",
        "model, and does not invent compile options (compile and save it in code instead)")));
  }
  absl::Status saved = model->Save(out);
  if (!saved.ok()) return Error(absl::Status(saved.code(), absl::StrCat("cannot save '", out, "': ", saved.message())));
  std::printf("wrote %s from %s\n", out.c_str(), in.c_str());
  return 0;
}

// predict's arguments after FILE: nothing, N, or --input=x.npy with an
// optional --output=y.npy (in any order). False for anything else.
struct PredictArgs {
  std::string count, input, output;
};

bool ParsePredictArgs(int argc, char** argv, PredictArgs* args) {
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string* slot = arg.rfind("--input=", 0) == 0    ? &args->input
                        : arg.rfind("--output=", 0) == 0 ? &args->output
                        : arg.rfind("--", 0) == 0         ? nullptr
                                                          : &args->count;
    if (slot == &args->count) {
      if (i != 3 || argc != 4) return false;  // N alone, as before
      *slot = arg;
      continue;
    }
    if (slot == nullptr || !slot->empty()) return false;
    *slot = arg.substr(arg.find('=') + 1);
    if (slot->empty()) return false;
  }
  const bool npy = !args->input.empty();
  return npy ? args->count.empty() : args->output.empty();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  const std::string command = argv[1], path = argv[2];
  if (command == "summary" && argc == 3) return Summary(path);
  if (command == "evaluate" && argc == 3) return Evaluate(path);
  if (command == "convert" && argc == 4) return Convert(path, argv[3]);
  PredictArgs args;
  if (command != "predict" || argc > 5 || !ParsePredictArgs(argc, argv, &args)) return Usage();
  if (!args.input.empty()) return PredictNpy(path, args.input, args.output);
  return Predict(path, args.count);
}
