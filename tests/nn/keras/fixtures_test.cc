// The Keras fixtures are what they claim to be: check_keras_layout.py (an
// independent reader of the layouts Keras reads) accepts every model fixture
// and rejects every hostile one with the problem the README names; the
// predictions in mlp_y.npy are those of the weights each file stores; and
// make_keras_fixtures.py regenerates the committed files byte for byte.
// Python runs as a subprocess, as in tests/util/numpy_reader.h.


#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace gradflow {
namespace {

using ::testing::HasSubstr;
using testing_util::ReadBytes;
using testing_util::TempDir;

constexpr char kTestdata[] = "tests/nn/keras/testdata/";
constexpr char kChecker[] = "tests/nn/keras/check_keras_layout.py";

using PythonRun = testing_util::CommandRun;

PythonRun RunPython(const std::string& args) { return testing_util::RunCommand("/usr/bin/python3 " + args); }

PythonRun Check(const std::string& file) { return RunPython(absl::StrCat(kChecker, " ", kTestdata, file)); }

struct ModelFixture {
  const char* file;
  const char* optimizer_vars;  // as the summary prints it
};

// Every layer's variable shapes, as the checker's summary lists them.
constexpr char kLayerShapes[] =
    R"("layers": {"batch_normalization": [[8], [8], [8], [8]], "dense": [[16, 8], [8]], )"
    R"("dense_1": [[8, 6], [6]], "dense_2": [[6, 3], [3]], "dropout": [], "flatten": [], )"
    R"("leaky_re_lu": [], "p_re_lu": [[6]]})";

TEST(KerasFixturesTest, CheckerAcceptsEveryModelFixture) {
  // Adam: tf.keras OptimizerV2 / TF 2.11+ have iteration + m and v of 9
  // variables (19); Keras 3 adds learning_rate (20). SGD: 2 + 9 momenta.
  const std::vector<ModelFixture> fixtures = {
      {"mlp_tf2.h5", R"("optimizer_vars": 19)"},          {"mlp_tf2_uncompiled.h5", R"("optimizer_vars": 0)"},
      {"mlp_tf212.h5", R"("optimizer_vars": 19)"},        {"mlp_keras3.h5", R"("optimizer_vars": 20)"},
      {"mlp.keras", R"("optimizer_vars": 20)"},           {"mlp_sgd.keras", R"("optimizer_vars": 11)"},
      {"mlp_uncompiled.keras", R"("optimizer_vars": 0)"},
  };
  for (const ModelFixture& fixture : fixtures) {
    const PythonRun run = Check(fixture.file);
    EXPECT_EQ(run.exit_code, 0) << fixture.file << ":\n" << run.output;
    EXPECT_THAT(run.output, HasSubstr(kLayerShapes)) << fixture.file;
    EXPECT_THAT(run.output, HasSubstr(fixture.optimizer_vars)) << fixture.file;
  }
}

TEST(KerasFixturesTest, CheckerReportsTheStringAttributeStorage) {
  EXPECT_THAT(Check("mlp_tf2.h5").output, HasSubstr(R"("string_attributes": ["fixed-length"])"));
  EXPECT_THAT(Check("mlp_tf212.h5").output, HasSubstr(R"("string_attributes": ["variable-length"])"));
}

struct HostileFixture {
  const char* file;
  const char* problem;  // a part of the line the checker prints
};

TEST(KerasFixturesTest, CheckerRejectsEveryHostileFixture) {
  const std::vector<HostileFixture> fixtures = {
      {"hostile_kernel_int32.h5", "dense/kernel:0: dtype is int32"},
      {"hostile_kernel_float16.h5", "dense/kernel:0: dtype is float16"},
      {"hostile_kernel_string.h5", "dense/kernel:0: dtype is |S12"},
      {"hostile_kernel_shape.h5", "shape is [16, 7] but the config implies [16, 8]"},
      {"hostile_kernel_shape.keras", "/layers/dense/vars/0 (dense/kernel): shape is [16, 7]"},
      {"hostile_no_model_weights.h5", "/model_weights: missing"},
      {"hostile_missing_layer_group.h5", "/model_weights/dense_1: missing"},
      {"hostile_missing_vars.keras", "/layers/batch_normalization: missing"},
      {"hostile_missing_dataset.h5", "dense/kernel:0: missing: named in weight_names"},
      {"hostile_unstored_kernel.h5", "only 0 of its 16 chunks are stored"},
      {"hostile_huge_dataset.h5", "(1099511627776 elements)"},
      {"hostile_config_not_json.h5", "@model_config: not valid JSON"},
      {"hostile_config_deep.h5", "@model_config: JSON nested too deeply"},
      {"hostile_unknown_layer.h5", "unknown layer class 'MysteryActivation'"},
      {"hostile_bn_renorm.h5", "renorm=true"},
      {"hostile_zip_bomb.keras", "a zip bomb"},
      {"hostile_traversal_dotdot.keras", R"(entry "../evil": path escapes the archive)"},
      {"hostile_traversal_abs.keras", R"(entry "/abs/evil": path escapes the archive)"},
      {"hostile_duplicate_entry.keras", R"(entry "config.json": duplicate entry name)"},
      {"hostile_no_config.keras", "missing entry config.json"},
      {"hostile_weights_not_hdf5.keras", "model.weights.h5: not an HDF5 file"},
  };
  for (const HostileFixture& fixture : fixtures) {
    const PythonRun run = Check(fixture.file);
    EXPECT_EQ(run.exit_code, 1) << fixture.file << ":\n" << run.output;
    EXPECT_THAT(run.output, HasSubstr(fixture.problem)) << fixture.file;
  }
}

TEST(KerasFixturesTest, EveryHostileFixtureIsTested) {
  int hostile = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kTestdata)) {
    hostile += entry.path().filename().string().rfind("hostile_", 0) == 0;
  }
  EXPECT_EQ(hostile, 21) << "a hostile fixture without a case in CheckerRejectsEveryHostileFixture";
}

