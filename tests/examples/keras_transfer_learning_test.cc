// Runs examples/keras_transfer_learning end to end on a small subset: model
// A is trained, saved in Keras's .h5 layout and loaded back with
// LoadKerasModel, then the chapter's frozen / unfrozen training of B on A
// runs; a second run reuses the saved file without training A.

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using ExampleRun = testing_util::CommandRun;

ExampleRun Example(const std::string& args) {
  return testing_util::RunCommand("OMP_NUM_THREADS=1 examples/keras_transfer_learning " + args);
}

TEST(KerasTransferLearningTest, RunsFromAKerasH5File) {
  const std::string model_a = testing_util::TempDir("keras_transfer_learning") + "/my_model_A.h5";
  const std::string small = "--epochs_a=1 --train_a=2000 --frozen_epochs=1 --unfrozen_epochs=1";
  const ExampleRun first = Example(absl::StrCat("--model_a=", model_a, " ", small));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("training model A on 2000 images"));
  EXPECT_THAT(first.output, HasSubstr("legacy .h5, Keras 3.10.0, optimizer state restored"));
  EXPECT_THAT(first.output, HasSubstr("model_B_on_A.evaluate(X_test_B, y_test_B): ["));

  const ExampleRun second = Example(absl::StrCat("--model_a=", model_a, " ", small));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, Not(HasSubstr("training model A")));
  EXPECT_THAT(second.output, HasSubstr("model_B_on_A.evaluate(X_test_B, y_test_B): ["));
}

}  // namespace
}  // namespace gradflow
