#include "core/random.h"

#include <cmath>
#include <numbers>

namespace gradflow {

uint64_t HashName(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

double Rng::Normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = 1.0 - Uniform();  // (0, 1]: log is finite
  double u2 = Uniform();
  double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2 * std::numbers::pi * u2);
  has_spare_ = true;
  return r * std::cos(2 * std::numbers::pi * u2);
}

double Rng::TruncatedNormal() {
  for (;;) {
    double z = Normal();
    if (std::abs(z) <= 2.0) return z;
  }
}

}  // namespace gradflow
