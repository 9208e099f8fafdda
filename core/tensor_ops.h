#ifndef GRADFLOW_CORE_TENSOR_OPS_H_
#define GRADFLOW_CORE_TENSOR_OPS_H_

// NumPy-like helpers on Tensor values, for preparing data in C++ (splitting,
// masking, statistics, stacking) without a graph. Every function returns an
// error naming the function, the shapes or values and the fix: never an
// abort, never a read out of bounds, and output sizes are checked for int64
// overflow (Shape::CheckedNumElements) before anything is allocated.
//
// Conventions, as NumPy's where not said otherwise:
// - `axis` may be negative (counts from the end); outside [-rank, rank) is
//   an error.
// - Row helpers work on dim 0 ("rows"); the tensor needs rank >= 1.
// - Masks are i32 tensors of 0 and 1 (gradflow has no bool dtype); a mask
//   holding another value is refused, because in NumPy an integer array is
//   an index array, not a mask.
// - Statistics accumulate in double and return f32 (NumPy returns float64).
//
//   Tensor x_train = *SliceRows(x, 0, -5000);           // x[:-5000]
//   Tensor x_valid = *SliceRows(x, -5000, x.shape()[0]); // x[-5000:]
//   Tensor big = *BooleanMask(x, *Compare(*Sum(x, 1), ">", 10.0));  // x[x.sum(1) > 10]
//   Tensor z = *Standardize(x_train);                    // (x - x.mean(0)) / x.std(0)

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace gradflow {

// Keras's backend.epsilon() (keras/src/backend/config.py, _EPSILON): the
// floor Keras's Normalization layer puts under a standard deviation, and
// Standardize with it.
inline constexpr double kKerasEpsilon = 1e-7;

// t[begin:end] along dim 0, copied. A negative index counts from the end
// (Python). Unlike NumPy, indices outside [-rows, rows] and begin > end are
// refused rather than clamped to an empty or shorter result: a silently
// short validation split is a bug.
absl::StatusOr<Tensor> SliceRows(const Tensor& t, int64_t begin, int64_t end);

// t[indices] (np.take(t, indices, axis=0)): rows in the order given,
// repeats allowed. `indices` is a rank-1 i32 or i64 tensor; negative and
// out-of-range indices are refused (NumPy wraps negative ones).
absl::StatusOr<Tensor> GatherRows(const Tensor& t, const Tensor& indices);

// t[mask] for a rank-1 mask over the rows (length shape[0], values 0 or 1):
// the rows whose mask is 1, in order.
absl::StatusOr<Tensor> BooleanMask(const Tensor& t, const Tensor& mask);

// An i32 mask of t's shape: 1 where `t op value` holds. `op` is one of
// "<", "<=", ">", ">=", "==", "!=". A NaN compares false (true for "!="),
// as in NumPy. Integer elements are compared as double (exact below 2^53).
absl::StatusOr<Tensor> Compare(const Tensor& t, const std::string& op, double value);

// np.argmax(t, axis): the index of the first maximum along `axis` (a NaN
// counts as the maximum, as in NumPy), as `index_dtype` (i32 or i64). An
// empty axis is an error (no maximum). Integers are compared as double
// (exact below 2^53).
absl::StatusOr<Tensor> ArgMax(const Tensor& t, int axis, DType index_dtype = DType::kI64);

// np.sum(t, axis, keepdims=...): f32 for f32 input (summed in double); i64
// for integer input (NumPy's int64), an error if the sum overflows. An empty
// axis sums to 0.
absl::StatusOr<Tensor> Sum(const Tensor& t, int axis, bool keepdims = false);
// np.mean / np.var / np.std along `axis` (population statistics, ddof = 0,
// NumPy's default), as f32 for any input dtype. An empty axis is an error
// (NumPy returns NaN with a warning).
absl::StatusOr<Tensor> Mean(const Tensor& t, int axis, bool keepdims = false);
absl::StatusOr<Tensor> Variance(const Tensor& t, int axis, bool keepdims = false);
absl::StatusOr<Tensor> Std(const Tensor& t, int axis, bool keepdims = false);

// np.concatenate(tensors, axis): same dtype and rank, equal dims except
// along `axis`.
absl::StatusOr<Tensor> Concatenate(std::span<const Tensor> tensors, int axis);
// np.stack(tensors, axis): same dtype and shape; the result has a new axis
// of length tensors.size() at `axis` (in [-rank - 1, rank]).
absl::StatusOr<Tensor> Stack(std::span<const Tensor> tensors, int axis);

// (t - mean) / max(std, kKerasEpsilon) with the mean and population std of
// each column over the rows (dim 0), as f32: NumPy's
// (x - x.mean(0)) / np.maximum(x.std(0), 1e-7). The floor is Keras's
// Normalization's, so a constant column becomes 0 rather than NaN, and a
// 2-D Standardize equals an adapted nn::Normalization's output. (For rank >
// 2 each position of the trailing dims has its own statistics; the layer
// instead pools every axis but the last.) Needs at least one row.
absl::StatusOr<Tensor> Standardize(const Tensor& t);

// np.eye(classes, dtype=np.float32)[labels]: f32 of shape labels.shape +
// [classes]. Labels (i32 or i64) must lie in [0, classes).
absl::StatusOr<Tensor> OneHot(const Tensor& labels, int64_t classes);

// t.astype(to). f32 to an integer type truncates toward zero; NaN, infinity
// and values outside the target's range are errors (NumPy's result is
// undefined for them), and so is i64 to i32 outside the i32 range (NumPy
// wraps). f32 <-> bf16 rounds to nearest even; bf16 casts only to and from
// f32, and the other functions here refuse bf16 (storage only).
absl::StatusOr<Tensor> Cast(const Tensor& t, DType to);

}  // namespace gradflow

#endif  // GRADFLOW_CORE_TENSOR_OPS_H_
