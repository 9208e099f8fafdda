#include "nn/mc_dropout.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/random.h"
#include "core/status.h"

namespace gradflow::nn {

uint64_t PredictMcRandomStream(uint64_t seed) {
  constexpr uint64_t kMcStreamBase = uint64_t{0x4d43} << 48;  // "MC" in ASCII, high bits
  return kMcStreamBase ^ Mix64(seed);
}

absl::StatusOr<McPrediction> PredictMC(Model& model, const Tensor& x, int passes,
                                       int64_t batch_size, uint64_t seed) {
  if (model.session() == nullptr) {
    return absl::FailedPreconditionError("PredictMC: call Compile on the model first");
  }
  if (passes <= 0 || batch_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PredictMC: passes and batch_size must be > 0, got ", passes, " and ", batch_size));
  }
  const Output input = model.input(), output = model.output();
  const Shape& want = input.shape();
  bool ok = x.dtype() == input.dtype() && x.shape().rank() == want.rank();
  for (int d = 1; ok && d < want.rank(); ++d) ok = x.shape()[d] == want[d];
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PredictMC: x is ", TensorType{x.dtype(), x.shape()}.ToString(), " but the model expects ",
        input.type().ToString(), " (-1: any number of samples)"));
  }
  GF_ASSIGN_OR_RETURN(Plan plan, model.session()->Compile({output}, {}, Phase::kTrain));
  plan.set_random_stream(PredictMcRandomStream(seed));
  batch_size = std::min(batch_size, std::max<int64_t>(x.shape()[0], 1));

  const int64_t n = x.shape()[0];
  McPrediction result{Tensor(DType::kF32, output.shape().WithBatch(n)),
                      Tensor(DType::kF32, output.shape().WithBatch(n))};
  const int64_t row = n ? result.mean.num_elements() / n : 0;
  std::vector<double> mean, m2;  // Welford's running mean and sum of squared deviations
  std::vector<Tensor> fetched;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min(n, begin + batch_size), count = (end - begin) * row;
    GF_ASSIGN_OR_RETURN(const Tensor batch, x.Slice(begin, end));
    mean.assign(count, 0.0);
    m2.assign(count, 0.0);
    for (int pass = 1; pass <= passes; ++pass) {
      GF_RETURN_IF_ERROR(plan.Run({{input, batch}}, &fetched));
      const float* y = fetched[0].data<float>();
      for (int64_t i = 0; i < count; ++i) {
        const double delta = y[i] - mean[i];
        mean[i] += delta / pass;
        m2[i] += delta * (y[i] - mean[i]);
      }
    }
    float* mean_out = result.mean.data<float>() + begin * row;
    float* std_out = result.stddev.data<float>() + begin * row;
    for (int64_t i = 0; i < count; ++i) {
      mean_out[i] = static_cast<float>(mean[i]);
      std_out[i] = static_cast<float>(std::sqrt(m2[i] / passes));
    }
  }
  return result;
}

}  // namespace gradflow::nn
