// ARM deployment templates: parameters, variables and the imageTemplates
// resources, evaluated and validated.
//
// Positions: values read from the k-th parameters file (or command-line
// pair) keep their own positions, with kFileStride * (k + 1) added to the
// line, so a diagnostic the parser reports against such a value can be
// mapped back to the file it came from (Diagnostic::file).
#include "template/deployment.h"

#include <algorithm>
#include <map>
#include <optional>

#include "base/strings.h"
#include "template/arm_expression.h"
#include "template/reader.h"

namespace imagesmith::tmpl {
namespace {

using internal::FindMember;
using internal::IndexPath;
using internal::MemberPath;

constexpr int kFileStride = 10'000'000;
// Variables and parameter defaults that use each other, this deep.
constexpr size_t kMaxReferenceDepth = 64;
constexpr const char kImageTemplatesType[] = "Microsoft.VirtualMachineImages/imageTemplates";

void ShiftLines(Json& v, int by) {
  if (v.pos.known()) v.pos.line += by;
  if (v.is_array()) {
    for (Json& item : v.array_items()) ShiftLines(item, by);
  } else if (v.is_object()) {
    for (JsonMember& m : v.object_items()) {
      if (m.key_pos.known()) m.key_pos.line += by;
      ShiftLines(m.value, by);
    }
  }
}

// Gives every value without a position the position `pos`.
void FillPositions(Json& v, SourcePos pos) {
  if (!v.pos.known()) v.pos = pos;
  if (v.is_array()) {
    for (Json& item : v.array_items()) FillPositions(item, pos);
  } else if (v.is_object()) {
    for (JsonMember& m : v.object_items()) {
      if (!m.key_pos.known()) m.key_pos = pos;
      FillPositions(m.value, pos);
    }
  }
}

std::string Lower(const std::string& s) { return AsciiToLower(s); }

// A parameter value given from outside the template.
struct GivenValue {
  Json value;
  std::string origin;  // "file.json" or "--parameters a=b", for messages
  SourcePos name_pos;  // where the name is, in shifted coordinates
};

struct Declared {
  std::string name;  // as declared
  const Json* decl = nullptr;
  SourcePos pos;
};

class Deployment {
 public:
  Deployment(Env& env, const Json& doc, const DeploymentInputs& in, const std::string& path)
      : env_(env), doc_(doc), in_(in), path_(path) {}

  LoadResult Run();

 private:
  void Error(SourcePos pos, const std::string& path, std::string message) {
    ctx_.Error(pos, path, std::move(message));
  }
  void ReadDeclarations();
  void ReadGivenParameters();
  void ReadParametersFile(const std::string& file_path);
  void AddParameterObject(const Json& params, const std::string& origin);
  void CheckMissingParameters();
  StatusOr<Json> Parameter(const std::string& name);
  StatusOr<Json> Variable(const std::string& name);
  StatusOr<Json> CheckParameterType(const Declared& d, Json value);
  // Evaluates every expression in `v` (strings and keys). Reports problems
  // at their position with `path`; nullopt when there were any.
  std::optional<Json> Evaluate(const Json& v, const std::string& path);
  StatusOr<Json> EvaluateOrStatus(const Json& v);
  void Finish(LoadResult& r);

