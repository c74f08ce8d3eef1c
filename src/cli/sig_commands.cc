// imagesmith sig ...: Compute Galleries, image definitions and image
// versions, as 'az sig', 'az sig image-definition' and 'az sig image-version'.
// Each command builds the ARM request for the resource provider
// (api/resource_providers.h) and prints its answer.
#include <iostream>

#include "base/strings.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "cli/gallery_args.h"
#include "cli/queued_work.h"
#include "gallery/names.h"
#include "gallery/publish.h"
#include "meta/scopes.h"

namespace imagesmith::cli {
namespace {

using gallery::ImageVersion;

std::string Str(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  if (v == nullptr) return "";
  if (v->is_string()) return v->string_value();
  if (v->is_number()) return v->number_text();
  if (v->is_bool()) return v->bool_value() ? "True" : "False";
  return "";
}
const Json& Sub(const Json& obj, std::string_view key) {
  static const Json kEmpty = Json::MakeObject();
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr ? *v : kEmpty;
}

bool Tabular(const CommandContext& ctx) {
  return ctx.format == OutputFormat::kTable || ctx.format == OutputFormat::kTsv;
}

// az's table columns for each resource type.
Json GalleryRow(const Json& g) {
  Json row = Json::MakeObject();
  row.Set("location", Json::String(Str(g, "location")));
  row.Set("name", Json::String(Str(g, "name")));
  row.Set("provisioningState", Json::String(Str(Sub(g, "properties"), "provisioningState")));
  row.Set("resourceGroup", Json::String(Str(g, "resourceGroup")));
  return row;
}
Json DefinitionRow(const Json& d) {
  const Json& p = Sub(d, "properties");
  Json row = Json::MakeObject();
  row.Set("hyperVGeneration", Json::String(Str(p, "hyperVGeneration")));
  row.Set("location", Json::String(Str(d, "location")));
  row.Set("name", Json::String(Str(d, "name")));
  row.Set("offer", Json::String(Str(Sub(p, "identifier"), "offer")));
  row.Set("osState", Json::String(Str(p, "osState")));
  row.Set("osType", Json::String(Str(p, "osType")));
  row.Set("provisioningState", Json::String(Str(p, "provisioningState")));
  row.Set("publisher", Json::String(Str(Sub(p, "identifier"), "publisher")));
  row.Set("resourceGroup", Json::String(Str(d, "resourceGroup")));
  row.Set("sku", Json::String(Str(Sub(p, "identifier"), "sku")));
  return row;
}
Json VersionRow(const Json& v) {
  const Json& p = Sub(v, "properties");
  const Json& pub = Sub(p, "publishingProfile");
  std::string regions;
  const Json& targets = Sub(pub, "targetRegions");
  if (targets.is_array()) {
    for (const Json& t : targets.array_items()) {
      if (!regions.empty()) regions += ", ";
      regions += Str(t, "name") + "=" + Str(t, "regionalReplicaCount");
    }
  }
  Json row = Json::MakeObject();
  row.Set("excludeFromLatest", Json::String(Str(pub, "excludeFromLatest")));
  row.Set("location", Json::String(Str(v, "location")));
  row.Set("name", Json::String(Str(v, "name")));
  row.Set("provisioningState", Json::String(Str(p, "provisioningState")));
  row.Set("publishedDate", Json::String(Str(pub, "publishedDate")));
  row.Set("replicationState", Json::String(Str(Sub(p, "replicationStatus"), "aggregatedState")));
  row.Set("resourceGroup", Json::String(Str(v, "resourceGroup")));
  row.Set("targetRegions", Json::String(regions));
  return row;
}

// Prints one resource or a list, as JSON or as az's table rows.
void PrintResources(const std::vector<Json>& items, bool list, Json (*row)(const Json&),
                    CommandContext& ctx) {
  if (!list) {
    PrintResult(Tabular(ctx) ? row(items[0]) : items[0], ctx);
    return;
  }
  Json out = Json::MakeArray();
  for (const Json& j : items) out.Append(Tabular(ctx) ? row(j) : j);
  PrintResult(out, ctx);
}

// Tags and common options.
StatusOr<std::optional<Json>> OptionalTags(const ParsedArgs& args) {
  if (!args.Has("tags")) return std::optional<Json>();
  ASSIGN_OR_RETURN(Json tags, ParseTagArgs(args.GetAll("tags")));
  return std::optional<Json>(tags);
}
StatusOr<std::optional<Region>> OptionalLocation(const ParsedArgs& args) {
  if (!args.Has("location")) return std::optional<Region>();
  auto r = Region::Parse(args.Get("location"));
  if (!r.ok()) return r.status().WithContext("--location");
  return std::optional<Region>(*r);
}

ResourceId GalleryOf(const ApiClient& c, const ParsedArgs& args) {
  return gallery::GalleryId(c.Group(args.Get("resource-group")), args.Get("gallery-name"));
}
ResourceId DefinitionOf(const ApiClient& c, const ParsedArgs& args) {
  return GalleryOf(c, args).Child("images", args.Get("gallery-image-definition"));
}

// Resource IDs are built from names; check the names before they meet a
// ResourceId so the error is the naming rule, not the ID shape.
Status CheckNames(const ParsedArgs& args, bool definition) {
  RETURN_IF_ERROR(ValidateResourceGroupName(args.Get("resource-group")));
  RETURN_IF_ERROR(gallery::ValidateGalleryName(args.Get("gallery-name")));
  if (definition) {
    RETURN_IF_ERROR(gallery::ValidateImageDefinitionName(args.Get("gallery-image-definition")));
  }
  return Status::Ok();
}

// Runs `request` and prints the resource it answers with (one, or a list).
int CallAndPrint(ApiClient& client, api::Request request, bool list, Json (*row)(const Json&),
                 CommandContext& ctx) {
  auto r = client.Call(std::move(request));
  if (!r.ok()) return ReportError(r.status(), ctx);
  if (list) {
    PrintResources(PrintableItems(*r), true, row, ctx);
  } else {
    PrintResources({Printable(r->body)}, false, row, ctx);
  }
  return 0;
}

int DeleteAndReport(const ParsedArgs& args, CommandContext& ctx, ApiClient& client,
                    const ResourceId& id) {
  Status s = DeleteResource(client, id, args.Has("force"));
  if (!s.ok()) return ReportError(s, ctx);
  return 0;
}

// ---- sig ------------------------------------------------------------------------

int RunGalleryCreate(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, false); !s.ok()) return ReportError(s, ctx);
  auto tags = OptionalTags(args);
  if (!tags.ok()) return ReportError(tags.status(), ctx);
  auto location = OptionalLocation(args);
  if (!location.ok()) return ReportError(location.status(), ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  // Create, or update the description and tags given (az's create-or-update).
  Json body = Json::MakeObject();
  if (location->has_value()) body.Set("location", Json::String((*location)->name()));
  if (tags->has_value()) body.Set("tags", **tags);
  if (args.Has("description")) {
    Json props = Json::MakeObject();
    props.Set("description", Json::String(args.Get("description")));
    body.Set("properties", props);
  }
  return CallAndPrint(*client, MakeRequest(api::Verb::kPut, GalleryOf(*client, args), body), false,
                      GalleryRow, ctx);
}

int RunGalleryShow(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, false); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  return CallAndPrint(*client, MakeRequest(api::Verb::kGet, GalleryOf(*client, args)), false,
                      GalleryRow, ctx);
}

