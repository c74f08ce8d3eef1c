// imagesmith account ...: the default subscription and the known regions.
//
// The subscription is created with the data directory, so users can write
// resource IDs before anything else exists. It is kept in account.json there
// (doc/data-dir.md); the metadata database will own it once it exists.
#include <random>

#include "base/data_dir.h"
#include "base/region.h"
#include "base/resource_id.h"
#include "cli/command.h"

namespace imagesmith::cli {
namespace {

std::string NewGuid() {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string g;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) g.push_back('-');
    int v = hex(rd);
    if (i == 12) v = 4;                   // version 4
    if (i == 16) v = 8 | (v & 3);         // RFC 4122 variant
    g.push_back(kHex[v]);
  }
  return g;
}

// Reads account.json, creating it (and the data directory) on first use.
StatusOr<Json> LoadOrCreateAccount(Env& env) {
  ASSIGN_OR_RETURN(std::string dir, DataDirPath());
  std::string path = dir + "/account.json";
  if (env.FileExists(path)) {
    ASSIGN_OR_RETURN(std::string text, env.ReadFile(path, 1 << 16));
    auto j = ParseJson(text);
    if (!j.ok() || !j->is_object() || j->Find("id") == nullptr || !j->Find("id")->is_string() ||
        !IsGuid(j->Find("id")->string_value())) {
      return DataLossError(path + " is damaged (expected {\"id\": GUID, ...}); restore it from a "
                                  "backup, or remove it to create a new default subscription");
    }
    return *j;
  }
  RETURN_IF_ERROR(env.CreateDirs(dir));
  Json a = Json::MakeObject();
  a.Set("id", Json::String(NewGuid()));
  a.Set("name", Json::String("imagesmith default"));
  a.Set("isDefault", Json::Bool(true));
  a.Set("state", Json::String("Enabled"));
  RETURN_IF_ERROR(env.WriteFileAtomic(path, a.Dump(2) + "\n"));
  return a;
}

int RunShow(const ParsedArgs&, CommandContext& ctx) {
  auto account = LoadOrCreateAccount(*ctx.env);
  if (!account.ok()) return ReportError(account.status(), ctx);
  Json out = *account;
  ResourceId sub = ResourceId::ForSubscription(account->Find("id")->string_value());
  out.Set("resourceId", Json::String(sub.ToString()));
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
