#include "graph/op_registry.h"

#include <cmath>
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

const char* AttrTypeName(AttrType type) {
  static constexpr const char* kNames[] = {"bool", "int", "float", "string", "int list", "tensor",
                                                "initializer"};
  static_assert(std::size(kNames) == kNumAttrTypes);
  return kNames[static_cast<int>(type)];
}

AttrDef RequiredAttr(std::string name, AttrType type) {
  return AttrDef{.name = std::move(name), .type = type, .required = true};
}

AttrDef OptionalAttr(std::string name, AttrType type) { return AttrDef{.name = std::move(name), .type = type}; }

AttrDef OptionalAttr(std::string name, AttrValue default_value) {
  const auto type = static_cast<AttrType>(default_value.index());
  return AttrDef{.name = std::move(name), .type = type, .default_value = std::move(default_value)};
}

const AttrDef* FindAttrDef(const OpDef& op, std::string_view name) {
  for (const AttrDef& def : op.attrs) {
    if (def.name == name) return &def;
  }
  return nullptr;
}

namespace {

// "lo (float), hi (float)", for messages that say what the op takes.
std::string DeclaredAttrs(const OpDef& op) {
  if (op.attrs.empty()) return absl::StrCat(op.name, " takes no attrs");
  std::string list;
  for (const AttrDef& def : op.attrs) {
    absl::StrAppend(&list, list.empty() ? "" : ", ", def.name, " (", AttrTypeName(def.type),
                    def.required ? ", required" : "", ")");
  }
  return absl::StrCat(op.name, " takes ", list);
}

// "[0, 1)", "> 0", "<= 10".
std::string RangeText(const AttrDef& def) {
  if (def.min && def.max) {
    return absl::StrCat("in ", def.min_exclusive ? "(" : "[", *def.min, ", ", *def.max,
                        def.max_exclusive ? ")" : "]");
  }
  if (def.min) return absl::StrCat(def.min_exclusive ? "> " : ">= ", *def.min);
  return absl::StrCat(def.max_exclusive ? "< " : "<= ", *def.max);
}

bool InRange(const AttrDef& def, double v) {
  if (def.min && !(def.min_exclusive ? v > *def.min : v >= *def.min)) return false;
  if (def.max && !(def.max_exclusive ? v < *def.max : v <= *def.max)) return false;
  return !std::isnan(v);
}

absl::Status CheckOneAttr(const AttrDef& def, AttrValue& value) {
  if (def.type == AttrType::kFloat && std::holds_alternative<int64_t>(value)) {
    value = static_cast<double>(std::get<int64_t>(value));  // 1 means 1.0
  }
  const auto given = static_cast<AttrType>(value.index());
  if (given != def.type) {
    return absl::InvalidArgumentError(absl::StrCat("attr '", def.name, "' must be a ", AttrTypeName(def.type),
                                                   ", got a ", AttrTypeName(given)));
  }
  const bool numeric = def.type == AttrType::kInt || def.type == AttrType::kFloat;
  if (!numeric || (!def.min && !def.max && !def.finite)) return absl::OkStatus();
  const double v = def.type == AttrType::kInt ? static_cast<double>(std::get<int64_t>(value))
                                              : std::get<double>(value);
  if (def.finite && !std::isfinite(v)) {
    return absl::InvalidArgumentError(absl::StrCat(def.name, " must be a finite number, got ", v));
  }
  if (!def.min && !def.max) return absl::OkStatus();
  if (InRange(def, v)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(def.name, " must be ", RangeText(def),
                   def.meaning.empty() ? "" : absl::StrCat(" (", def.meaning, ")"), ", got ", v));
}

}  // namespace

absl::Status CheckAttrs(const OpDef& op, std::string_view node_name, Attrs& attrs) {
  auto error = [&](const std::string& message) {
    return absl::InvalidArgumentError(absl::StrCat("node '", std::string(node_name), "' (", op.name, "): ", message));
  };
  for (auto& [key, value] : attrs) {
    const AttrDef* def = FindAttrDef(op, key);
    if (def == nullptr) return error(absl::StrCat("unknown attr '", key, "'; ", DeclaredAttrs(op)));
    absl::Status s = CheckOneAttr(*def, value);
    if (!s.ok()) return error(std::string(s.message()));
  }
  for (const AttrDef& def : op.attrs) {
    if (def.required && attrs.find(def.name) == attrs.end()) {
      return error(absl::StrCat("missing attr '", def.name, "'; ", DeclaredAttrs(op)));
    }
  }
  return absl::OkStatus();
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
  // So is an op without a shape function (Graph::NewNode calls it) ...
  if (!def.infer) {
    std::fprintf(stderr, "gradflow: op '%s' has no infer function\n", def.name.c_str());
    std::abort();
  }
  // ... and a default that breaks its own declaration.
  for (AttrDef& attr : def.attrs) {
    if (!attr.default_value) continue;
    absl::Status s = CheckOneAttr(attr, *attr.default_value);
    if (!s.ok()) {
      std::fprintf(stderr, "gradflow: op '%s': default of %s\n", def.name.c_str(), std::string(s.message()).c_str());
      std::abort();
    }
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
