#include "graph/op_registry.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace gradflow {

std::string InferContext::Describe(int i) const {
  const Output& in = node_.inputs[i];
  return absl::StrCat("input ", i, " ('", in.valid() ? in.name() : "?", "' ",
                      inputs_[i].ToString(), ")");
}

absl::Status InferContext::Error(std::string_view message) const {
  return absl::InvalidArgumentError(
      absl::StrCat("node '", node_.name, "' (", node_.op_name(), "): ", std::string(message)));
}

absl::Status InferContext::ExpectDType(int i, DType want) const {
  if (dtype(i) == want) return absl::OkStatus();
  return Error(absl::StrCat(Describe(i), " must be ", std::string(DTypeName(want)),
                            "; cast it with ops::Cast"));
}

OpRegistry& OpRegistry::Global() {
  static auto* registry = new OpRegistry;
  return *registry;
}

bool OpRegistry::Register(OpDef def) {
  // A duplicate name is a programming error in gradflow itself, found at
  // start-up by every test binary, never by user input.
  if (ops_.count(def.name)) {
    std::fprintf(stderr, "gradflow: op '%s' registered twice\n", def.name.c_str());
    std::abort();
  }
  std::string name = def.name;
  ops_[name] = std::make_unique<OpDef>(std::move(def));
  return true;
}

bool RegisterOp(OpDef def) { return OpRegistry::Global().Register(std::move(def)); }

const OpDef* OpRegistry::Find(std::string_view name) const {
  auto it = ops_.find(name);
  return it == ops_.end() ? nullptr : it->second.get();
}

std::vector<const OpDef*> OpRegistry::All() const {
  std::vector<const OpDef*> all;
  for (const auto& [name, def] : ops_) all.push_back(def.get());
  return all;
}

}  // namespace gradflow
