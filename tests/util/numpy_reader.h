#ifndef GRADFLOW_TESTS_UTIL_NUMPY_READER_H_
#define GRADFLOW_TESTS_UTIL_NUMPY_READER_H_

// The README's promise that a gradflow file needs nothing but Python and
// numpy to read: the tests write a Python script around the README's
// load_safetensors and run it with /usr/bin/python3 (python3-numpy comes
// from tools/install_deps.sh).

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/util/files.h"

namespace gradflow::testing_util {

// The README's snippet: load_safetensors(path) returns (tensors by name as
// numpy arrays, metadata dict). Needs json, struct and numpy as np imported.
inline constexpr char kLoadSafetensorsPy[] = R"(
def load_safetensors(path):
    with open(path, "rb") as f:
        header_len, = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    dtypes = {"F32": "<f4", "I32": "<i4", "I64": "<i8"}
    return {name: np.frombuffer(data[t["data_offsets"][0]:t["data_offsets"][1]],
                                dtype=dtypes[t["dtype"]]).reshape(t["shape"])
            for name, t in header.items()}, metadata
)";

// Writes `script` to <dir>/read.py, runs it with `file` as its argument and
// sets `output` to what it printed (stdout and stderr). Fails the test if
// python3 does not exit 0; call it in ASSERT_NO_FATAL_FAILURE.
inline void RunPythonOn(const std::string& dir, const std::string& script, const std::string& file,
                        std::string* output) {
  WriteBytes(dir + "/read.py", script);
  const std::string command = absl::StrCat("/usr/bin/python3 ", dir, "/read.py ", file, " > ", dir, "/out.txt 2>&1");
  const int rc = std::system(command.c_str());
  *output = ReadBytes(dir + "/out.txt");
  ASSERT_EQ(rc, 0) << command << " failed (python3-numpy comes from tools/install_deps.sh):\n" << *output;
}

}  // namespace gradflow::testing_util

#endif  // GRADFLOW_TESTS_UTIL_NUMPY_READER_H_
