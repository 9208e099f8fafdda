#include "core/tensor_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace gradflow {
namespace {

std::string Name(DType dtype) { return std::string(DTypeName(dtype)); }

// "f32[10, 3]" for error messages.
std::string Describe(const Tensor& t) { return Name(t.dtype()) + t.shape().ToString(); }

absl::Status Invalid(const char* fn, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat(fn, ": ", message));
}

// A default-constructed Tensor (no storage) or one made with unknown dims
// holds fewer elements than its shape says: reading it would run off its
// storage.
absl::Status CheckHasData(const char* fn, const Tensor& t, const char* what = "the tensor") {
  const Shape& s = t.shape();
  if (t.empty() || !s.IsFullyKnown() || s.NumElements() != t.num_elements()) {
    return Invalid(fn, absl::StrCat(what, " (", Describe(t), ") holds no data of its shape; ",
                                    "make it with Tensor::Create or Tensor::FromVector"));
  }
  // bf16 is storage only (core/dtype.h): these functions compute.
  if (!IsArithmetic(t.dtype()) && std::string_view(fn) != "Cast") {
    return Invalid(fn, absl::StrCat(what, " (", Describe(t), ") is bf16; Cast it to f32 first"));
  }
  return absl::OkStatus();
}

absl::Status CheckHasRows(const char* fn, const Tensor& t) {
  GF_RETURN_IF_ERROR(CheckHasData(fn, t));
  if (t.shape().rank() == 0) {
    return Invalid(fn, absl::StrCat("a scalar (", Describe(t), ") has no rows; reshape it to [1] first"));
  }
  return absl::OkStatus();
}

// Rank-1 i32 or i64 tensor of integers: its values as int64.
absl::StatusOr<std::vector<int64_t>> IntegerVector(const char* fn, const Tensor& v, const char* what) {
  GF_RETURN_IF_ERROR(CheckHasData(fn, v, what));
  if (v.dtype() == DType::kF32 || v.shape().rank() != 1) {
    return Invalid(fn, absl::StrCat(what, " must be a rank-1 i32 or i64 tensor, got ", Describe(v),
                                    v.dtype() == DType::kF32 ? "; Cast it to i32 first" : ""));
  }
  if (v.dtype() == DType::kI64) return v.ToVector<int64_t>();
  std::vector<int32_t> narrow = v.ToVector<int32_t>();
  return std::vector<int64_t>(narrow.begin(), narrow.end());
}

// Tensor::Create with the function's name on its errors (a size beyond
// int64 or beyond memory).
absl::StatusOr<Tensor> NewTensor(const char* fn, DType dtype, Shape shape) {
  absl::StatusOr<Tensor> t = Tensor::Create(dtype, std::move(shape));
  if (!t.ok()) return absl::Status(t.status().code(), absl::StrCat(fn, ": the result ", t.status().message()));
  return t;
}

size_t RowBytes(const Tensor& t) {
  const int64_t rows = t.shape()[0];
  return rows == 0 ? 0 : t.num_bytes() / static_cast<size_t>(rows);
}

// Rows picked[0], picked[1], ... of t copied into a new tensor (indices already checked).
absl::StatusOr<Tensor> CopyRows(const char* fn, const Tensor& t, const std::vector<int64_t>& picked) {
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor(fn, t.dtype(), t.shape().WithBatch(picked.size())));
  const size_t row_bytes = RowBytes(t);
  const auto* src = static_cast<const uint8_t*>(t.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (size_t i = 0; i < picked.size() && row_bytes > 0; ++i) {
    std::memcpy(dst + i * row_bytes, src + picked[i] * row_bytes, row_bytes);
  }
  return out;
}

// The tensor seen as [outer, n, inner] around one axis.
struct AxisView {
  int axis;
  int64_t outer = 1, n = 0, inner = 1;
};