int RunGalleryList(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  ResourceId scope = args.Has("resource-group") ? client->Group(args.Get("resource-group"))
                                                : client->Subscription();
  return CallAndPrint(*client, MakeListRequest(scope, gallery::kGalleryType), true, GalleryRow,
                      ctx);
}

int RunGalleryDelete(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, false); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  return DeleteAndReport(args, ctx, *client, GalleryOf(*client, args));
}

// ---- sig image-definition ---------------------------------------------------------

int RunDefinitionCreate(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, true); !s.ok()) return ReportError(s, ctx);
  auto tags = OptionalTags(args);
  if (!tags.ok()) return ReportError(tags.status(), ctx);
  auto location = OptionalLocation(args);
  if (!location.ok()) return ReportError(location.status(), ctx);
  std::optional<int64_t> eol;
  if (args.Has("end-of-life-date")) {
    auto t = gallery::ParseDateTime("--end-of-life-date", args.Get("end-of-life-date"));
    if (!t.ok()) return ReportError(t.status(), ctx);
    eol = *t;
  }
  // The enums are checked here so the message names the flag.
  auto os_type = gallery::ParseOsType("--os-type", args.Get("os-type"));
  if (!os_type.ok()) return ReportError(os_type.status(), ctx);
  auto os_state = gallery::ParseOsState("--os-state", args.Get("os-state", "Generalized"));
  if (!os_state.ok()) return ReportError(os_state.status(), ctx);
  auto gen =
      gallery::ParseHyperVGeneration("--hyper-v-generation", args.Get("hyper-v-generation", "V1"));
  if (!gen.ok()) return ReportError(gen.status(), ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  Json ident = Json::MakeObject();
  for (const char* part : {"publisher", "offer", "sku"}) {
    if (Status s = gallery::ValidateIdentifierPart(part, args.Get(part)); !s.ok()) {
      return ReportError(s, ctx);
    }
    ident.Set(part, Json::String(args.Get(part)));
  }
  Json props = Json::MakeObject();
  props.Set("identifier", ident);
  props.Set("osType", Json::String(*os_type));
  props.Set("osState", Json::String(*os_state));
  props.Set("hyperVGeneration", Json::String(*gen));
  if (args.Has("description")) props.Set("description", Json::String(args.Get("description")));
  if (eol.has_value()) props.Set("endOfLifeDate", Json::String(gallery::FormatDateTime(*eol)));
  Json body = Json::MakeObject();
  if (location->has_value()) body.Set("location", Json::String((*location)->name()));
  if (tags->has_value()) body.Set("tags", **tags);
  body.Set("properties", props);
  return CallAndPrint(*client, MakeRequest(api::Verb::kPut, DefinitionOf(*client, args), body),
                      false, DefinitionRow, ctx);
}

