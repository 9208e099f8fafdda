#include "core/communicator.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status.h"

namespace gradflow {
namespace {

// The first line where `mine` and `theirs` differ, quoted from both.
std::string FirstDifference(const std::string& mine, const std::string& theirs, int rank) {
  std::vector<std::string> a = absl::StrSplit(mine, '\n');
  std::vector<std::string> b = absl::StrSplit(theirs, '\n');
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  auto line = [i](const std::vector<std::string>& lines) {
    return i < lines.size() ? QuoteUserText(lines[i]) : std::string("nothing (it ends there)");
  };
  return absl::StrCat("line ", i + 1, ": rank 0 has ", line(b), ", rank ", rank, " has ", line(a));
}

}  // namespace

absl::Status Communicator::CheckSame(std::string_view what, const std::string& description) {
  if (size() == 1) return absl::OkStatus();
  // Rank 0's description goes to everyone: its length, then its bytes.
  uint64_t length = rank() == 0 ? description.size() : 0;
  GF_RETURN_IF_ERROR(Broadcast(&length, sizeof(length), 0));
  std::string reference(length, '\0');
  if (rank() == 0) reference = description;
  GF_RETURN_IF_ERROR(Broadcast(reference.data(), reference.size(), 0));
  // Every rank learns which ranks differ.
  std::vector<double> differs(size(), 0.0);
  differs[rank()] = description == reference ? 0.0 : 1.0;
  GF_RETURN_IF_ERROR(AllReduceSum(differs.data(), differs.size()));
  std::vector<std::string> ranks;
  for (int r = 0; r < size(); ++r) {
    if (differs[r] != 0) ranks.push_back(std::to_string(r));
  }
  if (ranks.empty()) return absl::OkStatus();
  std::string detail = description == reference
                           ? std::string(" (their errors say where)")
                           : absl::StrCat(" at ", FirstDifference(description, reference, rank()));
  return absl::FailedPreconditionError(absl::StrCat(
      "the ranks do not agree on ", std::string(what), ": rank", ranks.size() > 1 ? "s " : " ",
      absl::StrJoin(ranks, ", "), " differ", ranks.size() > 1 ? "" : "s", " from rank 0", detail,
      "; every rank must build the same graph (same layers, shapes and options)"));
}

}  // namespace gradflow