absl::StatusOr<AxisView> ResolveAxis(const char* fn, const Tensor& t, int axis) {
  GF_RETURN_IF_ERROR(CheckHasData(fn, t));
  const int rank = t.shape().rank();
  if (axis < -rank || axis >= rank) {
    return Invalid(fn, absl::StrCat("axis ", axis, " is out of range for ", Describe(t), " (rank ", rank,
                                    "); use an axis in [", -rank, ", ", rank - 1, "]"));
  }
  AxisView v{.axis = axis < 0 ? axis + rank : axis};
  const std::vector<int64_t>& dims = t.shape().dims();
  v.n = dims[v.axis];
  // A tensor with a 0 dim exists whatever its other dims; their products
  // around the axis may still overflow.
  absl::StatusOr<int64_t> outer = Shape(std::vector<int64_t>(dims.begin(), dims.begin() + v.axis)).CheckedNumElements();
  absl::StatusOr<int64_t> inner = Shape(std::vector<int64_t>(dims.begin() + v.axis + 1, dims.end())).CheckedNumElements();
  if (!outer.ok() || !inner.ok()) {
    return Invalid(fn, absl::StrCat("the dims of ", Describe(t), " around axis ", v.axis,
                                    " multiply to more than 2^63 - 1 elements; the result cannot exist"));
  }
  v.outer = *outer;
  v.inner = *inner;
  return v;
}

Shape ReducedShape(const Shape& s, int axis, bool keepdims) {
  std::vector<int64_t> dims = s.dims();
  if (keepdims) {
    dims[axis] = 1;
  } else {
    dims.erase(dims.begin() + axis);
  }
  return Shape(std::move(dims));
}

absl::Status CheckNonEmptyAxis(const char* fn, const Tensor& t, const AxisView& v, const char* why) {
  if (v.n > 0) return absl::OkStatus();
  return Invalid(fn, absl::StrCat("axis ", v.axis, " of ", Describe(t), " is empty: ", why,
                                  "; drop the empty tensor or reduce another axis"));
}

// For each lane along the axis (outer x inner of them), `f(lane, values)`
// with the lane's n values as double, into out[lane].
template <typename Out>
absl::StatusOr<Tensor> ReduceLanes(const char* fn, const Tensor& t, const AxisView& v, bool keepdims,
                                   const std::function<Out(const std::vector<double>&)>& f) {
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor(fn, DTypeOf<Out>(), ReducedShape(t.shape(), v.axis, keepdims)));
  std::vector<double> lane(v.n);
  VisitDType(t.dtype(), [&](auto zero) {
    const auto* src = t.data<decltype(zero)>();
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t i = 0; i < v.inner; ++i) {
        for (int64_t k = 0; k < v.n; ++k) lane[k] = static_cast<double>(src[(o * v.n + k) * v.inner + i]);
        out.data<Out>()[o * v.inner + i] = f(lane);
      }
    }
  });
  return out;
}

double LaneMean(const std::vector<double>& lane) {
  double sum = 0;
  for (double x : lane) sum += x;
  return sum / static_cast<double>(lane.size());
}

// Two passes (mean, then squared deviations): no cancellation for data far
// from zero, as np.var.
double LaneVariance(const std::vector<double>& lane) {
  const double mean = LaneMean(lane);
  double sum = 0;
  for (double x : lane) sum += (x - mean) * (x - mean);
  return sum / static_cast<double>(lane.size());
}

absl::StatusOr<Tensor> Statistic(const char* fn, const Tensor& t, int axis, bool keepdims,
                                 double (*statistic)(const std::vector<double>&)) {
  GF_ASSIGN_OR_RETURN(AxisView v, ResolveAxis(fn, t, axis));
  GF_RETURN_IF_ERROR(CheckNonEmptyAxis(fn, t, v, "the statistic of no values is undefined"));
  return ReduceLanes<float>(fn, t, v, keepdims, [&](const std::vector<double>& lane) {
    return static_cast<float>(statistic(lane));
  });
}

