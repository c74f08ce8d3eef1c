// imagesmith image builder ...: az image builder's command surface, for people
// who script az. The template is assembled from az's flags (--image-source,
// --scripts, --managed-image-destinations, ...), validated by the template
// parser like any file, and stored through the image-template commands' own
// code (image_template_ops.h). --defer keeps the template in a local cache
// (DATA/deferred/GROUP/NAME.json) so customizers and outputs can be added
// before 'image builder update' creates it, as az keeps it in its cache.
#include <unistd.h>

#include <iostream>
#include <thread>

#include "base/strings.h"
#include "cli/command.h"
#include "cli/data.h"
#include "cli/image_template_ops.h"
#include "cli/template_input.h"
#include "template/parser.h"

namespace imagesmith::cli {
namespace {

constexpr const char kDefaultApiVersion[] = "2022-07-01";

std::string DeferredPath(const Data& d, const std::string& group, const std::string& name) {
  return d.dir + "/deferred/" + AsciiToLower(group) + "/" + name + ".json";
}

std::string CurrentDir() {
  char buf[4096];
  return ::getcwd(buf, sizeof buf) != nullptr ? std::string(buf) : ".";
}

// Validates `j` as a template; prints diagnostics. nullopt when invalid.
std::optional<tmpl::ImageTemplate> Check(const Json& j, CommandContext& ctx,
                                         const std::string& what) {
  tmpl::ParseResult r = tmpl::ParseTemplate(j.Dump(2));
  for (const tmpl::Diagnostic& d : r.diagnostics) *ctx.err << d.Format(what) << "\n";
  if (!r.ok()) {
    *ctx.err << "ERROR: the image template is not valid (" << r.error_count() << " error(s))\n";
    return std::nullopt;
  }
  return std::move(r.value);
}

// The template being edited: the deferred copy when --defer is given (or
// when one exists), otherwise the stored template.
struct Working {
  Json json;
  std::string dir;
  bool deferred = false;
};

StatusOr<Working> LoadWorking(Data& data, const ParsedArgs& args, CommandContext& ctx) {
  std::string group = args.Get("resource-group");
  std::string name = args.Get("name");
  std::string path = DeferredPath(data, group, name);
  if (args.Has("defer") || ctx.env->FileExists(path)) {
    auto text = ctx.env->ReadFile(path, tmpl::kMaxTemplateBytes);
    if (text.ok()) {
      ASSIGN_OR_RETURN(Json j, ParseJson(*text));
      Json dir = j.Find("imagesmithTemplateDir") != nullptr ? *j.Find("imagesmithTemplateDir")
                                                            : Json::String(CurrentDir());
      Json clean = Json::MakeObject();
      for (const JsonMember& m : j.object_items()) {
        if (m.key != "imagesmithTemplateDir") clean.Set(m.key, m.value);
      }
      return Working{clean, dir.is_string() ? dir.string_value() : CurrentDir(), true};
    }
    if (args.Has("defer")) {
      return NotFoundError("no deferred image template '" + name + "' in resource group '" + group +
                           "'; create one with 'imagesmith image builder create --defer'");
    }
  }
  ASSIGN_OR_RETURN(api::Local * local, OpenApi(ctx));
  ASSIGN_OR_RETURN(itops::Stored s, itops::GetStored(*local, group, name));
  return Working{s.template_json, s.template_dir, false};
}

// Validates and saves the working template: to the deferred cache, or to the
// stored template (replacing its definition).
int SaveWorking(Data& data, const ParsedArgs& args, CommandContext& ctx, const Working& w) {
  auto t = Check(w.json, ctx, args.Get("name"));
  if (!t) return 1;
  std::string group = args.Get("resource-group");
  std::string name = args.Get("name");
  if (w.deferred) {
    Json out = t->ToJson();
    Json saved = out;
    saved.Set("imagesmithTemplateDir", Json::String(w.dir));
    std::string path = DeferredPath(data, group, name);
    Status s = ctx.env->CreateDirs(Dirname(path));
    if (s.ok()) s = ctx.env->WriteFileAtomic(path, saved.Dump(2));
    if (!s.ok()) return ReportError(s, ctx);
    PrintResult(out, ctx);
    return 0;
  }
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  Status s = itops::Put(**local, group, name, *t, w.dir, true);
  if (!s.ok()) return ReportApiError(s, ctx);
  return itops::Show(args, ctx);
}

Json& Props(Json& t) {
  if (t.Find("properties") == nullptr) t.Set("properties", Json::MakeObject());
  return *t.Find("properties");
}

Json& ListIn(Json& props, const char* key) {
  if (props.Find(key) == nullptr || !props.Find(key)->is_array()) props.Set(key, Json::MakeArray());
  return *props.Find(key);
}

// --image-source: a URN publisher:offer:sku:version, a managed image ID or a
// gallery image version ID, as az takes it.
StatusOr<Json> SourceFromFlag(const std::string& v) {
  Json s = Json::MakeObject();
  std::vector<std::string> urn = Split(v, ':');
  if (urn.size() == 4) {
    s.Set("type", Json::String("PlatformImage"));
    s.Set("publisher", Json::String(urn[0]));
    s.Set("offer", Json::String(urn[1]));
    s.Set("sku", Json::String(urn[2]));
    s.Set("version", Json::String(urn[3]));
    return s;
  }
  std::string lower = AsciiToLower(v);
  if (lower.find("/providers/microsoft.compute/galleries/") != std::string::npos) {
    s.Set("type", Json::String("SharedImageVersion"));
    s.Set("imageVersionId", Json::String(v));
    return s;
  }
  if (lower.find("/providers/microsoft.compute/images/") != std::string::npos) {
    s.Set("type", Json::String("ManagedImage"));
    s.Set("imageId", Json::String(v));
    return s;
  }
  return InvalidArgumentError("--image-source " + QuoteForMessage(v) +
                              ": expected a URN PUBLISHER:OFFER:SKU:VERSION (e.g. "
                              "Debian:debian-12:12:latest), a managed image ID or a gallery "
                              "image version ID");
}

Json ScriptCustomizer(const std::string& uri) {
  Json c = Json::MakeObject();
  bool ps = EndsWith(AsciiToLower(uri), ".ps1");
  c.Set("type", Json::String(ps ? "PowerShell" : "Shell"));
  std::string base = uri.substr(uri.find_last_of('/') + 1);
  c.Set("name", Json::String(base.empty() ? uri : base));
  c.Set("scriptUri", Json::String(uri));
  return c;
}

std::string ImageId(const Data& d, const std::string& group, const std::string& name_or_id) {
  if (StartsWith(name_or_id, "/")) return name_or_id;
  return d.Group(group).ToString() + "/providers/Microsoft.Compute/images/" + name_or_id;
}

std::string GalleryImageId(const Data& d, const std::string& group, const std::string& gallery,
                           const std::string& definition) {
  return d.Group(group).ToString() + "/providers/Microsoft.Compute/galleries/" + gallery +
         "/images/" + definition;
}

Json TargetRegions(const std::vector<std::string>& regions) {
  Json a = Json::MakeArray();
  for (const std::string& r : regions) {
    Json o = Json::MakeObject();
    o.Set("name", Json::String(r));
    o.Set("replicaCount", Json::Int(1));
    a.Append(std::move(o));
  }
  return a;
}

// --managed-image-destinations IMAGE=LOCATION ... and
// --shared-image-destinations GALLERY/DEFINITION=REGION[,REGION...] ...
Status AddDestinations(const Data& d, const ParsedArgs& args, const std::string& group,
                       Json& distribute) {
  for (const std::string& item : args.GetAll("managed-image-destinations")) {
    size_t eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return InvalidArgumentError("--managed-image-destinations " + QuoteForMessage(item) +
                                  ": expected IMAGE=LOCATION (an image name or ID)");
    }
    std::string image = item.substr(0, eq);
    Json o = Json::MakeObject();
    o.Set("type", Json::String("ManagedImage"));
    o.Set("imageId", Json::String(ImageId(d, group, image)));
    o.Set("location", Json::String(item.substr(eq + 1)));
    o.Set("runOutputName", Json::String(image.substr(image.find_last_of('/') + 1)));
    distribute.Append(std::move(o));
  }
  for (const std::string& item : args.GetAll("shared-image-destinations")) {
    size_t eq = item.rfind('=');
    std::vector<std::string> gd = Split(item.substr(0, eq == std::string::npos ? 0 : eq), '/');
    if (eq == std::string::npos || gd.size() != 2 || gd[0].empty() || gd[1].empty()) {
      return InvalidArgumentError("--shared-image-destinations " + QuoteForMessage(item) +
                                  ": expected GALLERY/DEFINITION=REGION[,REGION...]");
    }
    Json o = Json::MakeObject();
    o.Set("type", Json::String("SharedImage"));
    o.Set("galleryImageId", Json::String(GalleryImageId(d, group, gd[0], gd[1])));
    o.Set("runOutputName", Json::String(gd[1]));
    o.Set("targetRegions", TargetRegions(Split(item.substr(eq + 1), ',')));
    distribute.Append(std::move(o));
  }
  return Status::Ok();
}

int RunCreate(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  std::string group = args.Get("resource-group");
  std::string name = args.Get("name");
  Json t = Json::MakeObject();
  std::string dir = CurrentDir();
  if (args.Has("image-template")) {
    // A template file, in any shape 'template validate' reads; flags add to it.
    auto in = TemplateInputs(args, ctx, &*data, group);
    if (!in.ok()) return ReportError(in.status(), ctx);
    auto list = LoadTemplatesOrReport(args.Get("image-template"), *in, ctx);
    if (!list) return 1;
    if (list->size() != 1) {
      *ctx.err << "ERROR: --image-template holds " << list->size() << " image templates\n";
      return 1;
    }
    t = (*list)[0].value.ToJson();
    dir = Dirname(args.Get("image-template"));
    if (!StartsWith(dir, "/")) dir = CurrentDir() + "/" + dir;
  } else {
    t.Set("type", Json::String("Microsoft.VirtualMachineImages/imageTemplates"));
    t.Set("apiVersion", Json::String(args.Get("api-version", kDefaultApiVersion)));
    std::string location = args.Get("location");
    if (location.empty()) {
      auto local = OpenApi(ctx);
      if (!local.ok()) return ReportApiError(local.status(), ctx);
      auto g = api::GroupLocation((*local)->services, data->Group(group));
      if (!g.ok()) return ReportApiError(g.status(), ctx);
      location = *g;
    }
    t.Set("location", Json::String(location));
    if (!args.Has("image-source")) {
      return ReportError(
          InvalidArgumentError("--image-source is required without --image-template"), ctx);
    }
  }
  Json& props = Props(t);
  if (args.Has("image-source")) {
    auto source = SourceFromFlag(args.Get("image-source"));
    if (!source.ok()) return ReportError(source.status(), ctx);
    props.Set("source", *source);
  }
  for (const std::string& script : args.GetAll("scripts")) {
    ListIn(props, "customize").Append(ScriptCustomizer(script));
  }
  Status dest = AddDestinations(*data, args, group, ListIn(props, "distribute"));
  if (!dest.ok()) return ReportError(dest, ctx);
  if (args.Has("vm-size") || args.Has("os-disk-size")) {
    if (props.Find("vmProfile") == nullptr) props.Set("vmProfile", Json::MakeObject());
    Json& vm = *props.Find("vmProfile");
    if (args.Has("vm-size")) vm.Set("vmSize", Json::String(args.Get("vm-size")));
    if (args.Has("os-disk-size")) vm.Set("osDiskSizeGB", Json::String(args.Get("os-disk-size")));
  }
  if (args.Has("build-timeout")) {
    props.Set("buildTimeoutInMinutes", Json::String(args.Get("build-timeout")));
  }
  if (args.Has("identity")) {
    Json ids = Json::MakeObject();
    for (const std::string& id : args.GetAll("identity")) ids.Set(id, Json::MakeObject());
    Json identity = Json::MakeObject();
    identity.Set("type", Json::String("UserAssigned"));
    identity.Set("userAssignedIdentities", std::move(ids));
    t.Set("identity", std::move(identity));
  }
  if (args.Has("tags")) {
    auto tags = ParseTagArgs(args.GetAll("tags"));
    if (!tags.ok()) return ReportError(tags.status(), ctx);
    t.Set("tags", *tags);
  }
  if (args.Has("staging-resource-group")) {
    props.Set("stagingResourceGroup", Json::String(args.Get("staging-resource-group")));
  }
  // Numbers from flags are written as strings above; the parser reads them
  // with a warning, so convert them first.
  for (auto [obj, key] : {std::pair<Json*, const char*>{&props, "buildTimeoutInMinutes"}}) {
    if (const Json* v = obj->Find(key); v != nullptr && v->is_string() &&
                                        IsAsciiDigits(v->string_value()) &&
                                        v->string_value().size() < 10) {
      obj->Set(key, Json::Int(std::stoll(v->string_value())));
    }
  }
  if (Json* vm = props.Find("vmProfile"); vm != nullptr && vm->Find("osDiskSizeGB") != nullptr) {
    const Json* v = vm->Find("osDiskSizeGB");
    if (v->is_string() && IsAsciiDigits(v->string_value()) && v->string_value().size() < 10) {
      vm->Set("osDiskSizeGB", Json::Int(std::stoll(v->string_value())));
    }
  }
  Working w{t, dir, args.Has("defer")};
  if (w.deferred) return SaveWorking(*data, args, ctx, w);
  auto checked = Check(t, ctx, name);
  if (!checked) return 1;
  auto local = OpenApi(ctx);
  if (!local.ok()) return ReportApiError(local.status(), ctx);
  Status s = itops::Put(**local, group, name, *checked, dir, false);
  if (!s.ok()) return ReportApiError(s, ctx);
  return itops::Show(args, ctx);
}

int RunUpdate(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  std::string path = DeferredPath(*data, args.Get("resource-group"), args.Get("name"));
  auto w = LoadWorking(*data, args, ctx);
  if (!w.ok()) return ReportError(w.status(), ctx);
  if (args.Has("defer")) return SaveWorking(*data, args, ctx, *w);
  // Send the deferred template (or re-send the stored one), as az update does.
  w->deferred = false;
  int rc = SaveWorking(*data, args, ctx, *w);
  if (rc == 0) (void)ctx.env->RemoveAll(path);
  return rc;
}

int RunCustomizerAdd(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  auto w = LoadWorking(*data, args, ctx);
  if (!w.ok()) return ReportError(w.status(), ctx);
  std::string type = AsciiToLower(args.Get("type"));
  Json c = Json::MakeObject();
  static const std::vector<std::pair<std::string, std::string>> kTypes = {
      {"shell", "Shell"},
      {"powershell", "PowerShell"},
      {"file", "File"},
      {"windows-restart", "WindowsRestart"},
      {"windows-update", "WindowsUpdate"}};
  std::string canonical;
  for (const auto& [flag, t] : kTypes) {
    if (type == flag || type == AsciiToLower(t)) canonical = t;
  }
  if (canonical.empty()) {
    return ReportError(InvalidArgumentError("--type " + QuoteForMessage(args.Get("type")) +
                                            ": expected shell, powershell, file, "
                                            "windows-restart or windows-update"),
                       ctx);
  }
  c.Set("type", Json::String(canonical));
  c.Set("name", Json::String(args.Get("customizer-name")));
  if (args.Has("script-url")) c.Set("scriptUri", Json::String(args.Get("script-url")));
  if (args.Has("inline-script")) {
    Json lines = Json::MakeArray();
    for (const std::string& l : args.GetAll("inline-script")) lines.Append(Json::String(l));
    c.Set("inline", std::move(lines));
  }
  if (args.Has("file-source")) c.Set("sourceUri", Json::String(args.Get("file-source")));
  if (args.Has("dest-path")) c.Set("destination", Json::String(args.Get("dest-path")));
  if (args.Has("restart-command"))
    c.Set("restartCommand", Json::String(args.Get("restart-command")));
  if (args.Has("restart-check-command")) {
    c.Set("restartCheckCommand", Json::String(args.Get("restart-check-command")));
  }
  if (args.Has("restart-timeout"))
    c.Set("restartTimeout", Json::String(args.Get("restart-timeout")));
  if (args.Has("search-criteria"))
    c.Set("searchCriteria", Json::String(args.Get("search-criteria")));
  if (args.Has("filters")) {
    Json f = Json::MakeArray();
    for (const std::string& s : args.GetAll("filters")) f.Append(Json::String(s));
    c.Set("filters", std::move(f));
  }
  if (args.Has("valid-exit-codes")) {
    Json codes = Json::MakeArray();
    for (const std::string& s : args.GetAll("valid-exit-codes")) {
      if (!IsAsciiDigits(s) || s.size() > 10) {
        return ReportError(InvalidArgumentError("--valid-exit-codes: " + QuoteForMessage(s) +
                                                " is not an exit code"),
                           ctx);
      }
      codes.Append(Json::Int(std::stoll(s)));
    }
    c.Set("validExitCodes", std::move(codes));
  }
  Json& list = ListIn(Props(w->json), "customize");
  for (const Json& existing : list.array_items()) {
    const Json* n = existing.Find("name");
    if (n != nullptr && n->is_string() && n->string_value() == args.Get("customizer-name")) {
      return ReportError(AlreadyExistsError("customizer '" + args.Get("customizer-name") +
                                            "' already exists; remove it first"),
                         ctx);
    }
  }
  list.Append(std::move(c));
  return SaveWorking(*data, args, ctx, *w);
}

// Removes the items of properties[key] whose `field` equals `value` (all
// of them when `value` is empty: clear).
int RunRemove(const ParsedArgs& args, CommandContext& ctx, const char* key, const char* field,
              const std::string& value, const char* what) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  auto w = LoadWorking(*data, args, ctx);
  if (!w.ok()) return ReportError(w.status(), ctx);
  Json& list = ListIn(Props(w->json), key);
  Json kept = Json::MakeArray();
  bool found = false;
  for (const Json& item : list.array_items()) {
    const Json* f = item.Find(field);
    bool match = value.empty() || (f != nullptr && f->is_string() && f->string_value() == value);
    found = found || match;
    if (!match) kept.Append(item);
  }
  if (!value.empty() && !found) {
    return ReportError(NotFoundError(std::string(what) + " '" + value + "' was not found"), ctx);
  }
  list = std::move(kept);
  return SaveWorking(*data, args, ctx, *w);
}