int RunDefinitionShow(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, true); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  return CallAndPrint(*client, MakeRequest(api::Verb::kGet, DefinitionOf(*client, args)), false,
                      DefinitionRow, ctx);
}

int RunDefinitionList(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, false); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  return CallAndPrint(*client,
                      MakeListRequest(GalleryOf(*client, args), gallery::kImageDefinitionType),
                      true, DefinitionRow, ctx);
}

int RunDefinitionDelete(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, true); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  return DeleteAndReport(args, ctx, *client, DefinitionOf(*client, args));
}

// ---- sig image-version ----------------------------------------------------------------

StatusOr<ResourceId> VersionOf(const ApiClient& c, const ParsedArgs& args) {
  auto v = ImageVersion::Parse(args.Get("gallery-image-version"));
  if (!v.ok()) return v.status().WithContext("--gallery-image-version");
  return DefinitionOf(c, args).Child("versions", v->ToString());
}

// Prints per-region progress on a terminal.
std::function<void(api::ProgressKind, std::string_view)> Progress(CommandContext& ctx) {
  if (!ctx.stderr_is_tty && !ctx.verbose) return {};
  return [&ctx](api::ProgressKind, std::string_view line) { *ctx.err << line << "\n"; };
}

// az's table shows the replication state, which the API returns only with
// $expand=ReplicationStatus; JSON output shows it only with --expand.
void ExpandForTable(api::Request& req, const CommandContext& ctx) {
  if (Tabular(ctx)) req.params["$expand"] = "ReplicationStatus";
}

void PrintVersion(const Json& v, CommandContext& ctx) {
  PrintResult(Tabular(ctx) ? VersionRow(v) : Printable(v), ctx);
}

Json TargetRegionsJson(const std::vector<tmpl::TargetRegion>& targets) {
  Json list = Json::MakeArray();
  for (const tmpl::TargetRegion& t : targets) {
    Json j = Json::MakeObject();
    j.Set("name", Json::String(t.region.name()));
    j.Set("regionalReplicaCount", Json::Int(t.replica_count));
    if (t.storage_account_type.has_value()) {
      j.Set("storageAccountType",
            Json::String(tmpl::StorageAccountTypeName(*t.storage_account_type)));
    }
    list.Append(j);
  }
  return list;
}

// --no-wait: the replication was queued; a worker must run it.
int HandOff(ApiClient& client, const api::Response& r, const api::Request& req,
            CommandContext& ctx) {
  if (req.wait || r.operation_id.empty()) return 0;
  Status s = HandOffQueued(ctx, client.data_dir(), r.operation_id);
  return s.ok() ? 0 : ReportError(s, ctx);
}

