#include "nn/diagnostics.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"
#include "graph/autodiff.h"

namespace gradflow::nn {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double L2Norm(const Tensor& t) {
  double sum = 0;
  for (float v : t.flat<float>()) sum += double(v) * v;
  return std::sqrt(sum);
}

std::string Cell(const std::optional<double>& v) {
  return v ? absl::StrFormat("%.3e", *v) : std::string("-");
}

}  // namespace

absl::Status GradientDiagnostics::Build() {
  plan_.reset();
  fetches_.clear();
  Graph* graph = model_.graph();
  if (graph == nullptr || model_.session() == nullptr || !model_.loss().valid()) {
    return absl::FailedPreconditionError("GradientDiagnostics: compile the model first");
  }
  std::vector<Output> xs;
  std::vector<std::pair<int, int>> grad_of;  // (layer, 0 = output, 1 = kernel)
  for (int i = 0; i < static_cast<int>(model_.layers().size()); ++i) {
    // The model's own view: a layer shared with another model points into
    // the graph compiled last.
    if (!model_.layer_output(i).valid()) continue;
    xs.push_back(model_.layer_output(i));
    grad_of.push_back({i, 0});
    for (const Output& v : model_.layer_variables(i)) {
      if (EndsWith(v.node->name, "/kernel")) {
        xs.push_back(v);
        grad_of.push_back({i, 1});
        break;
      }
    }
  }
  if (xs.empty()) return absl::FailedPreconditionError("GradientDiagnostics: the model has no layers");
  GF_ASSIGN_OR_RETURN(std::vector<Output> grads, AddGradients(*graph, model_.loss(), xs));
  std::vector<ValueRef> fetch_refs = {model_.loss()};
  fetches_.assign(model_.layers().size(), {});
  for (int i = 0; i < static_cast<int>(model_.layers().size()); ++i) {
    if (!model_.layer_output(i).valid()) continue;
    fetches_[i].output = static_cast<int>(fetch_refs.size());
    fetch_refs.push_back(model_.layer_output(i));
  }
  for (size_t k = 0; k < xs.size(); ++k) {
    if (IsZeroGradientOf(grads[k], xs[k])) continue;
    auto [layer, kind] = grad_of[k];
    (kind == 0 ? fetches_[layer].output_gradient : fetches_[layer].kernel_gradient) =
        static_cast<int>(fetch_refs.size());
    fetch_refs.push_back(grads[k]);
  }
  GF_ASSIGN_OR_RETURN(Plan plan, model_.session()->Compile(fetch_refs, {}, Phase::kTrain));
  plan_.emplace(std::move(plan));
  built_for_ = graph;
  probe_node_ = grads[0].node;
  probe_node_name_ = grads[0].node->name;
  return absl::OkStatus();
}

bool GradientDiagnostics::IsCurrent() const {
  const Graph* graph = model_.graph();
  return plan_ && graph == built_for_ && graph->FindNode(probe_node_name_) == probe_node_;
}

absl::StatusOr<BatchDiagnostics> GradientDiagnostics::Run(const Tensor& x, const Tensor& y) {
  if (!IsCurrent()) GF_RETURN_IF_ERROR(Build());
  GF_RETURN_IF_ERROR(plan_->Run({{model_.input(), x}, {model_.target(), y}}, &fetched_));
  BatchDiagnostics result;
  result.loss = fetched_[0].data<float>()[0];
  for (size_t i = 0; i < model_.layers().size(); ++i) {
    const LayerPtr& layer = model_.layers()[i];
    const LayerFetches& f = fetches_[i];
    LayerStatistics stats{.name = layer->name(), .type = layer->type()};
    if (f.output >= 0) {
      const Tensor& out = fetched_[f.output];
      double sum = 0, sum_sq = 0;
      for (float v : out.flat<float>()) sum += v;
      const double n = std::max<double>(1, out.num_elements());
      stats.activation_mean = sum / n;
      for (float v : out.flat<float>()) sum_sq += (v - stats.activation_mean) * (v - stats.activation_mean);
      stats.activation_std = std::sqrt(sum_sq / n);
    }
    if (f.output_gradient >= 0) stats.output_gradient_norm = L2Norm(fetched_[f.output_gradient]);
    if (f.kernel_gradient >= 0) stats.kernel_gradient_norm = L2Norm(fetched_[f.kernel_gradient]);
    result.layers.push_back(std::move(stats));
  }
  return result;
}

std::string BatchDiagnostics::ToString() const {
  std::string s = absl::StrFormat(" %-36s %10s %10s %11s %11s\n", "Layer (type)", "act mean",
                                  "act std", "|dL/dout|", "|dL/dW|");
  for (const LayerStatistics& l : layers) {
    absl::StrAppend(&s, absl::StrFormat(" %-36s %10.4f %10.4f %11s %11s\n",
                                        absl::StrCat(l.name, " (", l.type, ")"), l.activation_mean,
                                        l.activation_std, Cell(l.output_gradient_norm),
                                        Cell(l.kernel_gradient_norm)));
  }
  absl::StrAppend(&s, absl::StrFormat(" loss %.4f\n", loss));
  return s;
}

}  // namespace gradflow::nn
