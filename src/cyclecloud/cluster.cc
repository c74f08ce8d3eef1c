#include "cyclecloud/cluster.h"

#include <algorithm>
#include <functional>
#include <set>

#include "base/strings.h"
#include "cyclecloud/attribute_value.h"

namespace imagesmith::cyclecloud {

const Value* FindAttribute(const Attributes& attributes, std::string_view key) {
  const Value* found = nullptr;
  for (const auto& [k, v] : attributes) {
    if (EqualsIgnoreCase(k, key)) found = &v;
  }
  return found;
}

namespace {

Json AttributesJson(const Attributes& attributes) {
  Json out = Json::MakeObject();
  for (const auto& [k, v] : attributes) out.Set(k, v.ToJson());
  return out;
}

Attributes AttributesFromJson(const Json* json) {
  Attributes out;
  if (json == nullptr || !json->is_object()) return out;
  for (const JsonMember& m : json->object_items()) {
    Value v = Value::FromJson(m.value);
    // {"deferred": TEXT} is how a deferred value is stored.
    if (v.kind() == Value::Kind::kRecord && v.record_fields().size() == 1 &&
        v.record_fields()[0].first == "deferred" &&
        v.record_fields()[0].second.kind() == Value::Kind::kString) {
      v = Value::Deferred(v.record_fields()[0].second.string_value());
    }
    out.emplace_back(m.key, std::move(v));
  }
  return out;
}

void SetAttribute(Attributes& attributes, const std::string& key, Value value) {
  for (auto& [k, v] : attributes) {
    if (EqualsIgnoreCase(k, key)) {
      v = std::move(value);
      return;
    }
  }
  attributes.emplace_back(key, std::move(value));
}

// ---- raw (unevaluated) merging --------------------------------------------------

struct RawAttr {
  std::string key;
  const Attribute* attr;
};

struct RawSub {
  std::string type;
  std::string name;
  std::vector<RawAttr> attrs;
};

struct RawNode {
  std::vector<RawAttr> attrs;
  std::vector<RawAttr> configuration;
  std::vector<RawSub> subs;
};

void Overlay(std::vector<RawAttr>& into, const std::vector<RawAttr>& from) {
  for (const RawAttr& a : from) {
    bool replaced = false;
    for (RawAttr& b : into) {
      if (EqualsIgnoreCase(a.key, b.key)) {
        b = a;
        replaced = true;
        break;
      }
    }
    if (!replaced) into.push_back(a);
  }
}

void OverlayNode(RawNode& into, const RawNode& from) {
  Overlay(into.attrs, from.attrs);
  Overlay(into.configuration, from.configuration);
  for (const RawSub& s : from.subs) {
    bool merged = false;
    for (RawSub& t : into.subs) {
      if (t.type == s.type && EqualsIgnoreCase(t.name, s.name)) {
        Overlay(t.attrs, s.attrs);
        merged = true;
        break;
      }
    }
    if (!merged) into.subs.push_back(s);
  }
}

RawNode OwnRaw(const Section& node) {
  RawNode raw;
  for (const Attribute& a : node.attributes) raw.attrs.push_back({a.key, &a});
  for (const Section& sub : node.children) {
    if (sub.type == "configuration") {
      std::string prefix = sub.name.empty() ? "" : sub.name + ".";
      for (const Attribute& a : sub.attributes) raw.configuration.push_back({prefix + a.key, &a});
      continue;
    }
    RawSub s{sub.type, sub.name, {}};
    for (const Attribute& a : sub.attributes) s.attrs.push_back({a.key, &a});
    // Two sections of the same type and name in one node merge too.
    RawNode one;
    one.subs.push_back(std::move(s));
    OverlayNode(raw, one);
  }
  return raw;
}

// ---- compiled values and the scope ------------------------------------------------

class Compiled {
 public:
  StatusOr<const AttributeValue*> Get(const Attribute& a) {
    auto it = cache_.find(&a);
    if (it != cache_.end()) return &it->second;
    ASSIGN_OR_RETURN(AttributeValue v, AttributeValue::Compile(a));
    return &cache_.emplace(&a, std::move(v)).first->second;
  }

 private:
  std::map<const Attribute*, AttributeValue> cache_;
};

// A parameter; real templates sometimes define one twice (cyclecloud-lsf's
// lsf-full.txt has ReturnProxy twice): the definitions merge, later
// attributes win.
struct ParamDef {
  std::string name;
  std::vector<const Section*> sections;
  std::string type;         // ParameterType, lower-cased
  bool given_only = false;  // not declared; given by a parameter file or -P

