// Runs examples/wide_and_deep on a small constructed set: the two-input,
// two-output model trains well below the predict-the-mean baseline, and its
// saved file predicts exactly what the model did.

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

TEST(WideAndDeepTest, TrainsBothOutputsAndReloadsIdentically) {
  const std::string saved = testing_util::TempDir("wide_and_deep") + "/model.safetensors";
  const testing_util::CommandRun run = testing_util::RunCommand(
      absl::StrCat("OMP_NUM_THREADS=1 examples/wide_and_deep --epochs=5 --samples=4000 --verbose=0 --save=", saved));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("Connected to"));
  EXPECT_THAT(run.output, HasSubstr("aux_output_loss"));
  EXPECT_THAT(run.output, HasSubstr("predictions identical"));
  const size_t at = run.output.find("test RMSE: main ");
  ASSERT_NE(at, std::string::npos) << run.output;
  double main = 0, aux = 0, baseline = 0;
  ASSERT_EQ(std::sscanf(run.output.c_str() + at, "test RMSE: main %lf, auxiliary %lf (predicting the mean: %lf)", &main,
                        &aux, &baseline),
            3)
      << run.output;
  EXPECT_LT(main, 0.5 * baseline);  // the wide and deep paths together
  EXPECT_LT(aux, baseline);         // the deep path alone misses the wide-only features
  EXPECT_LT(main, aux);
}

}  // namespace
}  // namespace gradflow
