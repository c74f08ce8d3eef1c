#include "template/parser.h"

#include <algorithm>
#include <regex>

#include "base/strings.h"
#include "template/reader.h"

namespace imagesmith::tmpl {

using internal::Context;
using internal::ObjectView;
using internal::TextKind;

const std::vector<std::string>& KnownApiVersions() {
  static const std::vector<std::string> kVersions = {
      "2019-05-01-preview", "2020-02-14", "2021-10-01", "2022-02-14",
      "2022-07-01",         "2023-07-01", "2024-02-01", "2025-10-01"};
  return kVersions;
}

bool IsValidTemplateName(std::string_view name) {
  static const std::regex kName("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$");
  return std::regex_match(name.begin(), name.end(), kName);
}

int ParseResult::error_count() const {
  return static_cast<int>(std::count_if(diagnostics.begin(), diagnostics.end(), [](const auto& d) {
    return d.severity == Severity::kError;
  }));
}

int ParseResult::warning_count() const {
  return static_cast<int>(diagnostics.size()) - error_count();
}

namespace {

const char kIdentityShape[] =
    "a user-assigned identity ID: /subscriptions/{subscriptionId}/resourceGroups/{group}/"
    "providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identity}";
const char kSubnetShape[] =
    "a subnet ID: /subscriptions/{subscriptionId}/resourceGroups/{group}/providers/"
    "Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}";
const char kGroupShape[] =
    "a resource group ID: /subscriptions/{subscriptionId}/resourceGroups/{group}";

// The reference's skeleton writes some object sections as []; read an empty
// array as "not set" and say so.
bool EmptyArrayAsUnset(Context& ctx, const Json* value, const std::string& path) {
  if (value == nullptr || !value->is_array() || !value->array_items().empty()) return false;
  ctx.Warning(value->pos, path, "expected an object; an empty array is read as \"not set\"");
  return true;
}

std::optional<ErrorAction> ReadAction(ObjectView& v, const char* name) {
  auto a = internal::ReadEnum(v, name, false, {"cleanup", "abort"});
  if (!a) return std::nullopt;
  return *a == 0 ? ErrorAction::kCleanup : ErrorAction::kAbort;
}

std::optional<bool> ReadEnabledState(Context& ctx, const Json& value, const std::string& path,
                                     const std::string& what) {
  ObjectView v(ctx, value, path, what, {"state"});
  if (!v.ok()) return std::nullopt;
  auto s = internal::ReadEnum(v, "state", true, {"Enabled", "Disabled"});
  v.Finish();
  if (!s) return std::nullopt;
  return *s == 0;
}

void ReadVmProfile(Context& ctx, const Json& value, const std::string& path, VmProfile& out) {
  ObjectView v(ctx, value, path, "vmProfile",
               {"vmSize", "osDiskSizeGB", "userAssignedIdentities", "vnetConfig"});
  if (!v.ok()) return;
  if (auto size = internal::ReadString(v, "vmSize", false, TextKind::kStructured, true)) {
    static const std::regex kSize("^(standard|basic)_[a-z0-9_]+$", std::regex::icase);
    if (size->empty() || std::regex_match(*size, kSize)) {
      out.vm_size = *size;
    } else {
      ctx.Error(
          v.Get("vmSize")->pos, v.PathOf("vmSize"),
          "expected an Azure VM size such as Standard_D2s_v3, found " + QuoteForMessage(*size));
    }
  }
  if (auto gb = internal::ReadInt(v, "osDiskSizeGB", false, 0, 4095)) out.os_disk_size_gb = *gb;
  if (const Json* ids = v.Get("userAssignedIdentities")) {
    std::string ipath = v.PathOf("userAssignedIdentities");
    if (!internal::ApiAtLeast(ctx, "2021-10-01")) {
      ctx.Error(ids->pos, ipath,
                "vmProfile.userAssignedIdentities needs apiVersion 2021-10-01 or newer (this "
                "template uses " +
                    ctx.api_version + ")");
    } else if (!ids->is_array()) {
      ctx.Error(ids->pos, ipath, "expected an array of " + std::string(kIdentityShape));
    } else {
      const auto& items = ids->array_items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (auto id = internal::ParseResourceIdValue(
                ctx, items[i], internal::IndexPath(ipath, i),
                {"Microsoft.ManagedIdentity/userAssignedIdentities"}, kIdentityShape)) {
          out.user_assigned_identities.push_back(*id);
        }
      }
    }
  }
  if (const Json* vnet = v.Get("vnetConfig")) {
    ObjectView nv(ctx, *vnet, v.PathOf("vnetConfig"), "vnetConfig",
                  {"subnetId", "proxyVmSize", "containerInstanceSubnetId"});
    if (nv.ok()) {
      VnetConfig cfg;
      cfg.subnet_id = internal::ReadResourceId(
          nv, "subnetId", false, {"Microsoft.Network/virtualNetworks/subnets"}, kSubnetShape);
      cfg.proxy_vm_size =
          internal::ReadString(nv, "proxyVmSize", false, TextKind::kStructured, true).value_or("");
      cfg.container_instance_subnet_id =
          internal::ReadResourceId(nv, "containerInstanceSubnetId", false,
                                   {"Microsoft.Network/virtualNetworks/subnets"}, kSubnetShape);
      nv.Finish();
      out.vnet_config = cfg;
    }
  }
  v.Finish();
}

void ReadValidate(Context& ctx, const Json& value, const std::string& path, Validation& out) {
  if (value.is_object() && value.object_items().empty()) return;
  ObjectView v(ctx, value, path, "validate",
               {"continueDistributeOnFailure", "sourceValidationOnly", "inVMValidations"});
  if (!v.ok()) return;
  out.continue_distribute_on_failure =
      internal::ReadBool(v, "continueDistributeOnFailure", false).value_or(false);
  out.source_validation_only = internal::ReadBool(v, "sourceValidationOnly", false).value_or(false);
  if (const Json* list = v.Get("inVMValidations")) {
    std::string lpath = v.PathOf("inVMValidations");
    if (!list->is_array()) {
      ctx.Error(list->pos, lpath, "expected an array of validators");
    } else {
      const auto& items = list->array_items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (auto step = internal::ParseStep(ctx, items[i], internal::IndexPath(lpath, i), true)) {
          out.in_vm_validations.push_back(std::move(*step));
        }
      }
    }
  }
  v.Finish();
}