int RunVersionCreate(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, true); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto id = VersionOf(*client, args);
  if (!id.ok()) return ReportError(id.status(), ctx);
  auto tags = ParseTagArgs(args.GetAll("tags"));
  if (!tags.ok()) return ReportError(tags.status(), ctx);

  // The source: a managed image ID, or a name in the same group.
  std::string src_text = args.Get("managed-image");
  ResourceId group = client->Group(args.Get("resource-group"));
  StatusOr<ResourceId> src_id =
      StartsWith(src_text, "/") ? ResourceId::Parse(src_text)
                                : StatusOr<ResourceId>(gallery::ManagedImageId(group, src_text));
  if (!src_id.ok()) return ReportError(src_id.status().WithContext("--managed-image"), ctx);
  if (Status t = gallery::CheckIdType(*src_id, gallery::kManagedImageType, "--managed-image");
      !t.ok()) {
    return ReportError(t, ctx);
  }

  Json pub = Json::MakeObject();
  int64_t replica_count = 1;
  if (args.Has("replica-count")) {
    auto n = ParseCountArg("--replica-count", args.Get("replica-count"));
    if (!n.ok()) return ReportError(n.status(), ctx);
    replica_count = *n;
  }
  pub.Set("replicaCount", Json::Int(replica_count));
  if (args.Has("target-regions")) {
    auto targets = ParseTargetRegionArgs(args.GetAll("target-regions"), replica_count);
    if (!targets.ok()) return ReportError(targets.status(), ctx);
    pub.Set("targetRegions", TargetRegionsJson(*targets));
  }
  if (args.Has("storage-account-type")) {
    auto type = gallery::ParseStorageAccountType("--storage-account-type",
                                                 args.Get("storage-account-type"));
    if (!type.ok()) return ReportError(type.status(), ctx);
    pub.Set("storageAccountType", Json::String(*type));
  }
  pub.Set("excludeFromLatest", Json::Bool(args.Has("exclude-from-latest")));
  bool has_eol = args.Has("end-of-life-date");
  if (has_eol) {
    auto t = gallery::ParseDateTime("--end-of-life-date", args.Get("end-of-life-date"));
    if (!t.ok()) return ReportError(t.status(), ctx);
    pub.Set("endOfLifeDate", Json::String(gallery::FormatDateTime(*t)));
  }
  if (args.Has("block-deletion-before-end-of-life") && !has_eol) {
    return ReportError(InvalidArgumentError("--block-deletion-before-end-of-life needs "
                                            "--end-of-life-date: deletion is blocked until that "
                                            "date"),
                       ctx);
  }
  Json safety = Json::MakeObject();
  safety.Set("allowDeletionOfReplicatedLocations",
             Json::Bool(args.Has("allow-replicated-location-deletion")));
  safety.Set("blockDeletionBeforeEndOfLife",
             Json::Bool(args.Has("block-deletion-before-end-of-life")));
  Json source = Json::MakeObject();
  source.Set("id", Json::String(src_id->ToString()));
  Json storage = Json::MakeObject();
  storage.Set("source", source);
  Json props = Json::MakeObject();
  props.Set("publishingProfile", pub);
  props.Set("safetyProfile", safety);
  props.Set("storageProfile", storage);
  Json body = Json::MakeObject();
  body.Set("tags", *tags);
  body.Set("properties", props);

  api::Request req = MakeRequest(api::Verb::kPut, *id, body);
  req.progress = Progress(ctx);
  req.wait = !args.Has("no-wait");
  ExpandForTable(req, ctx);
  auto v = client->Call(req);
  if (!v.ok()) return ReportError(v.status(), ctx);
  PrintVersion(v->body, ctx);
  return HandOff(*client, *v, req, ctx);
}

int RunVersionShow(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, true); !s.ok()) return ReportError(s, ctx);
  api::Request req;
  if (args.Has("expand")) {
    if (!EqualsIgnoreCase(args.Get("expand"), "ReplicationStatus")) {
      return ReportError(InvalidArgumentError("--expand: " + QuoteForMessage(args.Get("expand")) +
                                              " is not allowed; use ReplicationStatus"),
                         ctx);
    }
    req.params["$expand"] = "ReplicationStatus";
  }
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  req.verb = api::Verb::kGet;
  if (EqualsIgnoreCase(args.Get("gallery-image-version"), "latest")) {
    // `latest` in a region: the definition's own unless -l names another.
    if (args.Has("location")) {
      auto l = Region::Parse(args.Get("location"));
      if (!l.ok()) return ReportError(l.status().WithContext("--location"), ctx);
      req.params["location"] = l->name();
    }
    req.id = DefinitionOf(*client, args).Child("versions", "latest");
  } else {
    auto id = VersionOf(*client, args);
    if (!id.ok()) return ReportError(id.status(), ctx);
    req.id = *id;
  }
  ExpandForTable(req, ctx);
  auto v = client->Call(req);
  if (!v.ok()) return ReportError(v.status(), ctx);
  PrintVersion(v->body, ctx);
  return 0;
}