int RunOutputAdd(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  auto w = LoadWorking(*data, args, ctx);
  if (!w.ok()) return ReportError(w.status(), ctx);
  std::string group = args.Get("resource-group");
  Json o = Json::MakeObject();
  std::string output_name = args.Get("output-name");
  if (args.Has("managed-image")) {
    o.Set("type", Json::String("ManagedImage"));
    o.Set("imageId", Json::String(ImageId(*data, group, args.Get("managed-image"))));
    o.Set("location", Json::String(args.Get("managed-image-location")));
    if (output_name.empty()) output_name = args.Get("managed-image");
  } else if (args.Has("gallery-name")) {
    o.Set("type", Json::String("SharedImage"));
    o.Set("galleryImageId", Json::String(GalleryImageId(*data, group, args.Get("gallery-name"),
                                                        args.Get("gallery-image-definition"))));
    o.Set("targetRegions", TargetRegions(args.GetAll("gallery-replication-regions")));
    if (output_name.empty()) output_name = args.Get("gallery-image-definition");
  } else if (args.Has("is-vhd")) {
    o.Set("type", Json::String("VHD"));
    if (args.Has("vhd-uri")) o.Set("uri", Json::String(args.Get("vhd-uri")));
    if (output_name.empty()) output_name = "vhd";
  } else {
    return ReportError(InvalidArgumentError("give --managed-image, --gallery-name or --is-vhd"),
                       ctx);
  }
  o.Set("runOutputName", Json::String(output_name.substr(output_name.find_last_of('/') + 1)));
  if (args.Has("artifact-tags")) {
    auto tags = ParseTagArgs(args.GetAll("artifact-tags"));
    if (!tags.ok()) return ReportError(tags.status(), ctx);
    o.Set("artifactTags", *tags);
  }
  ListIn(Props(w->json), "distribute").Append(std::move(o));
  return SaveWorking(*data, args, ctx, *w);
}

