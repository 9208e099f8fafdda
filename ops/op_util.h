#ifndef GRADFLOW_OPS_OP_UTIL_H_
#define GRADFLOW_OPS_OP_UTIL_H_

// Helpers shared by op files: oneDNN memory descriptors over plain row-major
// buffers, and a kernel that executes one oneDNN primitive.

#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/dnnl_context.h"
#include "core/shape.h"
#include "graph/op_registry.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace gradflow::ops {

// Below this many elements the ops' own OpenMP loops run on one thread: a
// parallel region costs more than it saves (one value for every op file and
// the optimizers' update loops).
inline constexpr int64_t kParallelMin = 32768;

// Long sums (reductions, weight penalties) are split into chunks of this many
// elements whose partial sums are added in chunk order: a fixed split, so
// the result does not depend on the thread count.
inline constexpr int64_t kSumChunk = 16384;

// A tensor seen as [rows, depth], depth its last dimension (1 for a
// scalar): the layout of the softmax, loss and metric kernels. Kernels copy
// the two into named variables rather than structured bindings: clang 14
// (Debian 12, used by tools/fuzz.sh) cannot capture bindings in lambdas.
struct RowsAndDepth {
  int64_t rows, depth;
};
inline RowsAndDepth Rows(const Shape& shape) {
  const int64_t depth = shape.rank() == 0 ? 1 : shape[shape.rank() - 1];
  return {depth == 0 ? 0 : shape.NumElements() / depth, depth};
}

// The gradient function of ops whose inputs get no gradient (integer or
// label inputs, fills): one invalid Output per input is implied.
inline std::vector<Output> NoGradient(GradContext&) { return {}; }

// oneDNN's data type of the float dtypes (f32, bf16) that primitives read.
inline dnnl::memory::data_type DnnlType(DType dtype) {
  return dtype == DType::kBF16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

// Plain row-major f32 descriptor of `shape` (a scalar is a 1-element vector).
inline dnnl::memory::desc PlainDesc(const Shape& shape,
                                    dnnl::memory::data_type dt = dnnl::memory::data_type::f32) {
  dnnl::memory::dims dims(shape.dims().begin(), shape.dims().end());
  if (dims.empty()) dims.push_back(1);
  dnnl::memory::dims strides(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * dims[i + 1];
  return dnnl::memory::desc(dims, dt, strides);
}

// The Dense kernel is stored Keras-style as a row-major [in, out] buffer.
// oneDNN's inner product wants weights with dims {out, in}; element (o, i)
// lives at i * out + o, i.e. strides {1, out} (format tag `io`), so the
// variable is used without a reorder. The backward-weights primitive writes
// diff_weights with the same descriptor, so dW lands as [in, out] as well.
inline dnnl::memory::desc DenseKernelDesc(int64_t in, int64_t out,
                                          dnnl::memory::data_type dt = dnnl::memory::data_type::f32) {
  return dnnl::memory::desc({out, in}, dt, dnnl::memory::dims{1, out});
}

// A dnnl::error thrown while creating a kernel (an unsupported shape or
// layout) as a Status naming the node, instead of an exception.
inline absl::Status DnnlError(const Node& node, const dnnl::error& e) {
  return absl::InternalError(
      absl::StrCat("node '", node.name, "' (", node.op_name(), "): oneDNN: ", e.what()));
}

// Runs `make` (which creates oneDNN objects), turning a dnnl::error into DnnlError.
template <typename F>
absl::StatusOr<std::unique_ptr<Kernel>> WithDnnl(const Node& node, F make) {
  try {
    return make();
  } catch (const dnnl::error& e) {
    return DnnlError(node, e);
  }
}

// Attributes with one eltwise post-op (an activation fused into a primitive).
inline dnnl::primitive_attr EltwisePostOp(dnnl::algorithm algorithm, float alpha, float beta) {
  dnnl::post_ops post_ops;
  post_ops.append_eltwise(1.0f, algorithm, alpha, beta);
  dnnl::primitive_attr attr;
  attr.set_post_ops(post_ops);
  return attr;
}

inline dnnl::memory MemoryAt(const dnnl::memory::desc& desc, void* data) {
  return dnnl::memory(desc, CpuEngine(), data);
}

// Runs one oneDNN primitive with arguments bound once at kernel creation.
class PrimitiveKernel : public Kernel {
 public:
  PrimitiveKernel(dnnl::primitive primitive, std::unordered_map<int, dnnl::memory> args)
      : primitive_(std::move(primitive)), args_(std::move(args)) {}
  absl::Status Run(const RunContext&) override {
    primitive_.execute(CpuStream(), args_);
    CpuStream().wait();
    return absl::OkStatus();
  }

 private:
  dnnl::primitive primitive_;
  std::unordered_map<int, dnnl::memory> args_;
};

inline absl::StatusOr<std::unique_ptr<Kernel>> MakeKernel(
    std::function<absl::Status(const RunContext&)> fn) {
  return std::unique_ptr<Kernel>(new LambdaKernel(std::move(fn)));
}

}  // namespace gradflow::ops

#endif  // GRADFLOW_OPS_OP_UTIL_H_