TEST(KerasFixturesTest, CheckerUsageErrorExitsTwo) {
  EXPECT_EQ(RunPython(kChecker).exit_code, 2);
  EXPECT_EQ(Check("README.md").exit_code, 1);  // neither zip nor HDF5
}

// A forward pass written again here (not the generator's), on the weights
// read back from each file, against mlp_y.npy.
constexpr char kForwardPy[] = R"(
import io, sys, zipfile
import h5py, numpy as np
x = np.load(sys.argv[1] + "mlp_x.npy").astype(np.float64)
y = np.load(sys.argv[1] + "mlp_y.npy")

def keras_zip(path):
    h5 = h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")), "r")
    g = lambda name: [h5["layers/%s/vars/%d" % (name, i)][()] for i in range(len(h5["layers/" + name + "/vars"]))]
    return {n: g(n) for n in ("dense", "batch_normalization", "dense_1", "p_re_lu", "dense_2")}

def legacy(path):
    f = h5py.File(path, "r")["model_weights"]
    def g(name):
        names = [n.decode() if isinstance(n, bytes) else n for n in f[name].attrs["weight_names"]]
        return [f[name][n][()] for n in names]
    return {n: g(n) for n in ("dense", "batch_normalization", "dense_1", "p_re_lu", "dense_2")}

def predict(w):
    w = {k: [a.astype(np.float64) for a in v] for k, v in w.items()}
    h = np.maximum(x.reshape(len(x), -1) @ w["dense"][0] + w["dense"][1], 0)
    gamma, beta, mean, var = w["batch_normalization"]
    h = (h - mean) / np.sqrt(var + 1e-3) * gamma + beta
    h = np.maximum(h, 0) + 0.2 * np.minimum(h, 0)
    h = h @ w["dense_1"][0] + w["dense_1"][1]
    h = np.where(h > 0, h, np.exp(np.minimum(h, 0)) - 1)
    h = np.maximum(h, 0) + w["p_re_lu"][0] * np.minimum(h, 0)
    z = h @ w["dense_2"][0] + w["dense_2"][1]
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)

for name in ("mlp.keras", "mlp_sgd.keras", "mlp_uncompiled.keras"):
    print(name, float(np.abs(predict(keras_zip(sys.argv[1] + name)) - y).max()))
for name in ("mlp_tf2.h5", "mlp_tf2_uncompiled.h5", "mlp_tf212.h5", "mlp_keras3.h5"):
    print(name, float(np.abs(predict(legacy(sys.argv[1] + name)) - y).max()))
print("shape", y.shape, y.dtype, x.shape)
)";

TEST(KerasFixturesTest, PredictionsAreThoseOfEveryFilesWeights) {
  const std::string dir = TempDir("forward");
  testing_util::WriteBytes(dir + "/forward.py", kForwardPy);
  const PythonRun run = RunPython(absl::StrCat(dir, "/forward.py ", kTestdata));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("shape (5, 3) float32 (5, 4, 4)"));
  int files = 0;
  for (const std::string& line : std::vector<std::string>(absl::StrSplit(run.output, '\n'))) {
    const std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() != 2 || fields[0] == "shape") continue;
    ++files;
    EXPECT_LT(std::stod(fields[1]), 1e-6) << line;  // float32 rounding of the float64 pass
  }
  EXPECT_EQ(files, 7) << run.output;
}

TEST(KerasFixturesTest, GeneratorRewritesTheCommittedFilesByteForByte) {
  const std::string dir = TempDir("regenerated");
  const PythonRun run = RunPython(absl::StrCat("tests/nn/keras/make_keras_fixtures.py ", dir));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  int compared = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(ReadBytes(entry.path().string()) == ReadBytes(kTestdata + name)) << name << " differs";
    ++compared;
  }
  EXPECT_EQ(compared, 30);  // 7 models, 2 arrays, 21 hostile files
}

}  // namespace
}  // namespace gradflow