  Env& env_;
  const Json& doc_;
  const DeploymentInputs& in_;
  std::string path_;
  internal::Context ctx_;
  arm::ExpressionEnv expr_;
  std::map<std::string, Declared> declared_;     // lower-case name
  std::map<std::string, GivenValue> given_;      // lower-case name
  std::map<std::string, Json> parameter_cache_;  // lower-case name
  std::map<std::string, Json> variable_cache_;   // lower-case name
  std::vector<std::string> in_progress_;         // variables/parameters being evaluated
  std::vector<std::string> origins_;             // index k: file k's name
  std::vector<Diagnostic> extra_;                // about files that could not be read
  // Parameters whose problem is already reported at the declaration or the
  // value; expressions that use them fail quietly (kAborted).
  std::map<std::string, bool> bad_params_;
};

void Deployment::ReadDeclarations() {
  const Json* params = FindMember(doc_, "parameters");
  if (params == nullptr) return;
  if (!params->is_object()) {
    Error(params->pos, "parameters", "expected an object of parameter declarations");
    return;
  }
  for (const JsonMember& m : params->object_items()) {
    std::string path = MemberPath("parameters", m.key);
    if (!m.value.is_object()) {
      Error(m.value.pos, path, "expected a parameter declaration {\"type\": ..., ...}");
      continue;
    }
    if (declared_.count(Lower(m.key)) > 0) {
      Error(m.key_pos, path, "parameter declared twice (names ignore case)");
      continue;
    }
    const Json* type = FindMember(m.value, "type");
    if (type == nullptr || !type->is_string()) {
      Error(type != nullptr ? type->pos : m.value.pos, MemberPath(path, "type"),
            "expected the parameter's type: string, securestring, int, bool, object, "
            "secureObject or array");
      continue;
    }
    static const std::vector<std::string> kTypes = {"string", "securestring", "int",  "bool",
                                                    "object", "secureobject", "array"};
    if (std::none_of(kTypes.begin(), kTypes.end(), [&](const std::string& t) {
          return EqualsIgnoreCase(t, type->string_value());
        })) {
      Error(type->pos, MemberPath(path, "type"),
            "unknown parameter type " + QuoteForMessage(type->string_value()) +
                "; expected string, securestring, int, bool, object, secureObject or array");
      continue;
    }
    declared_[Lower(m.key)] = Declared{m.key, &m.value, m.key_pos};
  }
}

void Deployment::AddParameterObject(const Json& params, const std::string& origin) {
  for (const JsonMember& m : params.object_items()) {
    std::string path = MemberPath("parameters", m.key);
    if (declared_.count(Lower(m.key)) == 0) {
      std::vector<std::string> names;
      for (const auto& [k, d] : declared_) names.push_back(d.name);
      std::string message =
          "parameter " + QuoteForMessage(m.key) + " is not declared in the template";
      std::string guess = ClosestMatch(m.key, names);
      if (!guess.empty()) {
        message += "; did you mean \"" + guess + "\"?";
      } else if (!names.empty()) {
        message += " (it declares " + Join(names, ", ") + ")";
      }
      Error(m.key_pos, path, message);
      continue;
    }
    if (!m.value.is_object()) {
      Error(m.value.pos, path, "expected {\"value\": ...} for the parameter");
      continue;
    }
    if (FindMember(m.value, "reference") != nullptr) {
      Error(m.value.pos, MemberPath(path, "reference"),
            "Key Vault references cannot be resolved by imagesmith; give the value itself");
      continue;
    }
    const Json* value = FindMember(m.value, "value");
    if (value == nullptr) {
      Error(m.value.pos, MemberPath(path, "value"), "required property is missing");
      continue;
    }
    given_[Lower(m.key)] = GivenValue{*value, origin, m.key_pos};
  }
}

void Deployment::ReadParametersFile(const std::string& file_path) {
  int index = static_cast<int>(origins_.size());
  origins_.push_back(file_path);
  int shift = kFileStride * (index + 1);
  auto text = env_.ReadFile(file_path, kMaxTemplateBytes);
  if (!text.ok()) {
    Diagnostic d{Severity::kError,
                 {},
                 "",
                 "cannot read the parameters file: " + text.status().message(),
                 file_path};
    extra_.push_back(d);
    return;
  }
  JsonSyntaxError syntax;
  auto doc = ParseJson(*text, {}, &syntax);
  if (!doc.ok()) {
    SourcePos p = syntax.pos;
    if (p.known()) p.line += shift;
    Error(p, "", "invalid JSON in the parameters file: " + syntax.message);
    return;
  }
  Json params = std::move(*doc);
  ShiftLines(params, shift);
  if (!params.is_object()) {
    Error(params.pos, "", "expected an ARM parameters file {\"parameters\": {...}}");
    return;
  }
  // ARM's format, or az's shorthand: the parameters object alone.
  const Json* inner = FindMember(params, "parameters");
  if (inner != nullptr && FindMember(params, "$schema") != nullptr) {
    if (!inner->is_object()) {
      Error(inner->pos, "parameters", "expected an object of {\"value\": ...} entries");
      return;
    }
    AddParameterObject(*inner, file_path);
  } else if (inner != nullptr && FindMember(*inner, "value") == nullptr) {
    AddParameterObject(*inner, file_path);
  } else {
    AddParameterObject(params, file_path);
  }
}

void Deployment::ReadGivenParameters() {
  for (const std::string& item : in_.parameters) {
    if (StartsWith(item, "@")) {
      ReadParametersFile(item.substr(1));
      continue;
    }
    size_t eq = item.find('=');
    if (!StartsWith(TrimWhitespace(item), "{") && eq != std::string::npos && eq > 0) {
      std::string name = item.substr(0, eq);
      std::string origin = "--parameters " + item.substr(0, std::min<size_t>(item.size(), 80));
      int index = static_cast<int>(origins_.size());
      origins_.push_back(origin);
      SourcePos pos{kFileStride * (index + 1) + 1, 1};
      auto it = declared_.find(Lower(name));
      if (it == declared_.end()) {
        std::vector<std::string> names;
        for (const auto& [k, d] : declared_) names.push_back(d.name);
        std::string guess = ClosestMatch(name, names);
        Error(pos, MemberPath("parameters", name),
              "parameter " + QuoteForMessage(name) + " is not declared in the template" +
                  (guess.empty() ? std::string() : "; did you mean \"" + guess + "\"?"));
        continue;
      }
      // Strings are taken as written; other types are JSON (az does the same).
      std::string type = Lower(FindMember(*it->second.decl, "type")->string_value());
      std::string raw = item.substr(eq + 1);
      Json value;
      if (type == "string" || type == "securestring") {
        value = Json::String(raw);
      } else {
        auto parsed = ParseJson(raw);
        if (!parsed.ok()) {
          Error(pos, MemberPath("parameters", name),
                "parameter " + QuoteForMessage(name) + " is of type " +
                    FindMember(*it->second.decl, "type")->string_value() + "; " +
                    QuoteForMessage(raw) + " is not a JSON value of that type");
          continue;
        }
        value = std::move(*parsed);
        value.pos = {};
      }
      FillPositions(value, pos);
      given_[Lower(name)] = GivenValue{std::move(value), origin, pos};
      continue;
    }
    // Inline JSON: {"name": {"value": ...}} or a whole parameters file.
    int index = static_cast<int>(origins_.size());
    origins_.push_back("--parameters (inline JSON)");
    auto parsed = ParseJson(item);
    SourcePos pos{kFileStride * (index + 1) + 1, 1};
    if (!parsed.ok() || !parsed->is_object()) {
      Error(pos, "", "expected @FILE, NAME=VALUE or a JSON object of {\"value\": ...} entries");
      continue;
    }
    Json params = std::move(*parsed);
    ShiftLines(params, kFileStride * (index + 1));
    const Json* inner = FindMember(params, "parameters");
    AddParameterObject(inner != nullptr && inner->is_object() ? *inner : params, origins_.back());
  }
}

void Deployment::CheckMissingParameters() {
  for (const auto& [key, d] : declared_) {
    if (given_.count(key) > 0 || FindMember(*d.decl, "defaultValue") != nullptr) continue;
    bad_params_[key] = true;
    Error(d.pos, MemberPath("parameters", d.name),
          "parameter " + QuoteForMessage(d.name) +
              " has no value and no defaultValue; give it in a parameters file (--parameters "
              "@FILE.json) or as --parameters " +
              d.name + "=VALUE");
  }
}

StatusOr<Json> Deployment::CheckParameterType(const Declared& d, Json value) {
  std::string type = Lower(FindMember(*d.decl, "type")->string_value());
  bool ok = (type == "string" || type == "securestring")   ? value.is_string()
            : type == "int"                                ? (value.is_number() && value.AsInt64())
            : type == "bool"                               ? value.is_bool()
            : (type == "object" || type == "secureobject") ? value.is_object()
                                                           : value.is_array();
  if (!ok) {
    return InvalidArgumentError("parameter " + QuoteForMessage(d.name) + " is declared as " +
                                FindMember(*d.decl, "type")->string_value() +
                                ", but its value is " + std::string(value.KindDescription()));
  }
  if (const Json* allowed = FindMember(*d.decl, "allowedValues");
      allowed != nullptr && allowed->is_array()) {
    bool found = false;
    for (const Json& a : allowed->array_items()) {
      found = found || (a.Dump(-1) == value.Dump(-1));
    }
    if (!found) {
      return InvalidArgumentError("parameter " + QuoteForMessage(d.name) + " must be one of " +
                                  allowed->Dump(-1) + "; found " + value.Dump(-1));
    }
  }
  return value;
}

StatusOr<Json> Deployment::Parameter(const std::string& name) {
  std::string key = Lower(name);
  if (auto it = parameter_cache_.find(key); it != parameter_cache_.end()) return it->second;
  if (bad_params_.count(key) > 0) {
    return AbortedError("parameter " + QuoteForMessage(name) + " has a problem reported above");
  }
  auto d = declared_.find(key);
  if (d == declared_.end()) {
    std::vector<std::string> names;
    for (const auto& [k, decl] : declared_) names.push_back(decl.name);
    std::string guess = ClosestMatch(name, names);
    return NotFoundError(
        "parameter " + QuoteForMessage(name) + " is not declared" +
        (guess.empty() ? std::string(" in parameters") : "; did you mean \"" + guess + "\"?"));
  }
  Json value;
  if (auto g = given_.find(key); g != given_.end()) {
    value = g->second.value;
  } else if (const Json* def = FindMember(*d->second.decl, "defaultValue")) {
    std::string marker = "parameters('" + d->second.name + "')";
    if (std::find(in_progress_.begin(), in_progress_.end(), marker) != in_progress_.end()) {
      in_progress_.push_back(marker);
      return InvalidArgumentError("circular reference: " + Join(in_progress_, " -> "));
    }
    if (in_progress_.size() >= kMaxReferenceDepth) {
      return ResourceExhaustedError("parameters and variables refer to each other more than " +
                                    std::to_string(kMaxReferenceDepth) + " levels deep");
    }
    in_progress_.push_back(marker);
    bool saved = expr_.allow_utc_now;
    expr_.allow_utc_now = true;  // ARM allows utcNow() and newGuid() only here
    auto v = EvaluateOrStatus(*def);
    expr_.allow_utc_now = saved;
    in_progress_.pop_back();
    if (!v.ok()) {
      return Status(v.status().code(), "in the defaultValue of parameter " +
                                           QuoteForMessage(d->second.name) + ": " +
                                           v.status().message());
    }
    value = std::move(*v);
  } else {
    return NotFoundError("parameter " + QuoteForMessage(d->second.name) + " has no value");
  }
  ASSIGN_OR_RETURN(Json checked, CheckParameterType(d->second, std::move(value)));
  parameter_cache_[key] = checked;
  return checked;
}

StatusOr<Json> Deployment::Variable(const std::string& name) {
  std::string key = Lower(name);
  if (auto it = variable_cache_.find(key); it != variable_cache_.end()) return it->second;
  const Json* vars = FindMember(doc_, "variables");
  const Json* decl = vars != nullptr ? FindMember(*vars, name) : nullptr;
  if (decl == nullptr) {
    std::vector<std::string> names;
    if (vars != nullptr && vars->is_object()) {
      for (const JsonMember& m : vars->object_items()) names.push_back(m.key);
    }
    std::string guess = ClosestMatch(name, names);
    return NotFoundError(
        "variable " + QuoteForMessage(name) + " is not declared" +
        (guess.empty() ? std::string(" in variables") : "; did you mean \"" + guess + "\"?"));
  }
  std::string marker = "variables('" + name + "')";
  if (std::find(in_progress_.begin(), in_progress_.end(), marker) != in_progress_.end()) {
    in_progress_.push_back(marker);
    std::string cycle = Join(in_progress_, " -> ");
    in_progress_.pop_back();
    return InvalidArgumentError("circular reference: " + cycle);
  }
  if (in_progress_.size() >= kMaxReferenceDepth) {
    return ResourceExhaustedError("parameters and variables refer to each other more than " +
                                  std::to_string(kMaxReferenceDepth) + " levels deep");
  }
  in_progress_.push_back(marker);
  auto v = EvaluateOrStatus(*decl);
  in_progress_.pop_back();
  if (!v.ok()) {
    // Errors from inner variables already name them; say where this one is.
    std::string m = v.status().message();
    if (StartsWith(m, "in variable") || StartsWith(m, "in the defaultValue")) return v.status();
    return Status(v.status().code(), "in variable " + QuoteForMessage(name) + " (line " +
                                         std::to_string(decl->pos.line) +
                                         "): " + v.status().message());
  }
  variable_cache_[key] = *v;
  return v;
}

StatusOr<Json> Deployment::EvaluateOrStatus(const Json& v) {
  if (v.is_string()) {
    if (!arm::IsExpression(v.string_value())) {
      Json out = Json::String(v.string_value().substr(StartsWith(v.string_value(), "[[") ? 1 : 0));
      out.pos = v.pos;
      return out;
    }
    ASSIGN_OR_RETURN(Json out, arm::EvaluateString(v.string_value(), expr_));
    FillPositions(out, v.pos);
    return out;
  }
  if (v.is_array()) {
    Json out = Json::MakeArray();
    out.pos = v.pos;
    for (const Json& item : v.array_items()) {
      ASSIGN_OR_RETURN(Json e, EvaluateOrStatus(item));
      out.Append(std::move(e));
    }
    return out;
  }
  if (v.is_object()) {
    if (FindMember(v, "copy") != nullptr && FindMember(v, "copy")->is_array()) {
      return UnimplementedError("copy loops are not supported by imagesmith's ARM evaluator");
    }
    Json out = Json::MakeObject();
    out.pos = v.pos;
    for (const JsonMember& m : v.object_items()) {
      std::string key = m.key;
      if (arm::IsExpression(key)) {
        ASSIGN_OR_RETURN(Json k, arm::EvaluateString(key, expr_));
        if (!k.is_string()) {
          return InvalidArgumentError("the property name " + QuoteForMessage(key) +
                                      " evaluates to " + std::string(k.KindDescription()) +
                                      ", not a string");
        }
        key = k.string_value();
      }
      ASSIGN_OR_RETURN(Json e, EvaluateOrStatus(m.value));
      out.object_items().push_back(JsonMember{key, m.key_pos, std::move(e)});
    }
    return out;
  }
  return v;
}

std::optional<Json> Deployment::Evaluate(const Json& v, const std::string& path) {
  bool ok = true;
  auto report = [&](const Json& at, const std::string& at_path, const std::string& text,
                    const Status& s) {
    ok = false;
    if (s.code() == StatusCode::kAborted) return;  // reported where the problem is
    Error(at.pos, at_path, "cannot evaluate " + QuoteForMessage(text) + ": " + s.message());
    ok = false;
  };
  if (v.is_string()) {
    auto r = EvaluateOrStatus(v);
    if (!r.ok()) {
      report(v, path, v.string_value(), r.status());
      return std::nullopt;
    }
    return std::move(*r);
  }
  Json out;
  if (v.is_array()) {
    out = Json::MakeArray();
    for (size_t i = 0; i < v.array_items().size(); ++i) {
      auto e = Evaluate(v.array_items()[i], IndexPath(path, i));
      if (e) {
        out.Append(std::move(*e));
      } else {
        ok = false;
      }
    }
  } else if (v.is_object()) {
    out = Json::MakeObject();
    for (const JsonMember& m : v.object_items()) {
      std::string key = m.key;
      std::string mpath = MemberPath(path, m.key);
      if (arm::IsExpression(key)) {
        Json key_json = Json::String(key);
        key_json.pos = m.key_pos;
        auto k = EvaluateOrStatus(key_json);
        if (!k.ok()) {
          report(key_json, mpath, key, k.status());
          continue;
        }
        if (!k->is_string()) {
          Error(m.key_pos, mpath,
                "the property name " + QuoteForMessage(key) + " evaluates to " +
                    std::string(k->KindDescription()) + ", not a string");
          ok = false;
          continue;
        }
        key = k->string_value();
      }
      auto e = Evaluate(m.value, mpath);
      if (e) {
        out.object_items().push_back(JsonMember{key, m.key_pos, std::move(*e)});
      } else {
        ok = false;
      }
    }
  } else {
    out = v;
  }
  out.pos = v.pos;
  if (!ok) return std::nullopt;
  return out;
}

LoadResult Deployment::Run() {
  LoadResult r;
  r.is_deployment = true;
  expr_.parameter = [this](const std::string& n) { return Parameter(n); };
  expr_.variable = [this](const std::string& n) { return Variable(n); };
  expr_.now_unix_seconds = in_.now_unix_seconds;
  const DeploymentScope& s = in_.scope;
  std::string group_id =
      "/subscriptions/" + s.subscription_id + "/resourceGroups/" + s.resource_group;
  expr_.resource_group.Set("id", Json::String(group_id));
  expr_.resource_group.Set("name", Json::String(s.resource_group));
  expr_.resource_group.Set("type", Json::String("Microsoft.Resources/resourceGroups"));
  expr_.resource_group.Set("location", Json::String(s.location));
  Json props = Json::MakeObject();
  props.Set("provisioningState", Json::String("Succeeded"));
  expr_.resource_group.Set("properties", props);
  expr_.subscription.Set("id", Json::String("/subscriptions/" + s.subscription_id));
  expr_.subscription.Set("subscriptionId", Json::String(s.subscription_id));
  expr_.subscription.Set("tenantId", Json::String("00000000-0000-0000-0000-000000000000"));
  expr_.subscription.Set("displayName", Json::String("imagesmith"));
  expr_.tenant_id = "00000000-0000-0000-0000-000000000000";
  std::string deployment_name = s.deployment_name;
  if (deployment_name.empty()) {
    deployment_name = path_.substr(path_.find_last_of('/') + 1);
    if (EndsWith(deployment_name, ".json")) deployment_name.resize(deployment_name.size() - 5);
  }
  expr_.deployment.Set("name", Json::String(deployment_name));
  Json dprops = Json::MakeObject();
  dprops.Set("templateLink", Json::MakeObject());
  expr_.deployment.Set("properties", dprops);

  ReadDeclarations();
  ReadGivenParameters();
  CheckMissingParameters();
  // Parameters given but not valid for their declaration are reported at
  // the value, wherever it came from.
  for (const auto& [key, g] : given_) {
    auto checked = CheckParameterType(declared_.at(key), g.value);
    if (!checked.ok()) {
      bad_params_[key] = true;
      Error(g.value.pos, MemberPath("parameters", declared_.at(key).name),
            checked.status().message());
    }
  }
  if (const Json* vars = FindMember(doc_, "variables"); vars != nullptr && !vars->is_object()) {
    Error(vars->pos, "variables", "expected an object of variables");
  }

  const Json* resources = FindMember(doc_, "resources");
  std::vector<std::pair<std::string, const Json*>> list;  // path, resource
  if (resources == nullptr) {
    Error(doc_.pos, "resources", "required property is missing; expected the resources to deploy");
  } else if (resources->is_array()) {
    for (size_t i = 0; i < resources->array_items().size(); ++i) {
      list.emplace_back(IndexPath("resources", i), &resources->array_items()[i]);
    }
  } else if (resources->is_object()) {  // languageVersion 2.0: symbolic names
    for (const JsonMember& m : resources->object_items()) {
      list.emplace_back(MemberPath("resources", m.key), &m.value);
    }
  } else {
    Error(resources->pos, "resources", "expected an array of resources");
  }

  int found = 0;
  for (const auto& [rpath, res] : list) {
    const Json* type = FindMember(*res, "type");
    if (!res->is_object() || type == nullptr || !type->is_string()) {
      Error(res->pos, rpath, "expected a resource with a \"type\"");
      continue;
    }
    auto type_value = Evaluate(*type, MemberPath(rpath, "type"));
    if (!type_value || !type_value->is_string()) continue;
    if (!EqualsIgnoreCase(type_value->string_value(), kImageTemplatesType)) {
      ctx_.Warning(type->pos, MemberPath(rpath, "type"),
                   type_value->string_value() +
                       " is not an image template; imagesmith deploys only "
                       "Microsoft.VirtualMachineImages/imageTemplates resources and leaves it "
                       "out");
      continue;
    }
    ++found;
    if (const Json* cond = FindMember(*res, "condition")) {
      auto c = Evaluate(*cond, MemberPath(rpath, "condition"));
      if (!c) continue;
      if (!c->is_bool()) {
        Error(cond->pos, MemberPath(rpath, "condition"),
              "expected a boolean, found " + std::string(c->KindDescription()));
        continue;
      }
      if (!c->bool_value()) {
        ctx_.Warning(cond->pos, MemberPath(rpath, "condition"),
                     "the condition is false, so this image template is not deployed");
        continue;
      }
    }
    if (const Json* copy = FindMember(*res, "copy")) {
      Error(copy->pos, MemberPath(rpath, "copy"),
            "copy loops are not supported by imagesmith; write one resource per image template");
      continue;
    }
    // The deployment-only members go; the rest is the image template.
    Json stripped = Json::MakeObject();
    stripped.pos = res->pos;
    for (const JsonMember& m : res->object_items()) {
      if (EqualsIgnoreCase(m.key, "condition") || EqualsIgnoreCase(m.key, "dependsOn") ||
          EqualsIgnoreCase(m.key, "comments") || EqualsIgnoreCase(m.key, "metadata")) {
        continue;
      }
      stripped.object_items().push_back(m);
    }
    int errors_before = ctx_.error_count();
    auto evaluated = Evaluate(stripped, rpath);
    if (!evaluated || ctx_.error_count() != errors_before) continue;
    ParseOptions opts = in_.options;
    ParseResult pr = ParseTemplateJson(*evaluated, opts);
    for (Diagnostic& d : pr.diagnostics) {
      d.path = d.path.empty() ? rpath : rpath + "." + d.path;
      if (d.severity == Severity::kError) {
        ctx_.Error(d.pos, d.path, d.message);
      } else {
        ctx_.Warning(d.pos, d.path, d.message);
      }
    }
    if (pr.ok()) {
      LoadedTemplate t{pr.value->name, rpath, std::move(*pr.value)};
      r.templates.push_back(std::move(t));
    }
  }
  if (resources != nullptr && found == 0 && (resources->is_array() || resources->is_object())) {
    Error(resources->pos, "resources",
          "no Microsoft.VirtualMachineImages/imageTemplates resource in this deployment "
          "template");
  }
  Finish(r);
  return r;
}

void Deployment::Finish(LoadResult& r) {
  std::vector<Diagnostic> all = std::move(ctx_.diagnostics());
  for (Diagnostic& d : all) {
    if (d.pos.line > kFileStride) {
      size_t index = static_cast<size_t>(d.pos.line / kFileStride - 1);
      d.file = index < origins_.size() ? origins_[index] : "";
      d.pos.line %= kFileStride;
      if (StartsWith(d.file, "--parameters")) d.pos = {};
    }
  }
  for (Diagnostic& d : extra_) all.push_back(std::move(d));
  std::stable_sort(all.begin(), all.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.file != b.file) return a.file < b.file;
    if (a.pos.line != b.pos.line) return a.pos.line < b.pos.line;
    return a.pos.column < b.pos.column;
  });
  r.diagnostics = std::move(all);
  if (r.error_count() > 0) r.templates.clear();
}

}  // namespace

