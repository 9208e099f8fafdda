#include "graph/profile.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gradflow {

std::string FormatProfile(const PlanProfile& profile) {
  const double total = profile.run_seconds > 0 ? profile.run_seconds : 1;
  std::string out = absl::StrFormat("%lld steps, %.1f us per step\n%7s %10s %7s  %s\n",
                                    static_cast<long long>(profile.steps),
                                    1e6 * profile.run_seconds / std::max<int64_t>(profile.steps, 1), "share",
                                    "us/run", "runs", "node (op, implementation)");
  double in_kernels = 0;
  for (const NodeTime& n : profile.nodes) {
    in_kernels += n.seconds;
    const std::string what = n.implementation.empty() ? n.op : absl::StrCat(n.op, ", ", n.implementation);
    absl::StrAppendFormat(&out, "%6.1f%% %10.1f %7lld  %s (%s)\n", 100 * n.seconds / total,
                          1e6 * n.seconds / std::max<int64_t>(n.runs, 1), static_cast<long long>(n.runs), n.node,
                          what);
  }
  absl::StrAppendFormat(&out, "%6.1f%% %10.1f %7lld  (outside the kernels: feeds, checks, fetches)\n",
                        100 * (profile.run_seconds - in_kernels) / total,
                        1e6 * (profile.run_seconds - in_kernels) / std::max<int64_t>(profile.steps, 1),
                        static_cast<long long>(profile.steps));
  return out;
}

}  // namespace gradflow
