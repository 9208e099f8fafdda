#ifndef GRADFLOW_CORE_DNNL_CONTEXT_H_
#define GRADFLOW_CORE_DNNL_CONTEXT_H_

#include <string_view>

#include "absl/status/status.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace gradflow {

// The process-wide oneDNN CPU engine and its in-order stream. Primitives are
// created against this engine once per plan and executed on this stream.
dnnl::engine& CpuEngine();
dnnl::stream& CpuStream();

// oneDNN's name of the instruction set it runs on ("avx512_core_amx"), after
// ONEDNN_MAX_CPU_ISA: dnnl::get_effective_cpu_isa().
const char* EffectiveCpuIsaName();

// OK when oneDNN has native bf16 kernels here (ISA avx512_core_bf16 or
// AMX), else a FailedPrecondition naming `what` (the node or model that
// computes in bf16), this CPU's ISA and the one missing.
absl::Status CheckBFloat16Support(std::string_view what);

}  // namespace gradflow

#endif  // GRADFLOW_CORE_DNNL_CONTEXT_H_
