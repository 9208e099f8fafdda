#include "nn/checkpoint_callbacks.h"

#include <limits.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/atomic_file.h"
#include "core/status.h"
#include "nn/model.h"
#include "nn/monitor.h"

namespace gradflow::nn {
namespace {

// Python's repr of a float: the shortest text that reads back to the same double.
std::string ShortestRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return ec == std::errc() ? std::string(buffer, end) : absl::StrCat(value);
}

// One "{name}" or "{name:spec}" field of a ModelCheckpoint path.
struct PathField {
  size_t begin, end;  // of the braces in the path
  std::string name, spec;
};

// The fields of `path`, or an error for unbalanced braces or a format that is
// not a simple printf-style width/precision.
absl::StatusOr<std::vector<PathField>> ParsePathFields(const std::string& path) {
  static const std::regex kSpec("0?[0-9]{0,3}(\\.[0-9]{1,2})?[dfeg]?");
  std::vector<PathField> fields;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '}') {
      return absl::InvalidArgumentError(absl::StrCat("ModelCheckpoint: unmatched '}' in path ", QuoteUserText(path)));
    }
    if (path[i] != '{') continue;
    const size_t close = path.find('}', i);
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("ModelCheckpoint: unmatched '{' in path ", QuoteUserText(path)));
    }
    std::string inside = path.substr(i + 1, close - i - 1);
    const size_t colon = inside.find(':');
    PathField field{i, close + 1, inside.substr(0, colon),
                    colon == std::string::npos ? "" : inside.substr(colon + 1)};
    if (field.name.empty() || field.name.find('{') != std::string::npos ||
        !std::regex_match(field.spec, kSpec)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ModelCheckpoint: path field '{", inside, "}' is not {name} or {name:spec} with a spec such as "
          "02d or .4f"));
    }
    const char type = field.spec.empty() ? 0 : field.spec.back();
    if (field.name == "epoch" ? (type != 0 && type != 'd' && !std::isdigit(type))
                              : type == 'd') {
      return absl::InvalidArgumentError(absl::StrCat(
          "ModelCheckpoint: path field '{", inside, "}': {epoch} takes an integer format (02d), metrics a "
          "float format (.4f)"));
    }
    fields.push_back(std::move(field));
    i = close;
  }
  return fields;
}

// `spec` applied to `value` with printf, in a string as long as it needs
// (a width such as 0999 makes a 999-character field).
template <typename T>
std::string FormatField(const std::string& spec, T value) {
  const std::string format = "%" + spec;
  const int length = std::snprintf(nullptr, 0, format.c_str(), value);
  if (length <= 0) return "";
  std::string out(static_cast<size_t>(length) + 1, '\0');
  std::snprintf(out.data(), out.size(), format.c_str(), value);
  out.pop_back();  // snprintf's terminating NUL
  return out;
}

// `path` with each field replaced: {epoch} by the 1-based epoch, a metric by
// `metric(name)` (shortest repr, or its format).
template <typename MetricFn>
std::string FillPathFields(const std::string& path, const std::vector<PathField>& fields, int epoch,
                           MetricFn metric) {
  std::string out;
  size_t at = 0;
  for (const PathField& field : fields) {
    out += path.substr(at, field.begin - at);
    at = field.end;
    if (field.name == "epoch") {
      out += FormatField(field.spec.empty() || field.spec.back() != 'd' ? field.spec + "d" : field.spec, epoch + 1);
    } else if (field.spec.empty()) {
      out += ShortestRepr(metric(field.name));
    } else {
      const bool ends_in_digit = std::isdigit(static_cast<unsigned char>(field.spec.back()));
      out += FormatField(ends_in_digit ? field.spec + "f" : field.spec, metric(field.name));
    }
  }
  return out + path.substr(at);
}