int LoadResult::error_count() const {
  return static_cast<int>(std::count_if(diagnostics.begin(), diagnostics.end(), [](const auto& d) {
    return d.severity == Severity::kError;
  }));
}

int LoadResult::warning_count() const {
  return static_cast<int>(diagnostics.size()) - error_count();
}

bool IsDeploymentTemplate(const Json& doc) {
  if (!doc.is_object()) return false;
  if (FindMember(doc, "resources") != nullptr) return true;
  const Json* schema = FindMember(doc, "$schema");
  return schema != nullptr && schema->is_string() &&
         AsciiToLower(schema->string_value()).find("deploymenttemplate") != std::string::npos;
}

LoadResult LoadTemplatesFromText(Env& env, std::string_view text, const std::string& path,
                                 const DeploymentInputs& in) {
  JsonSyntaxError syntax;
  auto doc = ParseJson(text, {}, &syntax);
  if (doc.ok() && IsDeploymentTemplate(*doc)) {
    Deployment d(env, *doc, in, path);
    return d.Run();
  }
  LoadResult r;
  ParseResult pr = doc.ok() ? ParseTemplateJson(*doc, in.options) : ParseTemplate(text, in.options);
  if (!in.parameters.empty() && doc.ok()) {
    pr.diagnostics.push_back({Severity::kWarning,
                              {},
                              "",
                              "--parameters applies to ARM deployment templates; this file is a "
                              "single image template, so they are ignored",
                              ""});
  }
  r.diagnostics = std::move(pr.diagnostics);
  if (pr.ok()) r.templates.push_back(LoadedTemplate{pr.value->name, "", std::move(*pr.value)});
  return r;
}

LoadResult LoadTemplates(Env& env, const std::string& path, const DeploymentInputs& in) {
  auto text = env.ReadFile(path, kMaxTemplateBytes);
  if (!text.ok()) {
    LoadResult r;
    std::string message = text.status().message();
    if (text.status().code() == StatusCode::kResourceExhausted) {
      message += " (templates are limited to 4 MiB, as in Azure Resource Manager)";
    }
    r.diagnostics.push_back({Severity::kError, {}, "", message, ""});
    return r;
  }
  return LoadTemplatesFromText(env, *text, path, in);
}

}  // namespace imagesmith::tmpl
