// examples/inspect_model on Keras files: the chapter's MLP as tf.keras 2.x
// saves it (written by chapter_mlp_keras.py, with the accuracy and loss of a
// NumPy forward pass over the same weights) is summarized and evaluated as
// gradflow's own files are.

#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;

using ToolRun = testing_util::CommandRun;
using testing_util::RunCommand;

// The chapter MLP file and NumPy's {"accuracy": ..., "loss": ...} for it.
struct ChapterMlp {
  std::string path;
  nlohmann::json numpy;
};

const ChapterMlp& Chapter() {
  static const ChapterMlp mlp = [] {
    const std::string dir = testing_util::TempDir("keras_cli");
    ChapterMlp m{dir + "/my_keras_model.h5", nullptr};
    const ToolRun made = RunCommand(absl::StrCat("/usr/bin/python3 tests/examples/chapter_mlp_keras.py ", m.path, " ",
                                            dir, "/numpy.json"));
    EXPECT_EQ(made.exit_code, 0) << made.output;
    m.numpy = nlohmann::json::parse(testing_util::ReadBytes(dir + "/numpy.json"));
    return m;
  }();
  return mlp;
}

TEST(KerasCliTest, EvaluatePrintsWhatNumpyComputes) {
  const ToolRun run = RunCommand("examples/inspect_model evaluate " + Chapter().path);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // The tool prints 4 decimals; NumPy's float64 pass rounds to the same.
  EXPECT_THAT(run.output, HasSubstr(absl::StrFormat("accuracy %.4f loss %.4f", Chapter().numpy["accuracy"].get<double>(),
                                                 Chapter().numpy["loss"].get<double>())));
}

TEST(KerasCliTest, SummaryDescribesTheKerasFile) {
  const ToolRun run = RunCommand("examples/inspect_model summary " + Chapter().path);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("dense_1 (Dense)"));
  EXPECT_THAT(run.output, HasSubstr("266,610"));  // the chapter's parameter count
  EXPECT_THAT(run.output, HasSubstr("tf.keras 2.11.0"));
}

// .h5 -> .keras -> safetensors -> .h5: every file predicts exactly what the
// Keras file does (the outputs written as .npy files compare byte for byte).
TEST(KerasCliTest, ConvertKeepsPredictionsBitIdentical) {
  const std::string dir = testing_util::TempDir("keras_cli_convert");
  const std::string x = dir + "/x.npy";
  const ToolRun made_x = RunCommand(absl::StrCat("/usr/bin/python3 -c \"import numpy as np; np.save('", x,
                                            "', np.random.default_rng(1).random((4, 28, 28), dtype=np.float32))\""));
  ASSERT_EQ(made_x.exit_code, 0) << made_x.output;
  std::string previous = Chapter().path;
  std::string reference;
  for (const char* name : {"model.keras", "model.safetensors", "model.h5"}) {
    const std::string next = absl::StrCat(dir, "/", name);
    const ToolRun converted = RunCommand(absl::StrCat("examples/inspect_model convert ", previous, " ", next));
    ASSERT_EQ(converted.exit_code, 0) << converted.output;
    for (const std::string& file : {previous, next}) {
      const ToolRun predicted =
          RunCommand(absl::StrCat("examples/inspect_model predict ", file, " --input=", x, " --output=", dir, "/y.npy"));
      ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
      const std::string y = testing_util::ReadBytes(dir + "/y.npy");
      if (reference.empty()) reference = y;
      EXPECT_EQ(y, reference) << file;
    }
    previous = next;
  }
  EXPECT_THAT(RunCommand("examples/inspect_model summary " + previous).output, HasSubstr("Keras legacy .h5, written by Keras 3"));
}

}  // namespace
}  // namespace gradflow