// A formatted checkpoint path must name a file the OS can create: a final
// component (not a directory) of at most NAME_MAX bytes, at most PATH_MAX in
// all. (A longer name was cut by a fixed buffer before, so every epoch wrote
// over one file.)
absl::Status CheckIsFileName(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..") {
    return absl::InvalidArgumentError(absl::StrCat("ModelCheckpoint: the path ", QuoteUserText(path),
                                                   " ends in a directory, not a file name"));
  }
  if (path.size() >= PATH_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("ModelCheckpoint: the path ", QuoteUserText(path), " is ",
                                                   path.size(), " bytes once formatted, above the ", PATH_MAX - 1,
                                                   " a path may have; use a shorter pattern"));
  }
  for (const auto& component : p) {
    if (component.string().size() > NAME_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ModelCheckpoint: the path ", QuoteUserText(path), " has a ", component.string().size(),
          "-byte component once formatted, above the ", NAME_MAX, " a file name may have; use a smaller width"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const FilePiece piece{contents.data(), contents.size()};
  absl::Status status = gradflow::WriteFileAtomically(path, {&piece, 1});
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("'", path, "': ", status.message()));
}

// ------------------------------------------------------------ ModelCheckpoint

absl::StatusOr<std::shared_ptr<ModelCheckpoint>> ModelCheckpoint::Create(std::string path,
                                                                         ModelCheckpointOptions options) {
  if (path.empty()) return absl::InvalidArgumentError("ModelCheckpoint: the path is empty");
  GF_RETURN_IF_ERROR(CheckMonitorMode("ModelCheckpoint", options.mode));
  GF_ASSIGN_OR_RETURN(std::vector<PathField> fields, ParsePathFields(path));
  // The widths are fixed by the pattern: check the shortest result now.
  GF_RETURN_IF_ERROR(CheckIsFileName(FillPathFields(path, fields, 0, [](const std::string&) { return 0.0; })));
  return std::shared_ptr<ModelCheckpoint>(new ModelCheckpoint(std::move(path), std::move(options)));
}

ModelCheckpoint::ModelCheckpoint(std::string path, ModelCheckpointOptions options)
    : path_(std::move(path)), options_(std::move(options)) {}