// az image builder wait: polls until the condition holds.
int RunWait(const ParsedArgs& args, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  int interval = std::max(1, std::atoi(args.Get("interval", "1").c_str()));
  int timeout = std::atoi(args.Get("timeout", "3600").c_str());
  int64_t start = ctx.env->NowMicros();
  for (;;) {
    auto local = OpenApi(ctx);
    if (!local.ok()) return ReportApiError(local.status(), ctx);
    auto state = itops::RunState(**local, args.Get("resource-group"), args.Get("name"));
    bool exists = state.ok();
    if (!exists && state.status().code() != StatusCode::kNotFound) {
      return ReportApiError(state.status(), ctx);
    }
    bool done;
    if (args.Has("deleted")) {
      done = !exists;
    } else if (args.Has("created") || args.Has("exists") || args.Has("updated")) {
      done = exists;
    } else {
      // The default: the last run has finished (az's --custom
      // "lastRunStatus.runState!='Running'").
      if (!exists) return ReportError(state.status(), ctx);
      done = *state != "Running" && *state != "Canceling";
    }
    if (done) return 0;
    if ((ctx.env->NowMicros() - start) / 1000000 >= timeout) {
      return ReportError(
          DeadlineExceededError("the wait timed out after " + std::to_string(timeout) + " s"), ctx);
    }
    std::this_thread::sleep_for(std::chrono::seconds(interval));
  }
}

