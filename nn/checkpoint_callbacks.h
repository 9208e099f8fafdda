#ifndef GRADFLOW_NN_CHECKPOINT_CALLBACKS_H_
#define GRADFLOW_NN_CHECKPOINT_CALLBACKS_H_

// Keras's ModelCheckpoint, CSVLogger and TerminateOnNaN callbacks (tf.keras
// 2.x semantics, differences noted below).
//
//   auto checkpoint = nn::ModelCheckpoint::Create("best.safetensors",
//                                                 {.monitor = "val_loss", .save_best_only = true});
//   auto logger = nn::CSVLogger::Create("history.csv");
//   model.Fit(x, y, {.epochs = 50, .validation_split = 0.1,
//                    .callbacks = {*checkpoint, *logger, nn::TerminateOnNaN::Create()}});
//
// Every file is written atomically (a temporary file beside it, fsync,
// rename): a crash or kill mid-write leaves the previous version in place.

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nn/callbacks.h"

namespace gradflow::nn {

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";
  // Save only when the monitored metric improves on the best seen so far
  // (strictly); otherwise save at every epoch end.
  bool save_best_only = false;
  // SaveWeights instead of Save (no configuration, no optimizer state).
  bool save_weights_only = false;
  // With Save: also save the optimizer's state (Keras's default).
  bool include_optimizer = true;
  // "min", "max", or "auto", decided at OnTrainBegin by the rule
  // EarlyStopping's mode uses (nn/metrics.h MonitorDirection: the loss down,
  // a metric the way it improves, anything else an error asking for "min" or
  // "max"; Keras 3's MonitorCallback). Only save_best_only uses it.
  std::string mode = "auto";
  int verbose = 0;  // 1: print a line for each save (and each non-improvement)
};

// Saves the model at the end of epochs. The path may contain Keras-style
// fields: "{epoch}" (1-based, as Keras), "{epoch:02d}", and any metric of the
// epoch's logs, "{val_loss}" or "{val_loss:.4f}". An unknown field or format
// is an error at Create. A monitored metric missing from the logs is an
// error (Keras only warns) when save_best_only needs it. Under data
// parallelism only rank 0 writes (every rank holds the same weights).
class ModelCheckpoint : public Callback {
 public:
  static absl::StatusOr<std::shared_ptr<ModelCheckpoint>> Create(std::string path,
                                                                 ModelCheckpointOptions options = {});

  absl::Status OnTrainBegin(Model& model) override;
  absl::Status OnEpochEnd(Model& model, int epoch, Logs& logs) override;

  // The best monitored value so far (+-inf before the first; +inf before
  // training), and the paths saved, in order.
  double best() const { return best_; }
  const std::vector<std::string>& saved() const { return saved_; }

 private:
  ModelCheckpoint(std::string path, ModelCheckpointOptions options);
  absl::StatusOr<std::string> FormatPath(int epoch, const Logs& logs) const;

  std::string path_;
  ModelCheckpointOptions options_;
  std::optional<bool> maximize_;  // set at the first OnTrainBegin with save_best_only
  double best_ = std::numeric_limits<double>::infinity();
  std::vector<std::string> saved_;
};

struct CSVLoggerOptions {
  char separator = ',';
  // Keep an existing file's rows and add to them (its header is kept too).
  bool append = false;
};

// Writes the history as CSV, one row per epoch: "epoch" (0-based, as Keras)
// then the epoch's metrics in sorted order, e.g.
//   epoch,accuracy,loss,val_accuracy,val_loss
//   0,0.8135,0.5361,0.8434,0.4301
// Values are printed in the shortest form that reads back to the same
// double (Python's repr). The columns are fixed by the first epoch; a metric
// missing later is written "NA" (Keras). The file is rewritten atomically
// after every epoch, so it always holds the complete rows so far. Under
// data parallelism only rank 0 writes.
class CSVLogger : public Callback {
 public:
  static absl::StatusOr<std::shared_ptr<CSVLogger>> Create(std::string path, CSVLoggerOptions options = {});

  absl::Status OnTrainBegin(Model& model) override;
  absl::Status OnEpochEnd(Model& model, int epoch, Logs& logs) override;

 private:
  CSVLogger(std::string path, CSVLoggerOptions options) : path_(std::move(path)), options_(options) {}

  std::string path_;
  CSVLoggerOptions options_;
  std::string contents_;  // what the file holds
  std::vector<std::string> keys_;
};

// Stops training at the first batch whose loss is NaN or infinite. Keras
// sets stop_training and ends fit quietly after printing "Batch N: Invalid
// loss, terminating training"; here Fit returns an Aborted error with that
// information (epoch, batch, loss value), so a caller cannot mistake a
// diverged run for a finished one. The weights are those after the bad step.
// (Fit also stops on a non-finite batch loss by itself; this callback runs
// before that check, so its message is the one returned.)
class TerminateOnNaN : public Callback {
 public:
  static std::shared_ptr<TerminateOnNaN> Create() { return std::shared_ptr<TerminateOnNaN>(new TerminateOnNaN); }

  absl::Status OnEpochBegin(Model& model, int epoch) override;
  absl::Status OnTrainBatchEnd(Model& model, int64_t batch, Logs& logs) override;

 private:
  TerminateOnNaN() = default;
  int epoch_ = 0;
};

// Writes `contents` to `path` atomically and durably, as checkpoints are
// (core/atomic_file.h: symlinks followed, non-regular targets refused, an
// existing file's mode kept, a new one's from the umask). Errors start with
// the quoted path.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_CHECKPOINT_CALLBACKS_H_
