#include "nn/progress_bar.h"

#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_format.h"

namespace gradflow::nn {

namespace {
constexpr int kBarWidth = 30;                      // Keras's default
constexpr double kRedrawIntervalSeconds = 0.1;
}  // namespace

ProgressBar::ProgressBar(int64_t total_steps, int verbose)
    : total_(total_steps), verbose_(verbose), interactive_(isatty(fileno(stdout)) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string FormatValues(const NamedValues& values) {
  std::string s;
  for (const auto& [name, value] : values) s += absl::StrFormat(" - %s: %.4f", name, value);
  return s;
}

std::string ProgressBar::Line(int64_t step, const NamedValues& values) const {
  int width = std::to_string(total_).size();
  int filled = total_ > 0 ? static_cast<int>(kBarWidth * step / total_) : kBarWidth;
  std::string bar(filled, '=');
  if (step < total_ && filled > 0) bar.back() = '>';
  bar.resize(kBarWidth, '.');
  double seconds = elapsed_seconds();
  // Keras's units: whole milliseconds, or microseconds below one.
  double us_per_step = step > 0 ? 1e6 * seconds / step : 0;
  std::string per_step = us_per_step < 1000 ? absl::StrFormat("%.0fus/step", us_per_step)
                                            : absl::StrFormat("%.0fms/step", us_per_step / 1000);
  return absl::StrFormat("%*d/%d [%s] - %.0fs %s%s", width, step, total_, bar, seconds, per_step,
                         FormatValues(values));
}

void ProgressBar::Update(int64_t step, const NamedValues& values) {
  if (verbose_ != 1 || !interactive_) return;
  auto now = std::chrono::steady_clock::now();
  if (step < total_ && std::chrono::duration<double>(now - last_draw_).count() < kRedrawIntervalSeconds) {
    return;
  }
  last_draw_ = now;
  std::printf("\r%s", Line(step, values).c_str());
  std::fflush(stdout);
}

void ProgressBar::Finish(const NamedValues& values) {
  if (verbose_ == 0) return;
  std::printf("%s%s\n", interactive_ && verbose_ == 1 ? "\r" : "", Line(total_, values).c_str());
  std::fflush(stdout);
}

}  // namespace gradflow::nn