int RunVersionList(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, true); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  api::Request req = MakeListRequest(DefinitionOf(*client, args), gallery::kImageVersionType);
  ExpandForTable(req, ctx);
  auto r = client->Call(req);
  if (!r.ok()) return ReportError(r.status(), ctx);
  Json out = Json::MakeArray();
  for (const Json& v : PrintableItems(*r)) out.Append(Tabular(ctx) ? VersionRow(v) : v);
  PrintResult(out, ctx);
  return 0;
}

// --set PATH=VALUE, for the properties az lets you update on a version.
Status ApplySet(const std::string& item, gallery::VersionUpdate& u, Json& tags) {
  size_t eq = item.find('=');
  if (eq == std::string::npos) {
    return InvalidArgumentError("--set: " + QuoteForMessage(item) + " is not PATH=VALUE");
  }
  std::string path = item.substr(0, eq), value = item.substr(eq + 1);
  std::string p = AsciiToLower(path);
  if (StartsWith(p, "properties.")) p = p.substr(11);
  if (p == "publishingprofile.excludefromlatest") {
    ASSIGN_OR_RETURN(u.exclude_from_latest, ParseBoolArg("--set " + path, value));
  } else if (p == "publishingprofile.endoflifedate") {
    ASSIGN_OR_RETURN(u.end_of_life_us, gallery::ParseDateTime("--set " + path, value));
  } else if (p == "publishingprofile.replicacount") {
    ASSIGN_OR_RETURN(u.replica_count, ParseCountArg("--set " + path, value));
  } else if (p == "safetyprofile.allowdeletionofreplicatedlocations") {
    ASSIGN_OR_RETURN(u.allow_deletion_of_replicated_locations,
                     ParseBoolArg("--set " + path, value));
  } else if (p == "safetyprofile.blockdeletionbeforeendoflife") {
    ASSIGN_OR_RETURN(u.block_deletion_before_end_of_life, ParseBoolArg("--set " + path, value));
  } else if (StartsWith(p, "tags.") && path.size() > 5) {
    tags.Set(path.substr(5), Json::String(value));
    u.tags = tags;
  } else {
    return InvalidArgumentError(
        "--set: property " + QuoteForMessage(path) +
        " cannot be updated on an image version; only publishingProfile.targetRegions (use "
        "--target-regions), publishingProfile.replicaCount, publishingProfile.excludeFromLatest, "
        "publishingProfile.endOfLifeDate, safetyProfile.allowDeletionOfReplicatedLocations, "
        "safetyProfile.blockDeletionBeforeEndOfLife and tags can; to change anything else, "
        "publish a new version");
  }
  return Status::Ok();
}

// The PATCH body for `update`.
Json UpdateBody(const gallery::VersionUpdate& u) {
  Json pub = Json::MakeObject();
  if (u.target_regions) pub.Set("targetRegions", TargetRegionsJson(*u.target_regions));
  if (u.replica_count) pub.Set("replicaCount", Json::Int(*u.replica_count));
  if (u.exclude_from_latest) pub.Set("excludeFromLatest", Json::Bool(*u.exclude_from_latest));
  if (u.end_of_life_us) {
    pub.Set("endOfLifeDate", Json::String(gallery::FormatDateTime(*u.end_of_life_us)));
  }
  Json safety = Json::MakeObject();
  if (u.allow_deletion_of_replicated_locations) {
    safety.Set("allowDeletionOfReplicatedLocations",
               Json::Bool(*u.allow_deletion_of_replicated_locations));
  }
  if (u.block_deletion_before_end_of_life) {
    safety.Set("blockDeletionBeforeEndOfLife", Json::Bool(*u.block_deletion_before_end_of_life));
  }
  Json props = Json::MakeObject();
  props.Set("publishingProfile", pub);
  props.Set("safetyProfile", safety);
  Json body = Json::MakeObject();
  if (u.tags) body.Set("tags", *u.tags);
  body.Set("properties", props);
  return body;
}