absl::StatusOr<Tensor> IntegerSum(const Tensor& t, const AxisView& v, bool keepdims) {
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor("Sum", DType::kI64, ReducedShape(t.shape(), v.axis, keepdims)));
  bool overflow = false;
  VisitDType(t.dtype(), [&](auto zero) {
    const auto* src = t.data<decltype(zero)>();
    for (int64_t lane = 0; lane < v.outer * v.inner; ++lane) {
      const int64_t o = lane / v.inner, i = lane % v.inner;
      int64_t sum = 0;
      for (int64_t k = 0; k < v.n; ++k) {
        overflow |= __builtin_add_overflow(sum, static_cast<int64_t>(src[(o * v.n + k) * v.inner + i]), &sum);
      }
      out.data<int64_t>()[lane] = sum;
    }
  });
  if (overflow) return Invalid("Sum", absl::StrCat("the sum along axis ", v.axis, " of ", Describe(t),
                                                   " overflows int64; Cast to f32 first for an approximate sum"));
  return out;
}

// The comparison `op` names, or null for an unknown one: resolved once, not
// per element.
using Comparison = bool (*)(double, double);
Comparison FindComparison(const std::string& op) {
  if (op == "<") return [](double x, double v) { return x < v; };
  if (op == "<=") return [](double x, double v) { return x <= v; };
  if (op == ">") return [](double x, double v) { return x > v; };
  if (op == ">=") return [](double x, double v) { return x >= v; };
  if (op == "==") return [](double x, double v) { return x == v; };
  if (op == "!=") return [](double x, double v) { return x != v; };
  return nullptr;
}

// Whether every element of a float tensor converts to `to` (truncated).
absl::Status CheckCastable(const Tensor& t, DType to) {
  const double lo = to == DType::kI32 ? std::numeric_limits<int32_t>::min() : -0x1p63;
  const double hi = to == DType::kI32 ? std::numeric_limits<int32_t>::max() + 1.0 : 0x1p63;  // exclusive
  auto check = [&](double x, int64_t i) {
    if (std::trunc(x) >= lo && std::trunc(x) < hi) return absl::OkStatus();  // false for NaN
    return Invalid("Cast", absl::StrCat("element ", i, " of ", Describe(t), " is ", x, ", which ", Name(to),
                                        " cannot hold; Clip or filter (BooleanMask) the values first"));
  };
  absl::Status status;
  VisitDType(t.dtype(), [&](auto zero) {
    const auto* src = t.data<decltype(zero)>();
    for (int64_t i = 0; i < t.num_elements() && status.ok(); ++i) status = check(static_cast<double>(src[i]), i);
  });
  return status;
}

}  // namespace

absl::StatusOr<Tensor> SliceRows(const Tensor& t, int64_t begin, int64_t end) {
  GF_RETURN_IF_ERROR(CheckHasRows("SliceRows", t));
  const int64_t rows = t.shape()[0];
  const int64_t b = begin < 0 ? begin + rows : begin, e = end < 0 ? end + rows : end;
  if (b < 0 || e > rows || b > e) {
    return Invalid("SliceRows", absl::StrCat(
        "rows [", begin, ", ", end, ") are out of range for a tensor of ", rows, " rows (", Describe(t),
        "); begin and end must lie in [-", rows, ", ", rows, "] (negative counts from the end) with begin <= end",
        " after that; gradflow refuses rather than clamps"));
  }
  return t.Slice(b, e);
}

absl::StatusOr<Tensor> GatherRows(const Tensor& t, const Tensor& indices) {
  GF_RETURN_IF_ERROR(CheckHasRows("GatherRows", t));
  GF_ASSIGN_OR_RETURN(std::vector<int64_t> picked, IntegerVector("GatherRows", indices, "indices"));
  const int64_t rows = t.shape()[0];
  for (size_t i = 0; i < picked.size(); ++i) {
    if (picked[i] < 0 || picked[i] >= rows) {
      return Invalid("GatherRows", absl::StrCat("index ", picked[i], " (indices[", i, "]) is out of range for a ",
                                                "tensor of ", rows, " rows (", Describe(t),
                                                "); indices must lie in [0, ", rows, "), negative ones are refused"));
    }
  }
  return CopyRows("GatherRows", t, picked);
}

