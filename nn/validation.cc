#include "nn/validation.h"

#include <cfloat>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "graph/op_registry.h"
#include "optimizers/optimizers.h"

namespace gradflow::nn {
namespace {

// The name for an error message: at most 40 bytes, control and non-ASCII
// bytes escaped, so a hostile name cannot flood or forge the message.
std::string Quoted(std::string_view name) {
  constexpr size_t kShown = 40;
  std::string s = "'";
  for (size_t i = 0; i < name.size() && i < kShown; ++i) {
    const unsigned char c = name[i];
    if (c >= 0x20 && c < 0x7f) {
      s += static_cast<char>(c);
    } else {
      absl::StrAppend(&s, "\\x", absl::Hex(c, absl::kZeroPad2));
    }
  }
  if (name.size() > kShown) absl::StrAppend(&s, "...' (", name.size(), " bytes)");
  else s += "'";
  return s;
}

// The length of the UTF-8 sequence starting at text[i] and its code point,
// or 0 if the bytes there are not a valid (shortest-form) sequence.
int DecodeUtf8(std::string_view text, size_t i, char32_t* code) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  const int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : (lead >> 3) == 0x1e ? 4 : 0;
  if (length == 0 || i + length > text.size()) return 0;
  char32_t c = length == 1 ? lead : lead & (0x7f >> length);
  for (int k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    c = (c << 6) | (byte(i + k) & 0x3f);
  }
  constexpr char32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (c < kSmallest[length] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *code = c;
  return length;
}

absl::Status CheckName(std::string_view what, std::string_view name, std::string_view forbidden) {
  auto refuse = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("the ", std::string(what), " ", Quoted(name), " ", std::string(why)));
  };
  if (name.empty()) return refuse("is empty");
  if (name.size() > kMaxNameBytes) return refuse(absl::StrCat("is longer than ", kMaxNameBytes, " bytes"));
  for (size_t i = 0; i < name.size();) {
    char32_t c = 0;
    const int length = DecodeUtf8(name, i, &c);
    if (length == 0) return refuse(absl::StrCat("is not valid UTF-8 (at byte ", i, ")"));
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
      return refuse(absl::StrCat("contains a control character (U+", absl::Hex(c, absl::kZeroPad4),
                                 ") at byte ", i, "; names must be printable"));
    }
    if (c < 0x80 && forbidden.find(static_cast<char>(c)) != std::string_view::npos) {
      return refuse(absl::StrCat("contains '", std::string(1, static_cast<char>(c)),
                                 "', which separates the parts of variable names"));
    }
    i += length;
  }
  return absl::OkStatus();
}

bool IsF32Scalar(const Tensor& t) { return t.dtype() == DType::kF32 && t.num_elements() == 1; }

}  // namespace

absl::Status ValidateModelName(std::string_view name) { return CheckName("model name", name, ""); }
absl::Status ValidateLayerName(std::string_view name) { return CheckName("layer name", name, "/:"); }

absl::Status CheckLearningRate(double rate) {
  if (!(rate > 0) || !std::isfinite(rate)) {
    return absl::InvalidArgumentError(absl::StrCat("the learning rate must be finite and > 0, got ", rate));
  }
  const float stored = static_cast<float>(rate);
  if (!(stored >= FLT_MIN) || std::isinf(stored)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the learning rate ", rate, " is outside the f32 range it is stored in (", FLT_MIN, " to ", FLT_MAX,
        "): it would become ", stored, "; use a rate in that range"));
  }
  return absl::OkStatus();
}

absl::Status CheckOptimizerState(std::string_view name, const Tensor& value) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer tensor ", Quoted(name), " ", why));
  };
  if (name == optimizers::kLearningRateName) {
    if (!IsF32Scalar(value)) return bad("must be an f32 scalar");
    absl::Status rate = CheckLearningRate(value.data<float>()[0]);
    return rate.ok() ? rate : bad(std::string(rate.message()));
  }
  if (name == optimizers::kStepName) {
    if (value.dtype() != DType::kI64 || value.num_elements() != 1) return bad("must be an i64 scalar");
    const int64_t step = value.data<int64_t>()[0];
    if (step < 0 || step > kMaxGlobalStep) {
      return bad(absl::StrCat("holds the step count ", step, "; a step count is in [0, ", kMaxGlobalStep, "]"));
    }
    return absl::OkStatus();
  }
  if (value.dtype() == DType::kF32) {
    const float* data = value.data<float>();
    for (int64_t i = 0; i < value.num_elements(); ++i) {
      if (!std::isfinite(data[i])) return bad(absl::StrCat("holds ", data[i], " at element ", i));
    }
  }
  return absl::OkStatus();
}

std::string_view LayerOfTensor(std::string_view tensor, const std::vector<std::string>& layer_names) {
  const size_t slash = tensor.find('/');
  if (slash == std::string_view::npos || tensor.find('/', slash + 1) != std::string_view::npos) return {};
  const std::string_view layer = tensor.substr(0, slash);
  for (const std::string& name : layer_names) {
    if (name == layer) return layer;
  }
  return {};
}

absl::Status CheckVariablesLoadable(const Graph& graph, const std::vector<LayerPtr>& layers) {
  std::vector<std::string> names;
  std::set<const Node*> layer_variables;
  for (const LayerPtr& layer : layers) {
    names.push_back(layer->name());
    for (const Output& v : layer->variables()) layer_variables.insert(v.node);
  }
  for (const Node& node : graph.nodes()) {
    if (node.op->source != SourceKind::kVariable || layer_variables.count(&node)) continue;
    if (std::string_view layer = LayerOfTensor(node.name, names); !layer.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the layer name ", Quoted(layer), " collides with the optimizer variable ", Quoted(node.name),
          ": a saved model would hand it to the layer; rename the layer"));
    }
  }
  return absl::OkStatus();
}

}  // namespace gradflow::nn
