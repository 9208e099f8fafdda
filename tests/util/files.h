#ifndef GRADFLOW_TESTS_UTIL_FILES_H_
#define GRADFLOW_TESTS_UTIL_FILES_H_

// File helpers shared by the tests that write checkpoints, models and data
// files.

#include <errno.h>  // program_invocation_short_name (glibc)
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace gradflow::testing_util {

// A fresh, empty folder "<test binary>_<name>" under TEST_TMPDIR (set by
// Bazel) or /tmp.
inline std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  const std::filesystem::path dir = std::filesystem::path(base != nullptr ? base : "/tmp") /
                                    (std::string(program_invocation_short_name) + "_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Replaces the file's contents with `bytes`.
inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

// A shell command's exit status (-1 if it did not exit) and its output,
// stdout and stderr together: how the tests run Python and the example binaries.
struct CommandRun {
  int exit_code;
  std::string output;
};
inline CommandRun RunCommand(const std::string& command) {
  const std::string out = TempDir("command") + "/out.txt";
  const int status = std::system((command + " > " + out + " 2>&1").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadBytes(out)};
}

}  // namespace gradflow::testing_util

#endif  // GRADFLOW_TESTS_UTIL_FILES_H_