  const Attribute* Find(std::string_view key) const {
    for (auto it = sections.rbegin(); it != sections.rend(); ++it) {
      if (const Attribute* a = (*it)->Find(key)) return a;
    }
    return nullptr;
  }
  Location at() const { return sections.empty() ? Location{} : sections.front()->at; }
};

class ClusterScope final : public Scope {
 public:
  ClusterScope(std::string cluster_name, Compiled& compiled)
      : cluster_name_(std::move(cluster_name)), compiled_(compiled) {}

  void AddParameter(const ParamDef& def) {
    auto [it, fresh] = params_.emplace(AsciiToLower(def.name), def);
    if (!fresh) {
      for (const Section* s : def.sections) it->second.sections.push_back(s);
      if (!def.type.empty()) it->second.type = def.type;
    }
  }
  void AddDeferred(const std::string& name) { deferred_.insert(AsciiToLower(name)); }
  void Give(const std::string& name, Value v) { given_[AsciiToLower(name)] = std::move(v); }
  bool Declares(const std::string& name) const { return params_.count(AsciiToLower(name)) > 0; }
  const ParamDef* Def(const std::string& name) const {
    auto it = params_.find(AsciiToLower(name));
    return it == params_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, ParamDef>& params() const { return params_; }

  StatusOr<Value> Lookup(std::string_view name) const override {
    std::string key = AsciiToLower(name);
    if (key == "clustername") return Value::String(cluster_name_);
    if (deferred_.count(key)) return Value::Deferred(std::string(name));
    auto it = params_.find(key);
    if (it == params_.end()) return NotFoundError(std::string(name));
    auto given = given_.find(key);
    if (given != given_.end()) return given->second;
    auto done = defaults_.find(key);
    if (done != defaults_.end()) return done->second;
    const Attribute* def = it->second.Find("DefaultValue");
    if (def == nullptr) return Value::Undefined();
    if (visiting_.count(key)) {
      return ErrorAt(def->value_at, "DefaultValue of " + it->second.name + " refers to itself");
    }
    if (visiting_.size() >= 64) {
      return ErrorAt(def->value_at, "DefaultValue of " + it->second.name +
                                        " is at the end of a chain of more than 64 defaults");
    }
    visiting_.insert(key);
    StatusOr<Value> v = [&]() -> StatusOr<Value> {
      ASSIGN_OR_RETURN(const AttributeValue* compiled, compiled_.Get(*def));
      RETURN_IF_ERROR(compiled->CheckReferences(*this));
      return compiled->Evaluate(*this);
    }();
    visiting_.erase(key);
    if (!v.ok()) {
      // An unknown name inside a DefaultValue is reported as NotFound by
      // nobody: keep the located InvalidArgument.
      return v.status();
    }
    defaults_[key] = *v;
    return *v;
  }

 private:
  std::string cluster_name_;
  Compiled& compiled_;
  std::map<std::string, ParamDef> params_;
  std::set<std::string> deferred_;
  std::map<std::string, Value> given_;
  mutable std::map<std::string, Value> defaults_;
  mutable std::set<std::string> visiting_;
};

void CollectParameters(const Section& s, std::vector<ParamDef>& out) {
  if (s.type == "parameter") {
    const Attribute* type = s.Find("ParameterType");
    out.push_back(
        {s.name, {&s}, type ? AsciiToLower(std::string(TrimWhitespace(type->raw))) : "", false});
  }
  for (const Section& child : s.children) CollectParameters(child, out);
}

// Compiles every attribute of `s` and below (syntax check of the whole file).
Status CompileAll(const Section& s, Compiled& compiled) {
  for (const Attribute& a : s.attributes) RETURN_IF_ERROR(compiled.Get(a).status());
  for (const Section& child : s.children) RETURN_IF_ERROR(CompileAll(child, compiled));
  return Status::Ok();
}

StatusOr<Value> EvalAttr(const Attribute& a, Compiled& compiled, const Scope& scope) {
  ASSIGN_OR_RETURN(const AttributeValue* v, compiled.Get(a));
  RETURN_IF_ERROR(v->CheckReferences(scope));
  return v->Evaluate(scope);
}

StatusOr<Attributes> EvalAll(const std::vector<RawAttr>& raw, Compiled& compiled,
                             const Scope& scope) {
  Attributes out;
  for (const RawAttr& r : raw) {
    ASSIGN_OR_RETURN(Value v, EvalAttr(*r.attr, compiled, scope));
    if (v.is_undefined()) continue;
    SetAttribute(out, r.key, std::move(v));
  }
  return out;
}

Status CheckCount(const NodeSpec& node, const std::vector<RawAttr>& raw, const char* key,
                  int64_t min) {
  const Value* v = FindAttribute(node.attributes, key);
  if (v == nullptr || v->is_deferred()) return Status::Ok();
  const Attribute* where = nullptr;
  for (const RawAttr& r : raw) {
    if (EqualsIgnoreCase(r.key, key)) where = r.attr;
  }
  Location at = where ? where->value_at : node.at;
  if (v->kind() != Value::Kind::kInt) {
    return ErrorAt(at, std::string(key) + " of " + node.name + " must be a whole number, got " +
                           std::string(v->KindName()) + " " + QuoteForMessage(v->ToText()));
  }
  if (v->int_value() < min) {
    return ErrorAt(at, std::string(key) + " of " + node.name + " must be at least " +
                           std::to_string(min) + ", got " + std::to_string(v->int_value()));
  }
  return Status::Ok();
}

Status CheckParameterType(const ParamDef& def, const Value& v, const Location& at) {
  if (v.is_undefined()) return Status::Ok();
  const Attribute* t = def.Find("ParameterType");
  std::string where = t ? " (ParameterType at " + t->key_at.ToString() + ")" : "";
  if (def.type == "integer" && v.kind() != Value::Kind::kInt) {
    return ErrorAt(at, "parameter " + def.name + " must be an integer" + where + ", got " +
                           std::string(v.KindName()) + " " + QuoteForMessage(v.ToText()));
  }
  if (def.type == "boolean" && v.kind() != Value::Kind::kBool) {
    return ErrorAt(at, "parameter " + def.name + " must be true or false" + where + ", got " +
                           std::string(v.KindName()) + " " + QuoteForMessage(v.ToText()));
  }
  return Status::Ok();
}

}  // namespace

Json NodeSpec::ToJson() const {
  Json out = Json::MakeObject();
  out.Set("name", Json::String(name));
  out.Set("kind", Json::String(is_array ? "nodearray" : "node"));
  out.Set("attributes", AttributesJson(attributes));
  out.Set("configuration", AttributesJson(configuration));
  Json subs = Json::MakeArray();
  for (const SubsectionSpec& s : subsections) {
    Json j = Json::MakeObject();
    j.Set("type", Json::String(s.type));
    j.Set("name", Json::String(s.name));
    j.Set("attributes", AttributesJson(s.attributes));
    subs.Append(std::move(j));
  }
  out.Set("subsections", std::move(subs));
  return out;
}

const NodeSpec* ClusterSpec::FindNode(std::string_view node_name) const {
  for (const NodeSpec& n : nodes) {
    if (EqualsIgnoreCase(n.name, node_name)) return &n;
  }
  return nullptr;
}

Json ClusterSpec::ToJson() const {
  Json out = Json::MakeObject();
  out.Set("name", Json::String(name));
  out.Set("attributes", AttributesJson(attributes));
  out.Set("parameters", AttributesJson(parameters));
  Json nodes_json = Json::MakeArray();
  for (const NodeSpec& n : nodes) nodes_json.Append(n.ToJson());
  out.Set("nodes", std::move(nodes_json));
  Json deferred = Json::MakeArray();
  for (const std::string& d : deferred_names) deferred.Append(Json::String(d));
  out.Set("deferredNames", std::move(deferred));
  Json missing = Json::MakeArray();
  for (const std::string& m : missing_required) missing.Append(Json::String(m));
  out.Set("missingRequired", std::move(missing));
  return out;
}

StatusOr<ClusterSpec> ClusterSpec::FromJson(const Json& json) {
  if (!json.is_object()) return InvalidArgumentError("stored cluster spec is not an object");
  ClusterSpec spec;
  if (const Json* n = json.Find("name"); n && n->is_string()) spec.name = n->string_value();
  spec.attributes = AttributesFromJson(json.Find("attributes"));
  spec.parameters = AttributesFromJson(json.Find("parameters"));
  if (const Json* nodes = json.Find("nodes"); nodes && nodes->is_array()) {
    for (const Json& nj : nodes->array_items()) {
      if (!nj.is_object()) continue;
      NodeSpec node;
      if (const Json* n = nj.Find("name"); n && n->is_string()) node.name = n->string_value();
      if (const Json* k = nj.Find("kind"); k && k->is_string())
        node.is_array = k->string_value() == "nodearray";
      node.attributes = AttributesFromJson(nj.Find("attributes"));
      node.configuration = AttributesFromJson(nj.Find("configuration"));
      if (const Json* subs = nj.Find("subsections"); subs && subs->is_array()) {
        for (const Json& sj : subs->array_items()) {
          SubsectionSpec s;
          if (const Json* t = sj.Find("type"); t && t->is_string()) s.type = t->string_value();
          if (const Json* n = sj.Find("name"); n && n->is_string()) s.name = n->string_value();
          s.attributes = AttributesFromJson(sj.Find("attributes"));
          node.subsections.push_back(std::move(s));
        }
      }
      spec.nodes.push_back(std::move(node));
    }
  }
  for (const char* key : {"deferredNames", "missingRequired"}) {
    const Json* list = json.Find(key);
    if (list == nullptr || !list->is_array()) continue;
    for (const Json& item : list->array_items()) {
      if (!item.is_string()) continue;
      (std::string_view(key) == "deferredNames" ? spec.deferred_names : spec.missing_required)
          .push_back(item.string_value());
    }
  }
  return spec;
}

StatusOr<ParameterValues> ParseParameterFile(std::string_view text, const std::string& path) {
  ParameterValues out;
  std::string_view trimmed = TrimWhitespace(text);
  if (EndsWith(AsciiToLower(path), ".json") || trimmed.starts_with("{")) {
    JsonSyntaxError err;
    StatusOr<Json> json = ParseJson(text, {}, &err);
    if (!json.ok()) {
      return InvalidArgumentError(path + ":" + std::to_string(err.pos.line) + ":" +
                                  std::to_string(err.pos.column) + ": " + err.message);
    }
    if (!json->is_object()) {
      return InvalidArgumentError(path +
                                  ":1:1: a parameter file holds one JSON object of name: value");
    }
    for (const JsonMember& m : json->object_items()) {
      Location at{path, static_cast<int>(m.key_pos.line), static_cast<int>(m.key_pos.column)};
      out.emplace_back(m.key, ParameterValue{Value::FromJson(m.value), at});
    }
    return out;
  }
  int line_no = 0;
  for (const std::string& line : Split(text, '\n')) {
    ++line_no;
    std::string_view l = line;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    size_t indent = 0;
    while (indent < l.size() && (l[indent] == ' ' || l[indent] == '\t')) ++indent;
    std::string_view body = l.substr(indent);
    if (body.empty() || body[0] == '#' || body[0] == '!') continue;
    size_t eq = body.find('=');
    Location at{path, line_no, static_cast<int>(indent) + 1};
    if (eq == std::string_view::npos) return ErrorAt(at, "expected 'Name = value'");
    std::string name(TrimWhitespace(body.substr(0, eq)));
    if (name.empty()) return ErrorAt(at, "parameter name missing before '='");
    size_t vstart = eq + 1;
    while (vstart < body.size() && (body[vstart] == ' ' || body[vstart] == '\t')) ++vstart;
    Location vat{path, line_no, static_cast<int>(indent + vstart) + 1};
    std::string raw(TrimWhitespace(body.substr(vstart)));
    ASSIGN_OR_RETURN(AttributeValue compiled, AttributeValue::CompileText(raw, vat));
    if (!compiled.Names().empty()) {
      return ErrorAt(compiled.Names()[0].at, "a parameter file value cannot refer to parameters");
    }
    struct Empty final : Scope {
      StatusOr<Value> Lookup(std::string_view name) const override {
        return NotFoundError(std::string(name));
      }
    } empty;
    ASSIGN_OR_RETURN(Value v, compiled.Evaluate(empty));
    out.emplace_back(name, ParameterValue{std::move(v), at});
  }
  return out;
}

StatusOr<ClusterSpec> AssembleCluster(const TemplateFile& file, const ParameterValues& params,
                                      const std::string& section,
                                      const ParameterValues& overrides) {
  Compiled compiled;
  for (const Section& s : file.sections) RETURN_IF_ERROR(CompileAll(s, compiled));

  // The cluster section.
  std::vector<const Section*> clusters;
  for (const Section& s : file.sections) {
    if (s.type == "cluster") clusters.push_back(&s);
  }
  auto names = [&] {
    std::vector<std::string> n;
    for (const Section* c : clusters) n.push_back(c->name);
    return Join(n, ", ");
  };
  const Section* cluster = nullptr;
  if (clusters.empty()) return InvalidArgumentError(file.path + ": no [cluster NAME] section");
  if (section.empty()) {
    if (clusters.size() > 1) {
      return InvalidArgumentError(file.path + " has " + std::to_string(clusters.size()) +
                                  " [cluster] sections (" + names() + "); choose one with -c");
    }
    cluster = clusters[0];
  } else {
    for (const Section* c : clusters) {
      if (EqualsIgnoreCase(c->name, section)) cluster = c;
    }
    if (cluster == nullptr) {
      return InvalidArgumentError(file.path + " has no [cluster " + section +
                                  "] section; it has: " + names());
    }
  }

  ClusterScope scope(cluster->name, compiled);
  std::vector<ParamDef> defs;
  for (const Section& s : file.sections) CollectParameters(s, defs);
  for (const ParamDef& d : defs) scope.AddParameter(d);
  ClusterSpec spec;
  spec.name = cluster->name;
  spec.at = cluster->at;
  for (const Section& s : file.sections) {
    if (s.type == "noderef" || s.type == "environment") {
      scope.AddDeferred(s.name);
      spec.deferred_names.push_back(s.name);
    }
  }
  // Values given for names the template does not declare are accepted and
  // readable, as CycleCloud's import_cluster -P does (cyclecloud-vFXT's
  // io.txt reads $rawaverejson that only -P gives).
  std::vector<std::string> declared;
  for (const ParamDef& d : defs) declared.push_back(d.name);
  for (const auto& [name, given] : params) {
    if (!scope.Declares(name)) {
      std::string near = ClosestMatch(name, declared);
      return ErrorAt(given.at, "parameter " + name + " is not declared by " + file.path +
                                   (near.empty() ? "" : "; did you mean " + near + "?"));
    }
    RETURN_IF_ERROR(CheckParameterType(*scope.Def(name), given.value, given.at));
    scope.Give(name, given.value);
  }
  for (const auto& [name, given] : overrides) {
    if (!scope.Declares(name)) {
      scope.AddParameter(ParamDef{name, {}, "", true});
    } else {
      RETURN_IF_ERROR(CheckParameterType(*scope.Def(name), given.value, given.at));
    }
    scope.Give(name, given.value);
  }
  // Parameter values (defaults evaluated; types of defaults checked).
  for (const auto& [key, d] : scope.params()) {
    ASSIGN_OR_RETURN(Value v, scope.Lookup(d.name));
    const Attribute* def_attr = d.Find("DefaultValue");
    RETURN_IF_ERROR(CheckParameterType(d, v, def_attr ? def_attr->value_at : d.at()));
    const Attribute* required = d.Find("Required");
    if (required && v.is_undefined() && EqualsIgnoreCase(TrimWhitespace(required->raw), "true")) {
      spec.missing_required.push_back(d.name);
    }
    spec.parameters.emplace_back(d.name, std::move(v));
  }

  // [noderef] and [environment] values only need their names to resolve.
  for (const Section& s : file.sections) {
    if (s.type != "noderef" && s.type != "environment") continue;
    for (const Attribute& a : s.attributes) RETURN_IF_ERROR(EvalAttr(a, compiled, scope).status());
  }
  // The cluster's own attributes.
  {
    std::vector<RawAttr> raw;
    for (const Attribute& a : cluster->attributes) raw.push_back({a.key, &a});
    ASSIGN_OR_RETURN(spec.attributes, EvalAll(raw, compiled, scope));
  }

  // Nodes and nodearrays.
  // Nodes by name. A name written twice (cyclecloud-gluster's
  // .glusterfs_rhel.txt has two [[node defaults]]) is one node: its
  // sections merge in file order.
  std::map<std::string, std::vector<const Section*>> by_name;
  std::vector<std::string> order;
  for (const Section& s : cluster->children) {
    if (s.type != "node" && s.type != "nodearray") continue;
    if (s.name.empty()) return ErrorAt(s.at, "[[" + s.type + "]] needs a name");
    auto& list = by_name[AsciiToLower(s.name)];
    if (!list.empty() && list.front()->type != s.type) {
      return ErrorAt(s.at, s.name + " is a " + list.front()->type + " at " +
                               list.front()->at.ToString() + " and a " + s.type + " here");
    }
    if (list.empty()) order.push_back(AsciiToLower(s.name));
    list.push_back(&s);
  }
  const std::vector<const Section*>* defaults = nullptr;
  if (auto it = by_name.find("defaults"); it != by_name.end()) defaults = &it->second;
  std::map<std::string, RawNode> merged;
  std::set<std::string> in_progress;
  std::function<StatusOr<RawNode>(const std::vector<const Section*>&)> merge =
      [&](const std::vector<const Section*>& sections) -> StatusOr<RawNode> {
    const Section& s = *sections.front();
    std::string key = AsciiToLower(s.name);
    if (auto it = merged.find(key); it != merged.end()) return it->second;
    if (in_progress.count(key)) return ErrorAt(s.at, "Extends of " + s.name + " forms a loop");
    if (in_progress.size() >= 64) {
      return ErrorAt(s.at, "Extends of " + s.name + " is more than 64 nodes deep");
    }
    in_progress.insert(key);
    RawNode raw;
    if (defaults != nullptr && &sections != defaults) {
      ASSIGN_OR_RETURN(RawNode d, merge(*defaults));
      OverlayNode(raw, d);
    }
    const Attribute* extends = nullptr;
    for (const Section* part : sections) {
      if (const Attribute* e = part->Find("Extends")) extends = e;
    }
    if (extends != nullptr) {
      ASSIGN_OR_RETURN(Value v, EvalAttr(*extends, compiled, scope));
      std::vector<Value> parents =
          v.kind() == Value::Kind::kList ? v.list_items() : std::vector<Value>{v};
      for (const Value& p : parents) {
        if (p.is_undefined()) continue;
        if (p.kind() != Value::Kind::kString) {
          return ErrorAt(extends->value_at,
                         "Extends names nodes, got " + std::string(p.KindName()));
        }
        auto it = by_name.find(AsciiToLower(p.string_value()));
        if (it == by_name.end()) {
          return ErrorAt(extends->value_at, "Extends names " + p.string_value() +
                                                ", which is no node of cluster " + cluster->name);
        }
        ASSIGN_OR_RETURN(RawNode parent, merge(it->second));
        OverlayNode(raw, parent);
      }
    }
    // Abstract and Extends belong to the node that says them.
    std::erase_if(raw.attrs, [](const RawAttr& r) {
      return EqualsIgnoreCase(r.key, "Abstract") || EqualsIgnoreCase(r.key, "Extends");
    });
    for (const Section* part : sections) OverlayNode(raw, OwnRaw(*part));
    in_progress.erase(key);
    merged[key] = raw;
    return raw;
  };
  for (const std::string& key : order) {
    const std::vector<const Section*>& sections = by_name[key];
    const Section& s = *sections.front();
    ASSIGN_OR_RETURN(RawNode raw, merge(sections));
    if (&sections == defaults) continue;
    NodeSpec node;
    node.name = s.name;
    node.is_array = s.type == "nodearray";
    node.at = s.at;
    ASSIGN_OR_RETURN(node.attributes, EvalAll(raw.attrs, compiled, scope));
    ASSIGN_OR_RETURN(node.configuration, EvalAll(raw.configuration, compiled, scope));
    for (const RawSub& sub : raw.subs) {
      SubsectionSpec out{sub.type, sub.name, {}};
      ASSIGN_OR_RETURN(out.attributes, EvalAll(sub.attrs, compiled, scope));
      node.subsections.push_back(std::move(out));
    }
    const Value* abstract = FindAttribute(node.attributes, "Abstract");
    if (abstract != nullptr && abstract->Truthy() && !abstract->is_deferred()) continue;
    RETURN_IF_ERROR(CheckCount(node, raw.attrs, "MaxCount", 0));
    RETURN_IF_ERROR(CheckCount(node, raw.attrs, "MaxCoreCount", 0));
    RETURN_IF_ERROR(CheckCount(node, raw.attrs, "Azure.MaxScalesetSize", 1));
    // InitialCount may be a boolean: cyclecloud-slurm's scheduler-ha says
    // `InitialCount = $configuration_slurm_ha_enabled` (false 0, true 1).
    for (auto& [k, v] : node.attributes) {
      if (EqualsIgnoreCase(k, "InitialCount") && v.kind() == Value::Kind::kBool) {
        v = Value::Int(v.bool_value() ? 1 : 0);
      }
    }
    RETURN_IF_ERROR(CheckCount(node, raw.attrs, "InitialCount", 0));
    spec.nodes.push_back(std::move(node));
  }
  return spec;
}

}  // namespace imagesmith::cyclecloud