absl::StatusOr<Tensor> BooleanMask(const Tensor& t, const Tensor& mask) {
  GF_RETURN_IF_ERROR(CheckHasRows("BooleanMask", t));
  GF_ASSIGN_OR_RETURN(std::vector<int64_t> flags, IntegerVector("BooleanMask", mask, "the mask"));
  if (static_cast<int64_t>(flags.size()) != t.shape()[0]) {
    return Invalid("BooleanMask", absl::StrCat("the mask has ", flags.size(), " entries but the tensor ",
                                               Describe(t), " has ", t.shape()[0], " rows; give one 0 or 1 per row"));
  }
  std::vector<int64_t> picked;
  for (size_t i = 0; i < flags.size(); ++i) {
    if (flags[i] != 0 && flags[i] != 1) {
      return Invalid("BooleanMask", absl::StrCat("mask[", i, "] is ", flags[i], "; a mask holds only 0 and 1 ",
                                                 "(for row indices use GatherRows)"));
    }
    if (flags[i] == 1) picked.push_back(static_cast<int64_t>(i));
  }
  return CopyRows("BooleanMask", t, picked);
}

absl::StatusOr<Tensor> Compare(const Tensor& t, const std::string& op, double value) {
  GF_RETURN_IF_ERROR(CheckHasData("Compare", t));
  const Comparison holds = FindComparison(op);
  if (holds == nullptr) {
    return Invalid("Compare", absl::StrCat("unknown comparison ", QuoteUserText(op),
                                           "; use one of <, <=, >, >=, ==, !="));
  }
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor("Compare", DType::kI32, t.shape()));
  VisitDType(t.dtype(), [&](auto zero) {
    const auto* src = t.data<decltype(zero)>();
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      out.data<int32_t>()[i] = holds(static_cast<double>(src[i]), value) ? 1 : 0;
    }
  });
  return out;
}

absl::StatusOr<Tensor> ArgMax(const Tensor& t, int axis, DType index_dtype) {
  GF_ASSIGN_OR_RETURN(AxisView v, ResolveAxis("ArgMax", t, axis));
  if (index_dtype == DType::kF32) return Invalid("ArgMax", "the index dtype must be i32 or i64, got f32");
  GF_RETURN_IF_ERROR(CheckNonEmptyAxis("ArgMax", t, v, "an empty axis has no maximum"));
  if (index_dtype == DType::kI32 && v.n > std::numeric_limits<int32_t>::max()) {
    return Invalid("ArgMax", absl::StrCat("axis ", v.axis, " of ", Describe(t), " is longer than i32 indices reach; "
                                          "use DType::kI64"));
  }
  GF_ASSIGN_OR_RETURN(Tensor wide, (ReduceLanes<int64_t>("ArgMax", t, v, false, [](const std::vector<double>& lane) {
    int64_t best = 0;  // NaN wins, as in NumPy: the first NaN
    for (int64_t k = 1; k < static_cast<int64_t>(lane.size()) && !std::isnan(lane[best]); ++k) {
      if (lane[k] > lane[best] || std::isnan(lane[k])) best = k;
    }
    return best;
  })));
  return index_dtype == DType::kI64 ? wide : Cast(wide, DType::kI32);
}

absl::StatusOr<Tensor> Sum(const Tensor& t, int axis, bool keepdims) {
  GF_ASSIGN_OR_RETURN(AxisView v, ResolveAxis("Sum", t, axis));
  if (t.dtype() != DType::kF32) return IntegerSum(t, v, keepdims);
  return ReduceLanes<float>("Sum", t, v, keepdims, [](const std::vector<double>& lane) {
    double sum = 0;
    for (double x : lane) sum += x;
    return static_cast<float>(sum);
  });
}

absl::StatusOr<Tensor> Mean(const Tensor& t, int axis, bool keepdims) {
  return Statistic("Mean", t, axis, keepdims, &LaneMean);
}

absl::StatusOr<Tensor> Variance(const Tensor& t, int axis, bool keepdims) {
  return Statistic("Variance", t, axis, keepdims, &LaneVariance);
}

absl::StatusOr<Tensor> Std(const Tensor& t, int axis, bool keepdims) {
  return Statistic("Std", t, axis, keepdims, [](const std::vector<double>& lane) {
    return std::sqrt(LaneVariance(lane));
  });
}

