#include "ops/targets.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace gradflow::ops {

absl::Status InferTargetsAndPredictions(InferContext& ctx, bool sparse) {
  GF_RETURN_IF_ERROR(ctx.ExpectDType(0, sparse ? DType::kI32 : DType::kF32));
  GF_RETURN_IF_ERROR(ctx.ExpectDType(1, DType::kF32));
  const Shape& t = ctx.shape(0);
  const Shape& y = ctx.shape(1);
  if (!sparse) {
    if (y.rank() < 1) return ctx.Error(absl::StrCat("predictions must have rank >= 1, got ", ctx.Describe(1)));
    if (t.SameUpToBatch(y)) return absl::OkStatus();
    return ctx.Error(absl::StrCat("targets ", ctx.Describe(0), " and predictions ", ctx.Describe(1),
                                  " must have the same shape"));
  }
  if (y.rank() < 2) {
    return ctx.Error(absl::StrCat("predictions must be [batch, classes], got ", ctx.Describe(1)));
  }
  const Shape without_classes(std::vector<int64_t>(y.dims().begin(), y.dims().end() - 1));
  Shape with_one_class = y;
  with_one_class[y.rank() - 1] = 1;
  if (t.SameUpToBatch(without_classes) || t.SameUpToBatch(with_one_class)) return absl::OkStatus();
  return ctx.Error(absl::StrCat("labels ", ctx.Describe(0), " must have the shape ", without_classes.ToString(),
                                " of the predictions ", ctx.Describe(1), " without the class axis"));
}

}  // namespace gradflow::ops
