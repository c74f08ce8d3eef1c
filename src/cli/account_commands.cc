// imagesmith account ...: the default subscription and the known regions.
//
// The subscription is created with the data directory, so users can write
// resource IDs before anything else exists.
#include "base/region.h"
#include "base/resource_id.h"
#include "cli/api_client.h"
#include "cli/command.h"

namespace imagesmith::cli {
namespace {

// az account show's shape, from a subscription resource.
Json AccountJson(const Json& sub, const std::string& default_subscription) {
  Json out = Json::MakeObject();
  out.Set("id", *sub.Find("subscriptionId"));
  out.Set("name", *sub.Find("displayName"));
  out.Set("isDefault",
          Json::Bool(sub.Find("subscriptionId")->string_value() == default_subscription));
  out.Set("state", *sub.Find("state"));
  out.Set("resourceId", *sub.Find("id"));
  return out;
}

int RunShow(const ParsedArgs&, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto r = client->Call(MakeRequest(api::Verb::kGet, client->Subscription()));
  if (!r.ok()) return ReportError(r.status(), ctx);
  PrintResult(AccountJson(r->body, client->subscription()), ctx);
  return 0;
}

int RunList(const ParsedArgs&, CommandContext& ctx) {
  auto client = ApiClient::Open(*ctx.env);
  if (!client.ok()) return ReportError(client.status(), ctx);
  auto r =
      client->Call(MakeListRequest(client->Subscription(), "Microsoft.Resources/subscriptions"));
  if (!r.ok()) return ReportError(r.status(), ctx);
  Json out = Json::MakeArray();
  for (const Json& sub : PrintableItems(*r)) out.Append(AccountJson(sub, client->subscription()));
  PrintResult(out, ctx);
  return 0;
}

int RunListLocations(const ParsedArgs& args, CommandContext& ctx) {
  Json list = Json::MakeArray();
  bool only_builder = args.Has("image-builder");
  for (const RegionInfo& r : Region::All()) {
    if (only_builder && !r.image_builder) continue;
    Json o = Json::MakeObject();
    o.Set("name", Json::String(r.name));
    o.Set("displayName", Json::String(r.display_name));
    o.Set("imageBuilder", Json::Bool(r.image_builder));
    list.Append(std::move(o));
  }
  PrintResult(list, ctx);
  return 0;
}

}  // namespace

void RegisterAccountCommands(CommandRegistry& registry) {
  registry.AddGroup("account", "The default subscription and the regions imagesmith knows.");
  registry.Add(CommandSpec{
      .path = "account show",
      .summary = "Show the default subscription, for writing resource IDs.",
      .description = "The subscription is created with the data directory ($IMAGESMITH_HOME,\n"
                     "default ~/.local/share/imagesmith) the first time it is needed.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {},
      .examples = {"imagesmith account show", "imagesmith account show -o table"},
      .run = RunShow,
  });
  registry.Add(CommandSpec{
      .path = "account list",
      .summary = "List the subscriptions.",
      .description = "Each entry has the shape of 'account show'; isDefault marks the default\n"
                     "subscription.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {},
      .examples = {"imagesmith account list -o table"},
      .run = RunList,
  });
  registry.Add(CommandSpec{
      .path = "account list-locations",
      .summary = "List the regions imagesmith knows.",
      .description = "Templates may be located in the regions marked imageBuilder (the template\n"
                     "reference's list); galleries can replicate to all of them.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = {{"image-builder", 0, "", "Only regions where templates may be located."}},
      .examples = {"imagesmith account list-locations -o table"},
      .run = RunListLocations,
  });
}

}  // namespace imagesmith::cli