namespace {

// Checks Concatenate's inputs; returns the result's shape.
absl::StatusOr<Shape> ConcatenatedShape(std::span<const Tensor> tensors, int axis) {
  if (tensors.empty()) return Invalid("Concatenate", "needs at least one tensor");
  GF_ASSIGN_OR_RETURN(AxisView v, ResolveAxis("Concatenate", tensors[0], axis));
  std::vector<int64_t> dims = tensors[0].shape().dims();
  for (size_t i = 1; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    GF_RETURN_IF_ERROR(CheckHasData("Concatenate", t, "a tensor"));
    std::vector<int64_t> other = t.shape().dims();
    if (t.dtype() != tensors[0].dtype() || other.size() != dims.size() ||
        !std::equal(dims.begin(), dims.begin() + v.axis, other.begin()) ||
        !std::equal(dims.begin() + v.axis + 1, dims.end(), other.begin() + v.axis + 1)) {
      return Invalid("Concatenate", absl::StrCat("tensor ", i, " is ", Describe(t), " but tensor 0 is ",
                                                 Describe(tensors[0]), "; along axis ", v.axis,
                                                 " they need the same dtype and all other dims equal"));
    }
    if (__builtin_add_overflow(dims[v.axis], other[v.axis], &dims[v.axis])) {
      return Invalid("Concatenate", absl::StrCat("the concatenated axis ", v.axis, " would be longer than 2^63 - 1"));
    }
  }
  return Shape(std::move(dims));
}

}  // namespace

absl::StatusOr<Tensor> Concatenate(std::span<const Tensor> tensors, int axis) {
  GF_ASSIGN_OR_RETURN(Shape shape, ConcatenatedShape(tensors, axis));
  GF_ASSIGN_OR_RETURN(AxisView out_view, ResolveAxis("Concatenate", tensors[0], axis));
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor("Concatenate", tensors[0].dtype(), shape));
  if (out.num_elements() == 0) return out;  // and below, every product is bounded by it
  const size_t elem = SizeOf(out.dtype());
  const size_t out_chunk = static_cast<size_t>(shape[out_view.axis] * out_view.inner) * elem;
  auto* dst = static_cast<uint8_t*>(out.raw());
  size_t offset = 0;  // where this tensor's chunk starts in each outer block
  for (const Tensor& t : tensors) {
    const size_t chunk = static_cast<size_t>(t.shape()[out_view.axis] * out_view.inner) * elem;
    const auto* src = static_cast<const uint8_t*>(t.raw());
    for (int64_t o = 0; o < out_view.outer && chunk > 0; ++o) {
      std::memcpy(dst + o * out_chunk + offset, src + o * chunk, chunk);
    }
    offset += chunk;
  }
  return out;
}

absl::StatusOr<Tensor> Stack(std::span<const Tensor> tensors, int axis) {
  if (tensors.empty()) return Invalid("Stack", "needs at least one tensor");
  GF_RETURN_IF_ERROR(CheckHasData("Stack", tensors[0], "tensor 0"));
  const Shape& shape = tensors[0].shape();
  const int rank = shape.rank();
  if (axis < -rank - 1 || axis > rank) {
    return Invalid("Stack", absl::StrCat("axis ", axis, " is out of range for stacking ", Describe(tensors[0]),
                                         "; use an axis in [", -rank - 1, ", ", rank, "]"));
  }
  const int at = axis < 0 ? axis + rank + 1 : axis;
  std::vector<int64_t> dims = shape.dims();
  dims.insert(dims.begin() + at, 1);
  std::vector<Tensor> expanded;
  for (size_t i = 0; i < tensors.size(); ++i) {
    GF_RETURN_IF_ERROR(CheckHasData("Stack", tensors[i], "a tensor"));
    if (tensors[i].dtype() != tensors[0].dtype() || tensors[i].shape() != shape) {
      return Invalid("Stack", absl::StrCat("tensor ", i, " is ", Describe(tensors[i]), " but tensor 0 is ",
                                           Describe(tensors[0]), "; stacked tensors need the same dtype and shape"));
    }
    GF_ASSIGN_OR_RETURN(Tensor view, tensors[i].Reshaped(Shape(dims)));
    expanded.push_back(std::move(view));
  }
  return Concatenate(expanded, at);
}

