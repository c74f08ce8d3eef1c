// imagesmith cache ...: the build step cache.
#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "base/data_dir.h"
#include "base/strings.h"
#include "builder/run_log.h"
#include "builder/step_cache.h"
#include "cli/command.h"

namespace imagesmith::cli {
namespace {

// "10G", "512M", "0", "2048K", or bytes.
StatusOr<uint64_t> ParseSize(const std::string& s) {
  if (s.empty()) return InvalidArgumentError("--max-size: expected a size such as 10G or 512M");
  uint64_t mult = 1;
  std::string digits = s;
  char unit = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
  if (unit == 'K' || unit == 'M' || unit == 'G' || unit == 'T') {
    mult = unit == 'K'   ? 1ull << 10
           : unit == 'M' ? 1ull << 20
           : unit == 'G' ? 1ull << 30
                         : 1ull << 40;
    digits = s.substr(0, s.size() - 1);
  }
  if (!IsAsciiDigits(digits) || digits.size() > 12) {
    return InvalidArgumentError("--max-size " + QuoteForMessage(s) +
                                ": expected a size such as 10G, 512M or 0");
  }
  return std::stoull(digits) * mult;
}

StatusOr<build::StepCache> OpenCache(Env& env) {
  ASSIGN_OR_RETURN(std::string dir, DataDirPath());
  return build::StepCache(env, dir + "/cache/steps");
}

Json EntryJson(const build::CacheEntryInfo& e) {
  Json j = Json::MakeObject();
  j.Set("key", Json::String(e.key));
  j.Set("bytes", Json::Int(static_cast<int64_t>(e.bytes)));
  j.Set("lastUsed", Json::String(build::FormatTime(e.last_used_us)));
  return j;
}

int RunList(const ParsedArgs&, CommandContext& ctx) {
  auto cache = OpenCache(*ctx.env);
  if (!cache.ok()) return ReportError(cache.status(), ctx);
  auto entries = cache->List();
  if (!entries.ok()) return ReportError(entries.status(), ctx);
  Json out = Json::MakeArray();
  for (const auto& e : *entries) out.Append(EntryJson(e));
  PrintResult(out, ctx);
  return 0;
}

// Removes disk.raw from every run but the newest of each template: only the
// last run's disk is shown (lastRun.disk), and each one is the image's full
// size. A run still working (it has work/) keeps its disk.
StatusOr<std::pair<uint64_t, uint64_t>> PruneRunDisks(Env& env) {
  ASSIGN_OR_RETURN(std::string dir, DataDirPath());
  const std::string runs = dir + "/runs";
  uint64_t count = 0, bytes = 0;
  if (!env.IsDirectory(runs)) return std::make_pair(count, bytes);
  ASSIGN_OR_RETURN(std::vector<std::string> templates, env.ListDir(runs));
  for (const std::string& t : templates) {
    auto ids = env.ListDir(runs + "/" + t);
    if (!ids.ok() || ids->empty()) continue;
    std::vector<std::string> sorted = *ids;
    std::sort(sorted.begin(), sorted.end());  // run IDs start with their UTC time
    sorted.pop_back();
    for (const std::string& id : sorted) {
      const std::string run = runs + "/" + t + "/" + id;
      const std::string disk = run + "/disk.raw";
      if (env.IsDirectory(run + "/work") || !env.FileExists(disk)) continue;
      struct stat st {};
      uint64_t size =
          ::stat(disk.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
      RETURN_IF_ERROR(env.RemoveAll(disk));
      ++count;
      bytes += size;
    }
  }
  return std::make_pair(count, bytes);
}

int RunPrune(const ParsedArgs& args, CommandContext& ctx) {
  auto max = ParseSize(args.Get("max-size"));
  if (!max.ok()) return ReportError(max.status(), ctx);
  auto cache = OpenCache(*ctx.env);
  if (!cache.ok()) return ReportError(cache.status(), ctx);
  auto removed = cache->Prune(*max);
  if (!removed.ok()) return ReportError(removed.status(), ctx);
  auto left = cache->List();
  if (!left.ok()) return ReportError(left.status(), ctx);
  uint64_t freed = 0, kept = 0;
  for (const auto& e : *removed) freed += e.bytes;
  for (const auto& e : *left) kept += e.bytes;
  auto disks = PruneRunDisks(*ctx.env);
  if (!disks.ok()) return ReportError(disks.status(), ctx);
  Json out = Json::MakeObject();
  out.Set("removedEntries", Json::Int(static_cast<int64_t>(removed->size())));
  out.Set("freedBytes", Json::Int(static_cast<int64_t>(freed)));
  out.Set("keptEntries", Json::Int(static_cast<int64_t>(left->size())));
  out.Set("keptBytes", Json::Int(static_cast<int64_t>(kept)));
  out.Set("removedRunDisks", Json::Int(static_cast<int64_t>(disks->first)));
  out.Set("freedRunDiskBytes", Json::Int(static_cast<int64_t>(disks->second)));
  PrintResult(out, ctx);
  return 0;
}

}  // namespace

void RegisterCacheCommands(CommandRegistry& registry) {
  registry.AddGroup("cache", "The build step cache.");
  registry.Add(CommandSpec{"cache list",
                           "List cached build steps, least recently used first.",
                           "",
                           "",
                           0,
                           0,
                           {},
                           {"imagesmith cache list -o table"},
                           RunList});
  registry.Add(CommandSpec{
      "cache prune",
      "Remove least recently used steps until the cache fits in a size.",
      "Entries are removed whole, by rename first, so a build running at the same time never\n"
      "sees half a layer. --max-size 0 empties the cache.\n"
      "It also removes disk.raw from every run but the newest of each template (a run still\n"
      "working keeps its disk); their logs stay.",
      "",
      0,
      0,
      {{"max-size", 0, "SIZE", "Upper bound, e.g. 10G, 512M or 0.", false, true}},
      {"imagesmith cache prune --max-size 10G"},
      RunPrune});
}

}  // namespace imagesmith::cli