absl::Status ModelCheckpoint::OnTrainBegin(Model& model) {
  // Only save_best_only compares values: a checkpoint of every epoch needs no
  // direction, so an unknown monitor is no error for it.
  if (!options_.save_best_only) return absl::OkStatus();
  // Mode "auto" asks the compiled model's metrics, known from here on.
  GF_ASSIGN_OR_RETURN(const bool maximize, MonitorMaximizes("ModelCheckpoint", options_.mode, options_.monitor,
                                                            model.compile_options()));
  // Keras keeps `best` across fit calls on the same callback object; so do
  // we, unless this model's monitor goes the other way.
  if (maximize_ != maximize) {
    best_ = maximize ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  maximize_ = maximize;
  return absl::OkStatus();
}

absl::StatusOr<std::string> ModelCheckpoint::FormatPath(int epoch, const Logs& logs) const {
  GF_ASSIGN_OR_RETURN(std::vector<PathField> fields, ParsePathFields(path_));
  for (const PathField& field : fields) {
    if (field.name != "epoch" && logs.find(field.name) == logs.end()) {
      return absl::InvalidArgumentError(absl::StrCat("ModelCheckpoint: the path field '{", field.name,
                                                     "}' is not in the logs (available: epoch, ",
                                                     LogNames(logs), ")"));
    }
  }
  const std::string path =
      FillPathFields(path_, fields, epoch, [&](const std::string& name) { return logs.at(name); });
  GF_RETURN_IF_ERROR(CheckIsFileName(path));
  return path;
}

absl::Status ModelCheckpoint::OnEpochEnd(Model& model, int epoch, Logs& logs) {
  GF_ASSIGN_OR_RETURN(std::string path, FormatPath(epoch, logs));
  if (options_.save_best_only) {
    // A direct caller may skip OnTrainBegin; Fit never does.
    if (!maximize_) GF_RETURN_IF_ERROR(OnTrainBegin(model));
    GF_ASSIGN_OR_RETURN(const double current, MonitoredValue("ModelCheckpoint", options_.monitor, logs));
    const bool improved = *maximize_ ? current > best_ : current < best_;
    if (!improved) {
      if (options_.verbose > 0 && model.rank() == 0) {
        std::printf("\nEpoch %d: %s did not improve from %.5f\n", epoch + 1, options_.monitor.c_str(), best_);
      }
      return absl::OkStatus();
    }
    if (options_.verbose > 0 && model.rank() == 0) {
      std::printf("\nEpoch %d: %s improved from %.5f to %.5f, saving model to %s\n", epoch + 1,
                  options_.monitor.c_str(), best_, current, path.c_str());
    }
    best_ = current;
  } else if (options_.verbose > 0 && model.rank() == 0) {
    std::printf("\nEpoch %d: saving model to %s\n", epoch + 1, path.c_str());
  }
  if (model.rank() != 0) return absl::OkStatus();  // data parallel: rank 0 writes, for every rank
  GF_RETURN_IF_ERROR(options_.save_weights_only
                         ? model.SaveWeights(path)
                         : model.Save(path, {.include_optimizer = options_.include_optimizer}));
  saved_.push_back(path);
  return absl::OkStatus();
}

// ------------------------------------------------------------ CSVLogger

absl::StatusOr<std::shared_ptr<CSVLogger>> CSVLogger::Create(std::string path, CSVLoggerOptions options) {
  if (path.empty()) return absl::InvalidArgumentError("CSVLogger: the path is empty");
  if (options.separator == '\n' || options.separator == '\r' || options.separator == '"' ||
      options.separator == '\0') {
    return absl::InvalidArgumentError("CSVLogger: the separator cannot be a newline, a quote or NUL");
  }
  return std::shared_ptr<CSVLogger>(new CSVLogger(std::move(path), options));
}

absl::Status CSVLogger::OnTrainBegin(Model&) {
  contents_.clear();
  keys_.clear();
  if (options_.append) {
    std::ifstream in(path_, std::ios::binary);
    if (in) {
      std::ostringstream existing;
      existing << in.rdbuf();
      contents_ = existing.str();
      if (!contents_.empty() && contents_.back() != '\n') contents_ += '\n';
    }
  }
  return absl::OkStatus();
}

absl::Status CSVLogger::OnEpochEnd(Model& model, int epoch, Logs& logs) {
  if (model.rank() != 0) return absl::OkStatus();  // data parallel: one file, from rank 0
  const std::string separator(1, options_.separator);
  if (keys_.empty()) {
    for (const auto& [name, value] : logs) keys_.push_back(name);  // std::map: sorted, as Keras
    if (contents_.empty()) {  // a new file (or an empty one being appended to) gets a header
      contents_ = "epoch";
      for (const std::string& key : keys_) absl::StrAppend(&contents_, separator, key);
      contents_ += '\n';
    }
  }
  std::string row = std::to_string(epoch);
  for (const std::string& key : keys_) {
    auto it = logs.find(key);
    absl::StrAppend(&row, separator, it == logs.end() ? "NA" : ShortestRepr(it->second));
  }
  contents_ += row + '\n';
  return WriteFileAtomically(path_, contents_);
}

// ------------------------------------------------------------ TerminateOnNaN

absl::Status TerminateOnNaN::OnEpochBegin(Model&, int epoch) {
  epoch_ = epoch;
  return absl::OkStatus();
}

absl::Status TerminateOnNaN::OnTrainBatchEnd(Model& model, int64_t batch, Logs& logs) {
  auto it = logs.find("loss");
  if (it == logs.end() || std::isfinite(it->second)) return absl::OkStatus();
  model.stop_training = true;
  return absl::AbortedError(absl::StrCat("TerminateOnNaN: epoch ", epoch_ + 1, ", batch ", batch + 1,
                                         ": invalid loss ", ShortestRepr(it->second),
                                         ", training terminated"));
}

}  // namespace gradflow::nn
