#ifndef GRADFLOW_TESTS_UTIL_FILES_H_
#define GRADFLOW_TESTS_UTIL_FILES_H_

// File helpers shared by the tests that write checkpoints, models and data
// files.

#include <errno.h>  // program_invocation_short_name (glibc)

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

}  // namespace gradflow::testing_util

#endif  // GRADFLOW_TESTS_UTIL_FILES_H_