OptionSpec Group() { return {"resource-group", 'g', "GROUP", "Resource group.", false, true}; }
OptionSpec Name() { return {"name", 'n', "NAME", "Image template name.", false, true}; }
OptionSpec Defer() {
  return {"defer", 0,    "", "Work on the local copy (kept until 'image builder update').",
          false,   false};
}

CommandSpec Spec(std::string path, std::string summary, std::vector<OptionSpec> options,
                 std::string example, std::function<int(const ParsedArgs&, CommandContext&)> run,
                 std::string description = "") {
  return CommandSpec{std::move(path),    std::move(summary),   std::move(description), "", 0, 0,
                     std::move(options), {std::move(example)}, std::move(run)};
}

}  // namespace

void RegisterImageBuilderCommands(CommandRegistry& registry) {
  registry.AddGroup("image builder",
                    "az image builder's commands (the same operations as image-template).");
  registry.Add(Spec(
      "image builder create", "Create an image template from az's flags or a template file.",
      {Group(),
       Name(),
       {"image-source", 'i', "SOURCE",
        "PUBLISHER:OFFER:SKU:VERSION, a managed image ID or a gallery image version ID."},
       {"scripts", 0, "URI", "Shell (.sh) or PowerShell (.ps1) scripts, run in order.", true},
       {"managed-image-destinations", 0, "IMAGE=LOCATION", "Managed images to create.", true},
       {"shared-image-destinations", 0, "GALLERY/DEFINITION=REGIONS",
        "Gallery image versions to create (regions comma-separated).", true},
       {"vm-size", 0, "SIZE", "Build VM size (vmProfile.vmSize)."},
       {"os-disk-size", 0, "GB", "OS disk size in GB (vmProfile.osDiskSizeGB)."},
       {"build-timeout", 0, "MINUTES", "buildTimeoutInMinutes."},
       {"identity", 0, "ID", "User-assigned identity ID.", true},
       {"location", 'l', "REGION", "Region (default: the group's)."},
       {"tags", 0, "TAGS", "Tags: name=value ...", true},
       {"staging-resource-group", 0, "ID", "stagingResourceGroup."},
       {"image-template", 0, "FILE", "Start from this template file (flags add to it)."},
       ParametersOpt(),
       ApiVersionOpt(),
       Defer()},
      "imagesmith image builder create -g images -n web --image-source Debian:debian-12:12:latest "
      "--scripts ./setup.sh --managed-image-destinations web-image=eastus",
      RunCreate,
      "Builds the template as az does: one Shell/PowerShell customizer per --scripts entry,\n"
      "one target per destination, apiVersion 2022-07-01 unless --api-version. It is\n"
      "validated like a file. With --defer it is kept locally for 'customizer add' / 'output\n"
      "add' and created by 'image builder update'."));
  registry.Add(Spec(
      "image builder update", "Create or update the template from its local (deferred) copy.",
      {Group(), Name(), Defer()}, "imagesmith image builder update -g images -n web", RunUpdate));
  registry.Add(Spec("image builder show", "Show an image template and its last run.",
                    {Group(), Name()}, "imagesmith image builder show -g images -n web",
                    itops::Show));
  registry.Add(Spec("image builder list", "List image templates.",
                    {{"resource-group", 'g', "GROUP", "Only this resource group."}},
                    "imagesmith image builder list -o table", itops::List));
  registry.Add(Spec("image builder delete", "Delete an image template and its runs.",
                    {Group(), Name(), {"yes", 'y', "", "Accepted for az compatibility."}},
                    "imagesmith image builder delete -g images -n web", itops::Delete));
  registry.Add(
      Spec("image builder run", "Build the image now (in the foreground unless --no-wait).",
           {Group(),
            Name(),
            {"no-cache", 0, "", "Do not use the step cache."},
            {"no-wait", 0, "",
             "Print the run's operation at once and let a worker do the work (as az does)."}},
           "imagesmith image builder run -g images -n web", itops::Run));
  registry.Add(Spec("image builder cancel", "Cancel the running build.", {Group(), Name()},
                    "imagesmith image builder cancel -g images -n web", itops::Cancel));
  registry.Add(Spec("image builder show-runs", "Show the run outputs.",
                    {Group(), Name(), {"output-name", 0, "NAME", "Only this runOutputName."}},
                    "imagesmith image builder show-runs -g images -n web -o table",
                    itops::ShowRuns));
  registry.Add(Spec("image builder wait", "Wait until the template is in a given state.",
                    {Group(),
                     Name(),
                     {"created", 0, "", "Until it exists."},
                     {"exists", 0, "", "Until it exists."},
                     {"updated", 0, "", "Until it exists (updates are synchronous here)."},
                     {"deleted", 0, "", "Until it no longer exists."},
                     {"interval", 0, "SECONDS", "Polling interval (default 1)."},
                     {"timeout", 0, "SECONDS", "Give up after this long (default 3600)."}},
                    "imagesmith image builder wait -g images -n web", RunWait,
                    "Without a condition, waits until the last run is no longer Running or\n"
                    "Canceling (az: --custom \"lastRunStatus.runState!='Running'\")."));
  registry.AddGroup("image builder customizer", "Edit an image template's customizers.");
  registry.Add(
      Spec("image builder customizer add", "Add a customizer.",
           {Group(),
            Name(),
            {"customizer-name", 0, "NAME", "The customizer's name.", false, true},
            {"type", 't', "TYPE", "shell, powershell, file, windows-restart or windows-update.",
             false, true},
            {"script-url", 0, "URI", "scriptUri (shell, powershell)."},
            {"inline-script", 0, "COMMAND", "inline commands (shell, powershell).", true},
            {"file-source", 0, "URI", "sourceUri (file)."},
            {"dest-path", 0, "PATH", "destination (file)."},
            {"valid-exit-codes", 'e', "CODE", "validExitCodes (powershell).", true},
            {"restart-command", 0, "COMMAND", "restartCommand (windows-restart)."},
            {"restart-check-command", 0, "COMMAND", "restartCheckCommand (windows-restart)."},
            {"restart-timeout", 0, "DURATION", "restartTimeout (windows-restart)."},
            {"search-criteria", 0, "TEXT", "searchCriteria (windows-update)."},
            {"filters", 0, "FILTER", "filters (windows-update).", true},
            Defer()},
           "imagesmith image builder customizer add -g images -n web --defer "
           "--customizer-name hello --type shell --inline-script \"echo hello\"",
           RunCustomizerAdd,
           "Without --defer the stored template is updated (it must not be running)."));
  registry.Add(
      Spec("image builder customizer remove", "Remove a customizer by name.",
           {Group(),
            Name(),
            {"customizer-name", 0, "NAME", "The customizer's name.", false, true},
            Defer()},
           "imagesmith image builder customizer remove -g images -n web --customizer-name hello",
           [](const ParsedArgs& a, CommandContext& c) {
             return RunRemove(a, c, "customize", "name", a.Get("customizer-name"), "customizer");
           }));
  registry.Add(Spec("image builder customizer clear", "Remove every customizer.",
                    {Group(), Name(), Defer()},
                    "imagesmith image builder customizer clear -g images -n web --defer",
                    [](const ParsedArgs& a, CommandContext& c) {
                      return RunRemove(a, c, "customize", "name", "", "customizer");
                    }));
  registry.AddGroup("image builder output", "Edit an image template's distribution targets.");
  registry.Add(Spec("image builder output add", "Add a distribution target.",
                    {Group(),
                     Name(),
                     {"managed-image", 0, "IMAGE", "A managed image name or ID."},
                     {"managed-image-location", 0, "REGION", "Its region."},
                     {"gallery-name", 0, "GALLERY", "A gallery in the group."},
                     {"gallery-image-definition", 0, "DEFINITION", "Its image definition."},
                     {"gallery-replication-regions", 0, "REGION", "Regions to replicate to.", true},
                     {"is-vhd", 0, "", "A VHD target."},
                     {"vhd-uri", 0, "URI", "Where to write the VHD."},
                     {"output-name", 0, "NAME", "runOutputName (default: the image's name)."},
                     {"artifact-tags", 0, "TAGS", "artifactTags: name=value ...", true},
                     Defer()},
                    "imagesmith image builder output add -g images -n web --defer --is-vhd",
                    RunOutputAdd));
  registry.Add(Spec("image builder output remove", "Remove a distribution target by runOutputName.",
                    {Group(),
                     Name(),
                     {"output-name", 0, "NAME", "The target's runOutputName.", false, true},
                     Defer()},
                    "imagesmith image builder output remove -g images -n web --output-name vhd",
                    [](const ParsedArgs& a, CommandContext& c) {
                      return RunRemove(a, c, "distribute", "runOutputName", a.Get("output-name"),
                                       "output");
                    }));
  registry.Add(Spec("image builder output clear", "Remove every distribution target.",
                    {Group(), Name(), Defer()},
                    "imagesmith image builder output clear -g images -n web --defer",
                    [](const ParsedArgs& a, CommandContext& c) {
                      return RunRemove(a, c, "distribute", "runOutputName", "", "output");
                    }));
}

}  // namespace imagesmith::cli