void ReadIdentity(Context& ctx, const Json& value, std::optional<ResourceId>& out) {
  if (value.is_object() && value.object_items().empty()) return;  // the reference's skeleton
  ObjectView v(ctx, value, "identity", "identity", {"type", "userAssignedIdentities"});
  if (!v.ok()) return;
  v.AddReadOnly({"principalId", "tenantId"});
  auto type = internal::ReadEnum(v, "type", true, {"UserAssigned", "None"});
  const Json* ids = v.Get("userAssignedIdentities");
  std::string ipath = v.PathOf("userAssignedIdentities");
  if (type && *type == 1) {
    if (ids != nullptr && ids->is_object() && !ids->object_items().empty()) {
      ctx.Error(ids->pos, ipath, "identity type None takes no userAssignedIdentities");
    }
  } else if (type) {
    if (ids == nullptr) {
      ctx.Error(v.pos(), ipath,
                "required property is missing; expected an object with exactly one "
                "user-assigned identity ID as its key");
    } else if (!ids->is_object()) {
      ctx.Error(ids->pos, ipath,
                "expected an object with exactly one user-assigned identity ID as its key, "
                "found " +
                    std::string(ids->KindDescription()));
    } else if (ids->object_items().size() != 1) {
      ctx.Error(ids->pos, ipath,
                "Image Builder supports exactly one user-assigned identity; found " +
                    std::to_string(ids->object_items().size()));
    } else {
      const JsonMember& m = ids->object_items()[0];
      Json key = Json::String(m.key);
      key.pos = m.key_pos;
      std::string kpath = internal::MemberPath(ipath, m.key);
      auto id = internal::ParseResourceIdValue(
          ctx, key, kpath, {"Microsoft.ManagedIdentity/userAssignedIdentities"}, kIdentityShape);
      if (!m.value.is_object()) {
        ctx.Error(m.value.pos, kpath, "expected an empty object {}");
      } else if (id) {
        out = *id;
      }
    }
  }
  v.Finish();
}

