// imagesmith backup ...: copying the metadata database and the store to a
// backup directory and back (doc/backup.md). The work is in backup/.
#include "backup/backup.h"
#include "base/data_dir.h"
#include "cli/command.h"
#include "cli/data.h"

namespace imagesmith::cli {
namespace {

int RunCreate(const ParsedArgs& args, CommandContext& ctx) {
  const std::string dir = args.positionals()[0];
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  auto s = store::Store::Open(*ctx.env, data->dir + "/store");
  if (!s.ok()) return ReportError(s.status(), ctx);
  auto stats = backup::CreateBackup(*ctx.env, *data->meta, **s, dir, nullptr);
  if (!stats.ok()) return ReportError(stats.status(), ctx);
  Json out = Json::MakeObject();
  out.Set("backupDir", Json::String(dir));
  out.Set("metaFile", Json::String(stats->meta_file));
  out.Set("metaBytes", Json::Int(static_cast<int64_t>(stats->meta_bytes)));
  out.Set("resources", Json::Int(static_cast<int64_t>(stats->resources)));
  out.Set("images", Json::Int(static_cast<int64_t>(stats->images)));
  out.Set("copiedObjects", Json::Int(static_cast<int64_t>(stats->copied_objects)));
  out.Set("copiedBytes", Json::Int(static_cast<int64_t>(stats->copied_bytes)));
  out.Set("presentObjects", Json::Int(static_cast<int64_t>(stats->present_objects)));
  Json interrupted = Json::MakeArray();
  for (const std::string& id : stats->interrupted) interrupted.Append(Json::String(id));
  out.Set("interrupted", std::move(interrupted));
  PrintResult(out, ctx);
  return 0;
}

int RunRestore(const ParsedArgs& args, CommandContext& ctx) {
  const std::string dir = args.positionals()[0];
  // Not OpenData: that would create a database in the directory to restore.
  auto home = DataDirPath();
  if (!home.ok()) return ReportError(home.status(), ctx);
  auto stats = backup::RestoreBackup(*ctx.env, dir, *home, nullptr);
  if (!stats.ok()) return ReportError(stats.status(), ctx);
  Json out = Json::MakeObject();
  out.Set("dataDir", Json::String(*home));
  out.Set("backupCreated", Json::String(stats->created_utc));
  out.Set("images", Json::Int(static_cast<int64_t>(stats->images)));
  out.Set("copiedObjects", Json::Int(static_cast<int64_t>(stats->copied_objects)));
  out.Set("copiedBytes", Json::Int(static_cast<int64_t>(stats->copied_bytes)));
  PrintResult(out, ctx);
  return 0;
}

}  // namespace

void RegisterBackupCommands(CommandRegistry& registry) {
  registry.AddGroup("backup", "Back up the metadata database and the store, and restore them.");
  registry.Add(CommandSpec{
      "backup create",
      "Back up the metadata database and every image it names into DIR.",
      "Takes a consistent snapshot of the metadata database with SQLite's online backup, then\n"
      "copies every store image a resource names (gallery versions, managed images) into\n"
      "DIR/store, verifying each object. Safe while builds, publishes and gc run. Running it\n"
      "again on the same DIR copies only objects DIR does not have yet. Versions and runs that\n"
      "were in progress are recorded as Failed in the backup (they list as \"interrupted\").\n"
      "Not backed up: the platform catalog, caches, run logs and staged VHDs (doc/backup.md).",
      "DIR",
      1,
      1,
      {},
      {"imagesmith backup create /mnt/backups/imagesmith"},
      RunCreate});
  registry.Add(CommandSpec{
      "backup restore",
      "Restore a backup into an empty data directory.",
      "Checks the backup (backup.json, the database's digest and integrity, every image listed)\n"
      "before writing anything, then copies every image into the data directory "
      "($IMAGESMITH_HOME),\n"
      "verifying every object, and writes meta.db last. The data directory must be missing or\n"
      "empty; a failed restore leaves it empty again.",
      "DIR",
      1,
      1,
      {},
      {"IMAGESMITH_HOME=/srv/imagesmith imagesmith backup restore /mnt/backups/imagesmith"},
      RunRestore});
}

}  // namespace imagesmith::cli
