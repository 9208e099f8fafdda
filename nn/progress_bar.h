#ifndef GRADFLOW_NN_PROGRESS_BAR_H_
#define GRADFLOW_NN_PROGRESS_BAR_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gradflow::nn {

using NamedValues = std::vector<std::pair<std::string, double>>;

// Keras's per-epoch progress line:
//   1719/1719 [==============================] - 3s 2ms/step - loss: 0.5361 - accuracy: 0.8135
// Redrawn in place on a terminal; printed once at the end otherwise.
class ProgressBar {
 public:
  ProgressBar(int64_t total_steps, int verbose);
  void Update(int64_t step, const NamedValues& values);
  // Prints the final line with `values` (e.g. with validation metrics added).
  void Finish(const NamedValues& values);
  double elapsed_seconds() const;

 private:
  std::string Line(int64_t step, const NamedValues& values) const;

  int64_t total_;
  int verbose_;
  bool interactive_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "0.5361" style formatting of one metric, as Keras prints it.
std::string FormatValues(const NamedValues& values);

}  // namespace gradflow::nn

#endif  // GRADFLOW_NN_PROGRESS_BAR_H_
