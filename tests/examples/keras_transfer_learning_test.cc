// Runs examples/keras_transfer_learning end to end on a small subset: model
// A is trained, saved in Keras's .h5 layout and loaded back with
// LoadKerasModel, then the chapter's frozen / unfrozen training of B on A
// runs; a second run reuses the saved file without training A.

#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct ExampleRun {
  int exit_code;
  std::string out;
};

ExampleRun Example(const std::string& args) {
  const std::string dir = testing_util::TempDir("keras_transfer_learning_run");
  const std::string command =
      absl::StrCat("OMP_NUM_THREADS=1 examples/keras_transfer_learning ", args, " > ", dir, "/out.txt 2>&1");
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, testing_util::ReadBytes(dir + "/out.txt")};
}

TEST(KerasTransferLearningTest, RunsFromAKerasH5File) {
  const std::string model_a = testing_util::TempDir("keras_transfer_learning") + "/my_model_A.h5";
  const std::string small = "--epochs_a=1 --train_a=2000 --frozen_epochs=1 --unfrozen_epochs=1";
  const ExampleRun first = Example(absl::StrCat("--model_a=", model_a, " ", small));
  ASSERT_EQ(first.exit_code, 0) << first.out;
  EXPECT_THAT(first.out, HasSubstr("training model A on 2000 images"));
  EXPECT_THAT(first.out, HasSubstr("legacy .h5, Keras 3.10.0, optimizer state restored"));
  EXPECT_THAT(first.out, HasSubstr("model_B_on_A.evaluate(X_test_B, y_test_B): ["));

  const ExampleRun second = Example(absl::StrCat("--model_a=", model_a, " ", small));
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_THAT(second.out, Not(HasSubstr("training model A")));
  EXPECT_THAT(second.out, HasSubstr("model_B_on_A.evaluate(X_test_B, y_test_B): ["));
}

}  // namespace
}  // namespace gradflow
