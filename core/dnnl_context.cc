#include "core/dnnl_context.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace gradflow {

dnnl::engine& CpuEngine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& CpuStream() {
  static dnnl::stream stream(CpuEngine());
  return stream;
}

namespace {

// Every value of oneDNN 2.6's enum, so that a newer one is a -Wswitch warning.
const char* IsaName(dnnl::cpu_isa isa) {
  using dnnl::cpu_isa;
  switch (isa) {
    case cpu_isa::all: return "all";
    case cpu_isa::sse41: return "sse41";
    case cpu_isa::avx: return "avx";
    case cpu_isa::avx2: return "avx2";
    case cpu_isa::avx512_mic: return "avx512_mic";
    case cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case cpu_isa::avx512_core: return "avx512_core";
    case cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case cpu_isa::avx2_vnni: return "avx2_vnni";
  }
  return "unknown";
}

}  // namespace

const char* EffectiveCpuIsaName() { return IsaName(dnnl::get_effective_cpu_isa()); }

absl::Status CheckBFloat16Support(std::string_view what) {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  if (isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      std::string(what), " computes in bf16, which needs a CPU with oneDNN ISA avx512_core_bf16 or ",
      "avx512_core_amx; this one runs ", IsaName(isa),
      " (ONEDNN_MAX_CPU_ISA may lower it); use the float32 dtype policy here"));
}

}  // namespace gradflow
