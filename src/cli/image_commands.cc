// imagesmith image ...: managed images (Microsoft.Compute/images), as
// 'az image'. `create --source FILE` imports a raw, VHD or qcow2 disk.
#include "base/region.h"
#include "base/strings.h"
#include "cli/api_client.h"
#include "cli/command.h"
#include "gallery/names.h"

namespace imagesmith::cli {
namespace {

std::string Str(const Json& obj, std::string_view key) {
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  if (v == nullptr) return "";
  if (v->is_string()) return v->string_value();
  if (v->is_number()) return v->number_text();
  return "";
}
const Json& Sub(const Json& obj, std::string_view key) {
  static const Json kEmpty = Json::MakeObject();
  const Json* v = obj.is_object() ? obj.Find(key) : nullptr;
  return v != nullptr ? *v : kEmpty;
}

// az's table columns.
Json ImageRow(const Json& image) {
  const Json& props = Sub(image, "properties");
  const Json* os_disk = Sub(props, "storageProfile").Find("osDisk");
  Json row = Json::MakeObject();
  row.Set("diskSizeGb", Json::String(os_disk != nullptr ? Str(*os_disk, "diskSizeGb") : ""));
  row.Set("hyperVGeneration", Json::String(Str(props, "hyperVGeneration")));
  row.Set("location", Json::String(Str(image, "location")));
  row.Set("name", Json::String(Str(image, "name")));
  row.Set("osType", Json::String(os_disk != nullptr ? Str(*os_disk, "osType") : ""));
  row.Set("provisioningState", Json::String(Str(props, "provisioningState")));
  row.Set("resourceGroup", Json::String(Str(image, "resourceGroup")));
  return row;
}

Json ImageOut(const Json& image, const CommandContext& ctx) {
  bool tabular = ctx.format == OutputFormat::kTable || ctx.format == OutputFormat::kTsv;
  return tabular ? ImageRow(image) : Printable(image);
}

Status CheckNames(const ParsedArgs& args) {
  RETURN_IF_ERROR(ValidateResourceGroupName(args.Get("resource-group")));
  return gallery::ValidateManagedImageName(args.Get("name"));
}

ResourceId ImageOf(const ApiClient& client, const ParsedArgs& args) {
  return gallery::ManagedImageId(client.Group(args.Get("resource-group")), args.Get("name"));
}

int RunCreate(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args); !s.ok()) return ReportError(s, ctx);
  auto os_type = gallery::ParseOsType("--os-type", args.Get("os-type"));
  if (!os_type.ok()) return ReportError(os_type.status(), ctx);
  auto gen =
      gallery::ParseHyperVGeneration("--hyper-v-generation", args.Get("hyper-v-generation", "V1"));
  if (!gen.ok()) return ReportError(gen.status(), ctx);
  auto tags = ParseTagArgs(args.GetAll("tags"));
  if (!tags.ok()) return ReportError(tags.status(), ctx);
  Json body = Json::MakeObject();
  if (args.Has("location")) {
    auto l = Region::Parse(args.Get("location"));
    if (!l.ok()) return ReportError(l.status().WithContext("--location"), ctx);
    body.Set("location", Json::String(l->name()));
  }
  body.Set("tags", *tags);
  Json os_disk = Json::MakeObject();
  os_disk.Set("osType", Json::String(*os_type));
  os_disk.Set("blobUri", Json::String(args.Get("source")));
  Json storage = Json::MakeObject();
  storage.Set("osDisk", os_disk);
  Json props = Json::MakeObject();
  props.Set("hyperVGeneration", Json::String(*gen));
  props.Set("storageProfile", storage);
  body.Set("properties", props);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto r = client->Call(MakeRequest(api::Verb::kPut, ImageOf(*client, args), body));
  if (!r.ok()) return ReportError(r.status(), ctx);
  PrintResult(ImageOut(r->body, ctx), ctx);
  return 0;
}

int RunShow(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto r = client->Call(MakeRequest(api::Verb::kGet, ImageOf(*client, args)));
  if (!r.ok()) return ReportError(r.status(), ctx);
  PrintResult(ImageOut(r->body, ctx), ctx);
  return 0;
}

int RunList(const ParsedArgs& args, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  ResourceId scope = args.Has("resource-group") ? client->Group(args.Get("resource-group"))
                                                : client->Subscription();
  auto r = client->Call(MakeListRequest(scope, gallery::kManagedImageType));
  if (!r.ok()) return ReportError(r.status(), ctx);
  Json out = Json::MakeArray();
  for (const Json& item : PrintableItems(*r)) out.Append(ImageOut(item, ctx));
  PrintResult(out, ctx);
  return 0;
}

int RunDelete(const ParsedArgs& args, CommandContext& ctx) {
  if (Status s = CheckNames(args); !s.ok()) return ReportError(s, ctx);
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  Status s = DeleteResource(*client, ImageOf(*client, args), args.Has("force"));
  if (!s.ok()) return ReportError(s, ctx);
  return 0;
}

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

void RegisterImageCommands(CommandRegistry& registry) {
  registry.AddGroup("image", "Manage managed images.");
  const OptionSpec group{
      "resource-group", 'g', "GROUP", "Name of the resource group.", false, true};
  const OptionSpec name{"name", 'n', "NAME", "Name of the image.", false, true};
  registry.Add(
      Spec("image create", "Create a managed image from a disk file.",
           "The source is a raw, VHD or qcow2 disk file; it is converted to raw and stored in the "
           "image's region. Names are 1-80 letters, digits, underscores, hyphens and periods, "
           "beginning with a letter or digit and ending with a letter, digit or underscore.",
           {group,
            name,
            {"source", 0, "FILE", "Disk file: raw, VHD or qcow2.", false, true},
            {"os-type", 0, "TYPE", "Linux or Windows.", false, true},
            {"hyper-v-generation", 0, "GEN", "V1 (default, BIOS) or V2 (UEFI).", false, false},
            {"location", 'l', "REGION", "Region; default: the group's.", false, false},
            {"tags", 0, "KEY=VALUE", "Space-separated tags.", true, false}},
           {"imagesmith image create -g images -n debian12-img --source disk.qcow2 --os-type Linux "
            "--hyper-v-generation V2"},
           RunCreate));
  registry.Add(Spec("image show", "Show a managed image.", "", {group, name},
                    {"imagesmith image show -g images -n debian12-img"}, RunShow));
  OptionSpec optional_group = group;
  optional_group.required = false;
  registry.Add(Spec("image list", "List managed images (in a group, or everywhere).", "",
                    {optional_group}, {"imagesmith image list -o table"}, RunList));
  registry.Add(Spec(
      "image delete", "Delete a managed image.", "Versions published from it keep their own copy.",
      {group,
       name,
       {"yes", 'y', "", "Accepted for az compatibility."},
       {"force", 0, "", "Delete although Batch pools use it (their next allocation fails)."}},
      {"imagesmith image delete -g images -n debian12-img"}, RunDelete));
}

}  // namespace imagesmith::cli