void ReadProperties(Context& ctx, const Json& value, ImageTemplate& t, bool& have_source) {
  ObjectView v(
      ctx, value, "properties", "the template's properties",
      {"buildTimeoutInMinutes", "customize", "errorHandling", "distribute", "optimize", "source",
       "stagingResourceGroup", "validate", "vmProfile", "autoRun", "managedResourceTags"});
  if (!v.ok()) return;
  v.AddReadOnly(
      {"provisioningState", "provisioningError", "lastRunStatus", "exactStagingResourceGroup"});

  if (auto minutes = internal::ReadInt(v, "buildTimeoutInMinutes", false, 0, 960)) {
    if (*minutes == 0) {
      t.build_timeout_minutes = 240;
    } else if (*minutes < 6) {
      ctx.Error(v.Get("buildTimeoutInMinutes")->pos, v.PathOf("buildTimeoutInMinutes"),
                "expected 0 (the default, 240 minutes) or 6 to 960 minutes, found " +
                    std::to_string(*minutes));
    } else {
      t.build_timeout_minutes = *minutes;
    }
  }

  if (const Json* list = v.Get("customize")) {
    std::string lpath = v.PathOf("customize");
    if (!list->is_array()) {
      ctx.Error(list->pos, lpath,
                "expected an array of customizers, found " + std::string(list->KindDescription()));
    } else {
      const auto& items = list->array_items();
      for (size_t i = 0; i < items.size(); ++i) {
        if (auto step = internal::ParseStep(ctx, items[i], internal::IndexPath(lpath, i), false)) {
          t.customize.push_back(std::move(*step));
        }
      }
    }
  }

  if (const Json* eh = v.Get("errorHandling");
      eh != nullptr && !EmptyArrayAsUnset(ctx, eh, v.PathOf("errorHandling"))) {
    ObjectView ev(ctx, *eh, v.PathOf("errorHandling"), "errorHandling",
                  {"onCustomizerError", "onValidationError"});
    if (ev.ok()) {
      t.error_handling_given = true;
      if (auto a = ReadAction(ev, "onCustomizerError")) t.error_handling.on_customizer_error = *a;
      if (auto a = ReadAction(ev, "onValidationError")) t.error_handling.on_validation_error = *a;
      ev.Finish();
    }
  }

  if (const Json* list = v.Get("distribute")) {
    std::string lpath = v.PathOf("distribute");
    if (!list->is_array()) {
      ctx.Error(list->pos, lpath,
                "expected an array of distribution targets, found " +
                    std::string(list->KindDescription()));
    } else {
      const auto& items = list->array_items();
      for (size_t i = 0; i < items.size(); ++i) {
        std::string ipath = internal::IndexPath(lpath, i);
        // Uniqueness is checked on the raw names so a target with other
        // errors still takes part.
        const Json* name = internal::FindMember(items[i], "runOutputName");
        if (name != nullptr && name->is_string()) {
          for (size_t j = 0; j < i; ++j) {
            const Json* other = internal::FindMember(items[j], "runOutputName");
            if (other != nullptr && other->is_string() &&
                EqualsIgnoreCase(other->string_value(), name->string_value())) {
              ctx.Error(name->pos, internal::MemberPath(ipath, "runOutputName"),
                        "runOutputName " + QuoteForMessage(name->string_value()) +
                            " is already used by distribute[" + std::to_string(j) +
                            "] (names ignore case); each target needs its own");
              break;
            }
          }
        }
        if (auto d = internal::ParseDistribution(ctx, items[i], ipath)) {
          t.distribute.push_back(std::move(*d));
        }
      }
      if (items.empty()) {
        ctx.Warning(list->pos, lpath,
                    "no distribution targets: the built disk is kept only in the run's "
                    "directory");
      }
    }
  }

  if (const Json* opt = v.Get("optimize");
      opt != nullptr && !EmptyArrayAsUnset(ctx, opt, v.PathOf("optimize"))) {
    ObjectView ov(ctx, *opt, v.PathOf("optimize"), "optimize", {"vmBoot"});
    if (ov.ok()) {
      if (const Json* boot = ov.Get("vmBoot")) {
        t.optimize_vm_boot = ReadEnabledState(ctx, *boot, ov.PathOf("vmBoot"), "optimize.vmBoot");
      }
      ov.Finish();
    }
  }

  if (const Json* src = v.Get("source")) {
    have_source = true;
    if (auto s = internal::ParseSource(ctx, *src, v.PathOf("source"))) t.source = std::move(*s);
  } else {
    ctx.Error(v.pos(), v.PathOf("source"),
              "required property is missing; expected the image to start from, e.g. "
              "{\"type\": \"PlatformImage\", \"publisher\": \"Debian\", \"offer\": \"debian-12\", "
              "\"sku\": \"12\", \"version\": \"latest\"}");
  }

  if (const Json* rg = v.Get("stagingResourceGroup")) {
    if (!(rg->is_string() && rg->string_value().empty())) {
      t.staging_resource_group =
          internal::ParseResourceIdValue(ctx, *rg, v.PathOf("stagingResourceGroup"),
                                         {"Microsoft.Resources/resourceGroups"}, kGroupShape);
    }
  }

  if (const Json* val = v.Get("validate"))
    ReadValidate(ctx, *val, v.PathOf("validate"), t.validate);
  if (t.validate.source_validation_only && !t.customize.empty()) {
    ctx.Error(v.Get("validate")->pos, "properties.validate.sourceValidationOnly",
              "sourceValidationOnly validates the source image as it is, so customize must be "
              "empty; remove the customizers or set sourceValidationOnly to false");
  }
  if (const Json* vp = v.Get("vmProfile"))
    ReadVmProfile(ctx, *vp, v.PathOf("vmProfile"), t.vm_profile);
  if (const Json* ar = v.Get("autoRun")) {
    t.auto_run = ReadEnabledState(ctx, *ar, v.PathOf("autoRun"), "autoRun");
  }
  if (auto tags = internal::ReadTags(v, "managedResourceTags")) t.managed_resource_tags = *tags;
  v.Finish();
}

