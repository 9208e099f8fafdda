#ifndef GRADFLOW_CORE_RANDOM_H_
#define GRADFLOW_CORE_RANDOM_H_

#include <cstdint>
#include <string_view>

namespace gradflow {

// SplitMix64 finalizer: a bijective 64-bit mix. Counter-based use
// (Mix(seed + i)) lets OpenMP loops draw element i's random number
// independently of the thread that handles it, so results do not depend on
// the thread count.
constexpr uint64_t Mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform float in [0, 1) from 24 random bits.
inline float ToUnitFloat(uint64_t bits) { return float(bits >> 40) * (1.0f / 16777216.0f); }

// Stable 64-bit hash of a name (FNV-1a), used to derive per-variable seeds.
uint64_t HashName(std::string_view name);

// A small, seeded, sequential generator (SplitMix64 stream).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t NextU64() { return Mix64(state_++); }
  double Uniform() { return double(NextU64() >> 11) * (1.0 / 9007199254740992.0); }  // [0,1)
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  double Normal();  // standard normal (Box-Muller)
  // Standard normal truncated to [-2, 2] (resampled), as Keras's truncated normal.
  double TruncatedNormal();
  // Integer in [0, n).
  uint64_t Below(uint64_t n) { return NextU64() % n; }

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace gradflow

#endif  // GRADFLOW_CORE_RANDOM_H_