int RunVersionUpdate(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, true); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto id = VersionOf(*client, args);
  if (!id.ok()) return ReportError(id.status(), ctx);
  // The version as it is: --set tags.X adds to its tags, and regions without
  // a count take its replicaCount.
  auto current = client->Call(MakeRequest(api::Verb::kGet, *id));
  if (!current.ok()) return ReportError(current.status(), ctx);
  gallery::VersionUpdate u;
  const Json* current_tags = current->body.Find("tags");
  Json tags = current_tags != nullptr ? *current_tags : Json::MakeObject();
  const Json* count =
      Sub(Sub(current->body, "properties"), "publishingProfile").Find("replicaCount");
  int64_t default_count = count != nullptr ? count->AsInt64().value_or(1) : 1;
  for (const std::string& item : args.GetAll("set")) {
    if (Status e = ApplySet(item, u, tags); !e.ok()) return ReportError(e, ctx);
  }
  if (args.Has("replica-count")) {
    auto n = ParseCountArg("--replica-count", args.Get("replica-count"));
    if (!n.ok()) return ReportError(n.status(), ctx);
    u.replica_count = *n;
  }
  if (args.Has("target-regions")) {
    auto targets = ParseTargetRegionArgs(args.GetAll("target-regions"),
                                         u.replica_count.value_or(default_count));
    if (!targets.ok()) return ReportError(targets.status(), ctx);
    u.target_regions = *targets;
  }
  if (args.Has("exclude-from-latest")) {
    auto b = ParseBoolArg("--exclude-from-latest", args.Get("exclude-from-latest"));
    if (!b.ok()) return ReportError(b.status(), ctx);
    u.exclude_from_latest = *b;
  }
  if (args.Has("end-of-life-date")) {
    auto t = gallery::ParseDateTime("--end-of-life-date", args.Get("end-of-life-date"));
    if (!t.ok()) return ReportError(t.status(), ctx);
    u.end_of_life_us = *t;
  }
  if (args.Has("allow-replicated-location-deletion")) {
    auto b = ParseBoolArg("--allow-replicated-location-deletion",
                          args.Get("allow-replicated-location-deletion"));
    if (!b.ok()) return ReportError(b.status(), ctx);
    u.allow_deletion_of_replicated_locations = *b;
  }
  if (args.Has("block-deletion-before-end-of-life")) {
    auto b = ParseBoolArg("--block-deletion-before-end-of-life",
                          args.Get("block-deletion-before-end-of-life"));
    if (!b.ok()) return ReportError(b.status(), ctx);
    u.block_deletion_before_end_of_life = *b;
  }
  if (args.Has("tags")) {
    auto t = ParseTagArgs(args.GetAll("tags"));
    if (!t.ok()) return ReportError(t.status(), ctx);
    u.tags = *t;
  }
  api::Request req = MakeRequest(api::Verb::kPatch, *id, UpdateBody(u));
  req.wait = !args.Has("no-wait");
  ExpandForTable(req, ctx);
  auto v = client->Call(req);
  if (!v.ok()) return ReportError(v.status(), ctx);
  PrintVersion(v->body, ctx);
  return HandOff(*client, *v, req, ctx);
}

int RunVersionDelete(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args, true); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto id = VersionOf(*client, args);
  if (!id.ok()) return ReportError(id.status(), ctx);
  return DeleteAndReport(args, ctx, *client, *id);
}

// ---- registration ---------------------------------------------------------------------

OptionSpec GroupOpt() {
  return {"resource-group", 'g', "GROUP", "Name of the resource group.", false, true};
}
OptionSpec GalleryOpt() {
  return {"gallery-name", 'r', "GALLERY", "Name of the gallery.", false, true};
}
OptionSpec DefinitionOpt() {
  return {"gallery-image-definition",      'i',   "DEFINITION",
          "Name of the image definition.", false, true};
}
OptionSpec VersionOpt() {
  return {"gallery-image-version",
          'e',
          "VERSION",
          "Image version: Major.Minor.Patch, e.g. 1.0.0.",
          false,
          true};
}
OptionSpec TagsOpt() { return {"tags", 0, "KEY=VALUE", "Space-separated tags.", true, false}; }

CommandSpec Spec(std::string path, std::string summary, std::string description,
                 std::vector<OptionSpec> options, std::vector<std::string> examples,
                 std::function<int(const ParsedArgs&, CommandContext&)> run) {
  return CommandSpec{.path = std::move(path),
                     .summary = std::move(summary),
                     .description = std::move(description),
                     .args_usage = "",
                     .min_positionals = 0,
                     .max_positionals = 0,
                     .options = std::move(options),
                     .examples = std::move(examples),
                     .run = std::move(run)};
}

}  // namespace