ParseResult FromContext(Context& ctx, std::optional<ImageTemplate> t) {
  ParseResult r;
  std::stable_sort(ctx.diagnostics().begin(), ctx.diagnostics().end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     if (!a.pos.known() || !b.pos.known()) return a.pos.known() < b.pos.known();
                     return a.pos.line != b.pos.line ? a.pos.line < b.pos.line
                                                     : a.pos.column < b.pos.column;
                   });
  r.diagnostics = std::move(ctx.diagnostics());
  if (ctx.error_count() == 0) r.value = std::move(t);
  return r;
}

// The REST specification's examples wrap the request body as
// {"parameters": {"parameters": BODY, "api-version": ..., ...}}. Returns the
// body and fills `api_version` / `name` from the wrapper, or nullptr when
// `root` is not such a wrapper.
const Json* UnwrapRestExample(const Json& root, std::string& api_version, std::string& name) {
  if (!root.is_object() || internal::FindMember(root, "properties") != nullptr ||
      internal::FindMember(root, "resources") != nullptr) {
    return nullptr;
  }
  const Json* outer = internal::FindMember(root, "parameters");
  if (outer == nullptr || !outer->is_object()) return nullptr;
  const Json* body = internal::FindMember(*outer, "parameters");
  if (body == nullptr || !body->is_object()) return nullptr;
  if (const Json* api = internal::FindMember(*outer, "api-version");
      api != nullptr && api->is_string()) {
    api_version = api->string_value();
  }
  if (const Json* n = internal::FindMember(*outer, "imageTemplateName");
      n != nullptr && n->is_string()) {
    name = n->string_value();
  }
  return body;
}

}  // namespace

ParseResult ParseTemplate(std::string_view text, const ParseOptions& options) {
  Context ctx;
  JsonSyntaxError syntax;
  auto doc = ParseJson(text, {}, &syntax);
  if (!doc.ok()) {
    ctx.Error(syntax.pos, "", "invalid JSON: " + syntax.message);
    return FromContext(ctx, std::nullopt);
  }
  return ParseTemplateJson(*doc, options);
}

