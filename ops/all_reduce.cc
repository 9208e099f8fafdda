// Data-parallel gradient averaging: a bucket of gradients packed into one
// flat buffer, summed over every rank of the session's Communicator
// (SessionOptions::communicator) without blocking, and unpacked as means
// where the updates read them. optimizers/data_parallel.h forms the buckets.
#include "ops/all_reduce.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/communicator.h"
#include "core/status.h"
#include "ops/op_util.h"

namespace gradflow::ops {
namespace {

// attr "shapes" of AllReduceWait: each output's rank, then its dims.
std::vector<int64_t> EncodeShapes(const std::vector<Output>& tensors) {
  std::vector<int64_t> encoded;
  for (const Output& t : tensors) {
    encoded.push_back(t.shape().rank());
    for (int64_t d : t.shape().dims()) encoded.push_back(d);
  }
  return encoded;
}

absl::StatusOr<std::vector<Shape>> DecodeShapes(const std::vector<int64_t>& encoded) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < encoded.size();) {
    const int64_t rank = encoded[i++];
    if (rank < 0 || rank > static_cast<int64_t>(encoded.size() - i)) {
      return absl::InvalidArgumentError("attr 'shapes' is not a list of (rank, dims...) groups");
    }
    std::vector<int64_t> dims(encoded.begin() + i, encoded.begin() + i + rank);
    for (int64_t d : dims) {
      if (d < 0) return absl::InvalidArgumentError("attr 'shapes' has a negative dim");
    }
    shapes.emplace_back(std::move(dims));
    i += rank;
  }
  return shapes;
}

absl::StatusOr<Communicator*> SessionCommunicator(const KernelContext& k) {
  if (k.communicator != nullptr) return k.communicator;
  return absl::FailedPreconditionError(absl::StrCat(
      "node ", QuoteUserText(k.node.name), " (", k.node.op->name,
      ") all-reduces gradients over the ranks of a data-parallel job, but its session has no "
      "communicator: set SessionOptions::communicator (CompileOptions::data_parallel for "
      "models), e.g. to an MpiCommunicator or, for one process, a SoloCommunicator"));
}

}  // namespace

// Packs its inputs into output 0 (f32[total], in input order) and starts
// their sum over the ranks; output 1 is the collective's handle. Scheduled as
// soon as its inputs exist (OpDef::starts_early), so the reduction runs
// while the gradients of earlier layers are computed.
GF_REGISTER_OP(OpDef{
    .name = "AllReduceStart",
    .num_inputs = -1,
    .infer = [](InferContext& ctx) {
      if (ctx.num_inputs() == 0) return ctx.Error("needs at least one gradient");
      int64_t total = 0;
      for (int i = 0; i < ctx.num_inputs(); ++i) {
        GF_RETURN_IF_ERROR(ctx.ExpectDType(i, DType::kF32));
        const int64_t n = ctx.shape(i).NumElements();
        if (n < 0) return ctx.Error(absl::StrCat(ctx.Describe(i), " must have a known shape"));
        total += n;
      }
      ctx.AddOutput(DType::kF32, Shape{total});
      ctx.AddOutput(DType::kI64, Shape{});
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      GF_ASSIGN_OR_RETURN(Communicator * comm, SessionCommunicator(k));
      std::vector<std::pair<const float*, int64_t>> parts;
      for (size_t i = 0; i < k.inputs.size(); ++i) {
        parts.push_back({k.in<float>(i), k.in_shape(i).NumElements()});
      }
      float* bucket = k.out<float>(0);
      int64_t* handle = k.out<int64_t>(1);
      const int64_t total = k.out_shape(0).NumElements();
      return MakeKernel([=](const RunContext&) -> absl::Status {
        float* dst = bucket;
        for (const auto& [src, n] : parts) {
          std::memcpy(dst, src, n * sizeof(float));
          dst += n;
        }
        GF_ASSIGN_OR_RETURN(*handle, comm->StartAllReduceSum(bucket, total));
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "a collective between the gradients and the updates",
    .starts_early = true,
});

// Waits for the sum AllReduceStart began and unpacks it divided by the
// number of ranks: output i is the mean of gradient i, of shape i.
GF_REGISTER_OP(OpDef{
    .name = "AllReduceWait",
    .num_inputs = 2,
    .attrs = {RequiredAttr("shapes", AttrType::kInts)},
    .infer = [](InferContext& ctx) {
      GF_RETURN_IF_ERROR(ctx.ExpectDType(0, DType::kF32));
      GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kI64));
      auto shapes = DecodeShapes(ctx.node().attr<std::vector<int64_t>>("shapes"));
      if (!shapes.ok()) return ctx.Error(std::string(shapes.status().message()));
      int64_t total = 0;
      for (const Shape& s : *shapes) total += s.NumElements();
      if (ctx.shape(0).rank() != 1 || ctx.shape(0)[0] != total) {
        return ctx.Error(absl::StrCat(ctx.Describe(0), " must be a bucket of ", total,
                                      " floats, the sum of the output sizes"));
      }
      for (const Shape& s : *shapes) ctx.AddOutput(DType::kF32, s);
      return absl::OkStatus();
    },
    .kernel = [](const KernelContext& k) -> absl::StatusOr<std::unique_ptr<Kernel>> {
      GF_ASSIGN_OR_RETURN(Communicator * comm, SessionCommunicator(k));
      std::vector<std::pair<float*, int64_t>> parts;
      for (size_t i = 0; i < k.outputs.size(); ++i) {
        parts.push_back({k.out<float>(i), k.out_shape(i).NumElements()});
      }
      const float* bucket = k.in<float>(0);
      const int64_t* handle = k.in<int64_t>(1);
      const float scale = 1.0f / static_cast<float>(comm->size());
      return MakeKernel([=](const RunContext&) -> absl::Status {
        GF_RETURN_IF_ERROR(comm->Wait(*handle));
        const float* src = bucket;
        for (const auto& [dst, n] : parts) {
          for (int64_t j = 0; j < n; ++j) dst[j] = src[j] * scale;
          src += n;
        }
        return absl::OkStatus();
      });
    },
    .no_gradient_reason = "a collective between the gradients and the updates",
});

std::vector<Output> AllReduceMean(const Scope& scope, const std::vector<Output>& tensors) {
  Graph& g = scope.graph();
  std::vector<Output> started = g.AddNode(scope, "AllReduceStart", tensors, {}, "AllReduceStart");
  if (started.size() != 2) return std::vector<Output>(tensors.size());
  return g.AddNode(scope, "AllReduceWait", started, {{"shapes", EncodeShapes(tensors)}},
                   "AllReduceWait");
}

}  // namespace gradflow::ops
