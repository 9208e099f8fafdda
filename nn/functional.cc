#include "nn/functional.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/describe.h"
#include "core/status.h"
#include "nn/model.h"
#include "ops/array.h"

namespace gradflow::nn {
namespace {

const Shape& NoShape() {
  static const Shape* none = new Shape();
  return *none;
}

// Builds one call of `layer` in a graph of its own, on placeholders of the
// inputs' types, to learn the output type (Keras builds a layer when its
// input shape is known). The layer keeps what its last real build left.
absl::StatusOr<TensorType> InferCallType(Layer& layer, const std::vector<KerasTensor>& inputs) {
  Graph g;
  std::vector<Output> placeholders;
  for (size_t i = 0; i < inputs.size(); ++i) {
    placeholders.push_back(ops::Placeholder(g, absl::StrCat("input_", i), inputs[i].dtype(), inputs[i].shape()));
  }
  const std::string scope = layer.name().empty() ? KerasSnakeCase(layer.type()) : layer.name();
  Layer::BuildRecord previous = layer.build_record();
  Output out = layer.Apply(g.Scope(scope), placeholders);
  layer.RestoreBuild(std::move(previous));
  if (!g.ok()) return g.status();
  return out.type();
}

std::shared_ptr<LayerCall> Failed(LayerPtr layer, std::vector<KerasTensor> inputs, absl::Status status) {
  return std::make_shared<LayerCall>(LayerCall{std::move(layer), std::move(inputs), "", {}, std::move(status)});
}

}  // namespace

absl::Status KerasTensor::status() const {
  if (call_ == nullptr) return absl::InvalidArgumentError("an empty KerasTensor (made by its default constructor)");
  return call_->status;
}

const Shape& KerasTensor::shape() const { return call_ ? call_->type.shape : NoShape(); }
DType KerasTensor::dtype() const { return call_ ? call_->type.dtype : DType::kF32; }

KerasTensor Input(Shape shape, InputOptions options) {
  std::vector<int64_t> dims = {-1};
  absl::Status status;
  for (int64_t d : shape.dims()) {
    if (d < 1 && status.ok()) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "Input ", QuoteUserText(options.name), ": shape ", shape.ToString(),
          " has a dimension < 1; give the shape of one sample (the batch dimension is not part of it)"));
    }
    dims.push_back(d);
  }
  return KerasTensor(std::make_shared<LayerCall>(
      LayerCall{nullptr, {}, std::move(options.name), TensorType{options.dtype, Shape(dims)}, status}));
}

KerasTensor LayerPtr::operator()(const KerasTensor& x) const { return (*this)(std::vector<KerasTensor>{x}); }

KerasTensor LayerPtr::operator()(const std::vector<KerasTensor>& inputs) const {
  if (get() == nullptr) return KerasTensor(Failed(*this, inputs, absl::InvalidArgumentError("a null layer was called")));
  for (const KerasTensor& input : inputs) {
    if (!input.ok()) return KerasTensor(Failed(*this, inputs, input.status()));
  }
  if (inputs.empty()) {
    return KerasTensor(Failed(*this, inputs, absl::InvalidArgumentError(absl::StrCat(
                                                 "layer '", get()->name(), "' (", get()->type(),
                                                 ") was called on no tensors"))));
  }
  absl::StatusOr<TensorType> type = InferCallType(*get(), inputs);
  if (!type.ok()) return KerasTensor(Failed(*this, inputs, type.status()));
  return KerasTensor(std::make_shared<LayerCall>(LayerCall{*this, inputs, "", *type, absl::OkStatus()}));
}

std::vector<const LayerCall*> CallsInOrder(const std::vector<KerasTensor>& outputs) {
  std::vector<const LayerCall*> order;
  std::set<const LayerCall*> placed;
  // Depth first from each output, iteratively (a deep model must not
  // exhaust the stack); a call is placed after all its inputs.
  for (const KerasTensor& output : outputs) {
    std::vector<std::pair<const LayerCall*, size_t>> stack;  // call, next input to visit
    if (output.call() != nullptr && !placed.count(output.call())) stack.push_back({output.call(), 0});
    while (!stack.empty()) {
      auto& [call, next] = stack.back();
      if (next < call->inputs.size()) {
        const LayerCall* input = call->inputs[next++].call();
        if (input != nullptr && !placed.count(input)) stack.push_back({input, 0});
        continue;
      }
      if (placed.insert(call).second) order.push_back(call);
      stack.pop_back();
    }
  }
  return order;
}

std::vector<KerasTensor> Model::operator()(const std::vector<KerasTensor>& inputs) const {
  absl::StatusOr<LayerGraph> graph = layer_graph();
  auto failed = [&](absl::Status status) {
    const size_t outputs = graph.ok() ? graph->outputs.size() : 1;
    return std::vector<KerasTensor>(outputs, KerasTensor(Failed(nullptr, inputs, std::move(status))));
  };
  if (!graph.ok()) return failed(graph.status());
  const std::string model = absl::StrCat("model ", QuoteUserText(name_));
  if (inputs.size() != graph->input_types.size()) {
    return failed(absl::InvalidArgumentError(absl::StrCat(model, " takes ", graph->input_types.size(),
                                                          " inputs but was called on ", inputs.size())));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].ok()) return failed(inputs[i].status());
    const TensorType& wanted = graph->input_types[i];
    if (inputs[i].dtype() != wanted.dtype || inputs[i].shape() != wanted.shape) {
      return failed(absl::InvalidArgumentError(absl::StrCat(
          model, ": input ", i, " ('", graph->input_names[i], "') is ", wanted.ToString(), " but was called on ",
          TensorType{inputs[i].dtype(), inputs[i].shape()}.ToString())));
    }
  }
  std::vector<KerasTensor> values(graph->calls.size());
  for (size_t i = 0, next_input = 0; i < graph->calls.size(); ++i) {
    const LayerGraph::Call& call = graph->calls[i];
    if (call.layer < 0) {
      values[i] = inputs[next_input++];
      continue;
    }
    std::vector<KerasTensor> args;
    for (int input : call.inputs) args.push_back(values[input]);
    values[i] = layers_[call.layer](args);
  }
  std::vector<KerasTensor> outputs;
  for (int output : graph->outputs) outputs.push_back(values[output]);
  return outputs;
}

KerasTensor Model::operator()(const KerasTensor& x) const {
  std::vector<KerasTensor> outputs = (*this)(std::vector<KerasTensor>{x});
  if (outputs.size() == 1) return outputs[0];
  return KerasTensor(Failed(nullptr, {x}, absl::InvalidArgumentError(absl::StrCat(
                                              "model ", QuoteUserText(name_), " has ", outputs.size(),
                                              " outputs; call it on a list to get them all"))));
}

}  // namespace gradflow::nn