ParseResult ParseTemplateJson(const Json& document, const ParseOptions& options) {
  Context ctx;
  ParseOptions opts = options;
  const Json* body = &document;
  if (const Json* inner = UnwrapRestExample(document, opts.default_api_version, opts.name)) {
    body = inner;
  }
  const Json& root = *body;
  ObjectView v(ctx, root, "", "an image template",
               {"type", "apiVersion", "location", "tags", "identity", "properties", "name"});
  if (!v.ok()) return FromContext(ctx, std::nullopt);
  v.AddReadOnly({"id", "systemData"});
  v.AddIgnored({"dependsOn", "comments"},
               "ARM deployment property; imagesmith has nothing to order or document it against "
               "and ignores it");

  // "type" is read-only in the REST specification, and request bodies for
  // 'az resource create --is-full-object' leave it out or shorten it.
  if (auto type = internal::ReadString(v, "type", false)) {
    if (EqualsIgnoreCase(*type, "Microsoft.VirtualMachineImages")) {
      ctx.Warning(v.Get("type")->pos, "type",
                  std::string("read as \"") + ImageTemplate::kType +
                      "\" (type is read-only in request bodies; the full type names the "
                      "resource type too)");
    } else if (!EqualsIgnoreCase(*type, ImageTemplate::kType)) {
      ctx.Error(v.Get("type")->pos, "type",
                std::string("expected \"") + ImageTemplate::kType + "\", found " +
                    QuoteForMessage(*type));
    }
  }
  std::string api_version;
  const auto& known = KnownApiVersions();
  auto find_known = [&](const std::string& api) {
    return std::find_if(known.begin(), known.end(),
                        [&](const std::string& k) { return EqualsIgnoreCase(k, api); });
  };
  if (v.Get("apiVersion") == nullptr) {
    std::string fallback =
        opts.default_api_version.empty() ? known.back() : opts.default_api_version;
    if (auto it = find_known(fallback); it != known.end()) {
      api_version = *it;
      ctx.api_version = *it;
      if (opts.default_api_version.empty()) {
        ctx.Warning(root.pos, "apiVersion",
                    "not given; read as " + *it +
                        ", the newest API version (give apiVersion or --api-version to choose)");
      }
    } else {
      ctx.Error(root.pos, "apiVersion",
                "unknown API version " + QuoteForMessage(fallback) + "; expected one of " +
                    Join(known, ", "));
    }
  } else if (auto api = internal::ReadString(v, "apiVersion", true)) {
    auto it = find_known(*api);
    if (it == known.end()) {
      ctx.Error(
          v.Get("apiVersion")->pos, "apiVersion",
          "unknown apiVersion " + QuoteForMessage(*api) + "; expected one of " + Join(known, ", "));
    } else {
      api_version = *it;
      ctx.api_version = *it;
    }
  }
  std::optional<Region> location = internal::ReadRegion(v, "location", true, true);
  // The model needs a location and source to exist; when they are missing the
  // errors above already doom the result, so any stand-in will do.
  ImageTemplate t(location ? *location : *Region::Parse("eastus"), PlatformImageSource{});
  t.api_version = api_version;
  if (!opts.name.empty() && v.Get("name") == nullptr) t.name = opts.name;
  if (auto name = internal::ReadString(v, "name", false)) {
    if (IsValidTemplateName(*name)) {
      t.name = *name;
    } else {
      ctx.Error(v.Get("name")->pos, "name",
                "expected 1-64 letters, digits, '.', '_' or '-', starting with a letter or "
                "digit, found " +
                    QuoteForMessage(*name));
    }
  }
  if (auto tags = internal::ReadTags(v, "tags")) t.tags = std::move(*tags);
  const Json* identity = v.Get("identity");
  if (identity != nullptr) ReadIdentity(ctx, *identity, t.identity);
  bool identity_missing =
      identity == nullptr || (identity->is_object() && identity->object_items().empty());
  if (identity_missing && internal::StrictCase(ctx)) {
    ctx.Error(identity != nullptr ? identity->pos : root.pos, "identity",
              "required since API version " + std::string(internal::kStrictApiVersion) +
                  " (this template uses " + api_version +
                  "); give the user-assigned identity Image Builder runs as: {\"type\": "
                  "\"UserAssigned\", \"userAssignedIdentities\": {\"/subscriptions/"
                  "{subscriptionId}/resourceGroups/{group}/providers/"
                  "Microsoft.ManagedIdentity/userAssignedIdentities/{identity}\": {}}}");
  }
  bool have_source = false;
  if (const Json* props = v.Get("properties")) {
    ReadProperties(ctx, *props, t, have_source);
  } else {
    ctx.Error(root.pos, "properties",
              "required property is missing; expected an object with at least source");
  }
  v.Finish();
  return FromContext(ctx, std::move(t));
}

ParseResult ParseTemplateFile(Env& env, const std::string& path, const ParseOptions& options) {
  auto text = env.ReadFile(path, kMaxTemplateBytes);
  if (!text.ok()) {
    ParseResult r;
    std::string message = text.status().message();
    if (text.status().code() == StatusCode::kResourceExhausted) {
      message += " (templates are limited to 4 MiB, as in Azure Resource Manager)";
    }
    r.diagnostics.push_back({Severity::kError, {}, "", message, ""});
    return r;
  }
  return ParseTemplate(*text, options);
}

}  // namespace imagesmith::tmpl