void RegisterSigCommands(CommandRegistry& registry) {
  registry.AddGroup("sig", "Manage Compute Galleries (galleries, image definitions, versions).");
  registry.AddGroup("sig image-definition", "Manage gallery image definitions.");
  registry.AddGroup("sig image-version", "Manage gallery image versions and their replicas.");
  const OptionSpec location{"location", 'l',  "REGION", "Region; default: the group's.",
                            false,      false};
  const OptionSpec description{"description", 0, "TEXT", "Description.", false, false};
  const OptionSpec yes{"yes", 'y', "", "Do not ask for confirmation (az compatibility)."};
  const OptionSpec force{"force", 0, "",
                         "Delete although Batch pools use it (their next allocation fails)."};

  registry.Add(Spec("sig create", "Create a gallery (or update its description and tags).",
                    "Gallery names are 1-80 letters, digits, underscores and periods, not "
                    "beginning or ending with an underscore or a period.",
                    {GroupOpt(), GalleryOpt(), location, description, TagsOpt()},
                    {"imagesmith sig create -g images -r myGallery"}, RunGalleryCreate));
  registry.Add(Spec("sig show", "Show a gallery.", "", {GroupOpt(), GalleryOpt()},
                    {"imagesmith sig show -g images -r myGallery"}, RunGalleryShow));
  OptionSpec optional_group = GroupOpt();
  optional_group.required = false;
  registry.Add(Spec("sig list", "List galleries (in a group, or everywhere).", "", {optional_group},
                    {"imagesmith sig list -o table"}, RunGalleryList));
  registry.Add(Spec("sig delete", "Delete an empty gallery.",
                    "A gallery that still holds image definitions is not deleted; the error "
                    "lists them.",
                    {GroupOpt(), GalleryOpt(), yes},
                    {"imagesmith sig delete -g images -r myGallery"}, RunGalleryDelete));

  registry.Add(Spec(
      "sig image-definition create", "Create an image definition.",
      "The identity (publisher/offer/sku, --os-type, --os-state, --hyper-v-generation) is fixed "
      "once created and publisher/offer/sku is unique in the gallery. Creating an existing "
      "definition again updates its description, end-of-life date and tags.",
      {GroupOpt(),
       GalleryOpt(),
       DefinitionOpt(),
       {"publisher", 'p', "PUBLISHER", "Publisher of the identifier.", false, true},
       {"offer", 'f', "OFFER", "Offer of the identifier.", false, true},
       {"sku", 's', "SKU", "SKU of the identifier.", false, true},
       {"os-type", 0, "TYPE", "Linux or Windows.", false, true},
       {"os-state", 0, "STATE", "Generalized (default) or Specialized.", false, false},
       {"hyper-v-generation", 0, "GEN", "V1 (default) or V2.", false, false},
       {"end-of-life-date", 0, "DATE", "End of life, e.g. 2027-01-31.", false, false},
       location,
       description,
       TagsOpt()},
      {"imagesmith sig image-definition create -g images -r myGallery -i debian12 --publisher "
       "Contoso --offer Debian --sku 12 --os-type Linux --hyper-v-generation V2"},
      RunDefinitionCreate));
  registry.Add(Spec("sig image-definition show", "Show an image definition.", "",
                    {GroupOpt(), GalleryOpt(), DefinitionOpt()},
                    {"imagesmith sig image-definition show -g images -r myGallery -i debian12"},
                    RunDefinitionShow));
  registry.Add(Spec("sig image-definition list", "List the image definitions of a gallery.", "",
                    {GroupOpt(), GalleryOpt()},
                    {"imagesmith sig image-definition list -g images -r myGallery -o table"},
                    RunDefinitionList));
  registry.Add(Spec("sig image-definition delete", "Delete an image definition without versions.",
                    "A definition that still holds versions is not deleted; the error lists them.",
                    {GroupOpt(), GalleryOpt(), DefinitionOpt(), yes, force},
                    {"imagesmith sig image-definition delete -g images -r myGallery -i debian12"},
                    RunDefinitionDelete));

  const OptionSpec targets{"target-regions",
                           0,
                           "REGION[=COUNT][=TYPE]",
                           "Regions to replicate to, e.g. eastus=2=Standard_LRS westus2. The "
                           "definition's region is always one.",
                           true,
                           false};
  const OptionSpec eol{
      "end-of-life-date", 0, "DATE", "End of life, e.g. 2027-01-31.", false, false};
  registry.Add(Spec(
      "sig image-version create", "Publish an image version from a managed image.",
      "Replicates the image to every target region, home region first. The version is "
      "provisioningState Creating until every replica is Completed; a version counts as latest in "
      "a region only once its replica there is Completed. If the command is interrupted, run it "
      "again (or 'sig image-version update') to finish the replication.",
      {GroupOpt(),
       GalleryOpt(),
       DefinitionOpt(),
       VersionOpt(),
       {"managed-image", 0, "IMAGE", "Source: a managed image's name (same group) or ID.", false,
        true},
       targets,
       {"replica-count", 0, "COUNT", "Default replicas per region (1-100, default 1).", false,
        false},
       {"storage-account-type", 0, "TYPE", "Standard_LRS (default), Standard_ZRS or Premium_LRS.",
        false, false},
       {"exclude-from-latest", 0, "", "Never use this version as latest."},
       eol,
       {"block-deletion-before-end-of-life", 0, "", "Refuse deletion before the end-of-life date."},
       {"allow-replicated-location-deletion", 0, "",
        "Allow removing completed regions later with update."},
       {"no-wait", 0, "",
        "Do not wait for the replication: print the version (Creating) at once and leave the "
        "copying to a worker ('imagesmith operation list --target ID' shows its operation)."},
       TagsOpt()},
      {"imagesmith sig image-version create -g images -r myGallery -i debian12 -e 1.0.0 "
       "--managed-image debian12-img --target-regions eastus=2 westus2=1=Standard_ZRS"},
      RunVersionCreate));
  registry.Add(Spec("sig image-version show", "Show an image version.",
                    "--expand ReplicationStatus adds properties.replicationStatus: the state "
                    "(InProgress, Completed, Failed) of the replica in each target region. "
                    "-e latest shows the version that is latest in a region (-l; default the "
                    "definition's): the highest version not excluded from latest whose replica "
                    "there is Completed.",
                    {GroupOpt(),
                     GalleryOpt(),
                     DefinitionOpt(),
                     VersionOpt(),
                     {"expand", 0, "WHAT", "ReplicationStatus.", false, false},
                     {"location", 'l', "REGION", "With -e latest: the region.", false, false}},
                    {"imagesmith sig image-version show -g images -r myGallery -i debian12 -e "
                     "1.0.0 --expand ReplicationStatus"},
                    RunVersionShow));
  registry.Add(Spec("sig image-version list", "List the versions of an image definition.", "",
                    {GroupOpt(), GalleryOpt(), DefinitionOpt()},
                    {"imagesmith sig image-version list -g images -r myGallery -i debian12 -o "
                     "table"},
                    RunVersionList));
  registry.Add(Spec(
      "sig image-version update", "Update an image version's regions, replicas or flags.",
      "Only target regions, replica counts, excludeFromLatest, endOfLifeDate, the safety profile "
      "and tags can change. New regions are replicated before the command returns; removing a "
      "completed region needs --allow-replicated-location-deletion true. Also finishes an "
      "interrupted replication.",
      {GroupOpt(),
       GalleryOpt(),
       DefinitionOpt(),
       VersionOpt(),
       targets,
       {"replica-count", 0, "COUNT", "Default replicas per region.", false, false},
       {"exclude-from-latest", 0, "BOOL", "true or false.", false, false},
       eol,
       {"allow-replicated-location-deletion", 0, "BOOL", "true or false.", false, false},
       {"block-deletion-before-end-of-life", 0, "BOOL", "true or false.", false, false},
       {"set", 0, "PATH=VALUE", "Set a property, e.g. publishingProfile.excludeFromLatest=true.",
        true, false},
       {"no-wait", 0, "",
        "Do not wait for the replication: print the version (Creating) at once and leave the "
        "copying to a worker ('imagesmith operation list --target ID' shows its operation)."},
       TagsOpt()},
      {"imagesmith sig image-version update -g images -r myGallery -i debian12 -e 1.0.0 "
       "--target-regions eastus westus2 northeurope=2",
       "imagesmith sig image-version update -g images -r myGallery -i debian12 -e 1.0.0 --set "
       "publishingProfile.excludeFromLatest=true"},
      RunVersionUpdate));
  registry.Add(Spec("sig image-version delete", "Delete an image version.",
                    "Refused before the end-of-life date when blockDeletionBeforeEndOfLife is "
                    "set. The image's bytes go at the next store gc.",
                    {GroupOpt(), GalleryOpt(), DefinitionOpt(), VersionOpt(), yes, force},
                    {"imagesmith sig image-version delete -g images -r myGallery -i debian12 -e "
                     "1.0.0"},
                    RunVersionDelete));
}

}  // namespace imagesmith::cli
