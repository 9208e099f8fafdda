#ifndef GRADFLOW_CORE_DNNL_CONTEXT_H_
#define GRADFLOW_CORE_DNNL_CONTEXT_H_

#include "oneapi/dnnl/dnnl.hpp"

namespace gradflow {

// The process-wide oneDNN CPU engine and its in-order stream. Primitives are
// created against this engine once per plan and executed on this stream.
dnnl::engine& CpuEngine();
dnnl::stream& CpuStream();

}  // namespace gradflow

#endif  // GRADFLOW_CORE_DNNL_CONTEXT_H_