absl::StatusOr<Tensor> Standardize(const Tensor& t) {
  GF_RETURN_IF_ERROR(CheckHasRows("Standardize", t));
  if (t.shape()[0] == 0) return Invalid("Standardize", absl::StrCat(Describe(t), " has no rows to take statistics of"));
  GF_ASSIGN_OR_RETURN(Tensor x, t.dtype() == DType::kF32 ? t : Cast(t, DType::kF32));
  GF_ASSIGN_OR_RETURN(Tensor mean, Mean(x, 0));
  GF_ASSIGN_OR_RETURN(Tensor variance, Variance(x, 0));
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor("Standardize", DType::kF32, x.shape()));
  const int64_t columns = mean.num_elements();
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    // In f32 with the statistics rounded to f32, as nn::Normalization computes.
    const float scale = std::max(std::sqrt(variance.data<float>()[i % columns]), static_cast<float>(kKerasEpsilon));
    out.data<float>()[i] = (x.data<float>()[i] - mean.data<float>()[i % columns]) / scale;
  }
  return out;
}

absl::StatusOr<Tensor> OneHot(const Tensor& labels, int64_t classes) {
  GF_RETURN_IF_ERROR(CheckHasData("OneHot", labels, "the labels"));
  if (labels.dtype() == DType::kF32) {
    return Invalid("OneHot", absl::StrCat("labels must be i32 or i64, got ", Describe(labels), "; Cast them first"));
  }
  if (classes < 1) return Invalid("OneHot", absl::StrCat("classes must be >= 1, got ", classes));
  std::vector<int64_t> dims = labels.shape().dims();
  dims.push_back(classes);
  GF_ASSIGN_OR_RETURN(Tensor flat, labels.Reshaped(Shape{labels.num_elements()}));
  GF_ASSIGN_OR_RETURN(std::vector<int64_t> values, IntegerVector("OneHot", flat, "the labels"));
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 0 || values[i] >= classes) {
      return Invalid("OneHot", absl::StrCat("label ", values[i], " (element ", i, ") is not in [0, ", classes,
                                            "); pass a larger class count or fix the labels"));
    }
  }
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor("OneHot", DType::kF32, Shape(std::move(dims))));
  for (size_t i = 0; i < values.size(); ++i) out.data<float>()[i * classes + values[i]] = 1.0f;
  return out;
}

// f32 <-> bf16, rounding to nearest even; bf16 and integers do not mix.
absl::StatusOr<Tensor> CastBFloat16(const Tensor& t, DType to) {
  const bool to_bf16 = to == DType::kBF16;
  if ((to_bf16 ? t.dtype() : to) != DType::kF32) {
    return Invalid("Cast", absl::StrCat(Describe(t), " cannot become ", Name(to), ": bf16 casts only to and from f32"));
  }
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor("Cast", to, t.shape()));
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    if (to_bf16) {
      out.data<uint16_t>()[i] = FloatToBFloat16(t.data<float>()[i]);
    } else {
      out.data<float>()[i] = BFloat16ToFloat(t.data<uint16_t>()[i]);
    }
  }
  return out;
}

absl::StatusOr<Tensor> Cast(const Tensor& t, DType to) {
  GF_RETURN_IF_ERROR(CheckHasData("Cast", t));
  if (t.dtype() == to) return t.Clone();
  if (t.dtype() == DType::kBF16 || to == DType::kBF16) return CastBFloat16(t, to);
  if (to != DType::kF32 && !(t.dtype() == DType::kI32 && to == DType::kI64)) GF_RETURN_IF_ERROR(CheckCastable(t, to));
  GF_ASSIGN_OR_RETURN(Tensor out, NewTensor("Cast", to, t.shape()));
  VisitDType(t.dtype(), [&](auto from) {
    VisitDType(to, [&](auto into) {
      using To = decltype(into);
      const auto* src = t.data<decltype(from)>();
      for (int64_t i = 0; i < t.num_elements(); ++i) out.data<To>()[i] = static_cast<To>(src[i]);
    });
  });
  return out;
}

}  // namespace gradflow
