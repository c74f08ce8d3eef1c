// Why the steps are in this order (doc/backup.md, "Consistency"): the
// database snapshot comes first and decides everything; the images it names
// are then pinned (so no gc can take them from now on) and checked complete,
// and a snapshot whose images a gc took between the snapshot and the pin is
// taken again. The objects are copied before the database file is named in
// backup.json, which is replaced last, so a backup directory always holds
// one whole backup: the previous one until the new backup.json lands.
#include "backup/backup.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <map>
#include <set>

#include "base/crash_point.h"
#include "base/json.h"
#include "base/sha256.h"
#include "base/strings.h"
#include "gallery/resources.h"
#include "gallery/store_refs.h"

namespace imagesmith::backup {
namespace {

constexpr int kFormat = 1;
constexpr int kSnapshotAttempts = 3;
constexpr uint64_t kMaxMetaBytes = 64ull << 30;
constexpr const char kVersionType[] = "Microsoft.Compute/galleries/images/versions";
constexpr const char kTemplateType[] = "Microsoft.VirtualMachineImages/imageTemplates";

std::string FormatUtc(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// An exclusive lock on `<dir>/backup.lock` for as long as it lives.
class DirLock {
 public:
  ~DirLock() {
    if (fd_ >= 0) close(fd_);
  }
  Status Lock(const std::string& dir) {
    std::string path = dir + "/backup.lock";
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return ErrnoError("opening " + path, errno);
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return UnavailableError("another `imagesmith backup create` is writing to " + dir +
                                "; wait for it to finish");
      }
      return ErrnoError("locking " + path, errno);
    }
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

bool IsMetaFileName(const std::string& name) {
  return name.size() == 5 + 64 + 3 && StartsWith(name, "meta-") && EndsWith(name, ".db") &&
         Sha256Digest::IsHex(name.substr(5, 64));
}

// A backup directory may be new, empty, or hold what a backup writes.
Status CheckBackupDir(Env& env, const std::string& dir) {
  if (!env.FileExists(dir)) return env.CreateDirs(dir);
  if (!env.IsDirectory(dir)) {
    return FailedPreconditionError("backup directory " + dir + " is not a directory");
  }
  ASSIGN_OR_RETURN(auto names, env.ListDir(dir));
  for (const std::string& n : names) {
    if (n == kManifestName || n == "store" || n == "tmp" || n == "backup.lock" ||
        IsMetaFileName(n)) {
      continue;
    }
    return FailedPreconditionError(
        "backup directory " + dir + " holds " + QuoteForMessage(n) +
        ", which a backup does not write; give a new or empty directory, or one that holds an "
        "earlier imagesmith backup");
  }
  return Status::Ok();
}

// Records in the snapshot that work in flight at backup time did not
// finish: a restored data directory has no process to finish it. Versions
// keep every Completed replica (their images are in the backup) and can be
// finished with `sig image-version update`; runs read as Failed.
Status MarkInterrupted(meta::MetaStore& snapshot, std::vector<std::string>* interrupted) {
  return snapshot.Update([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(auto subs, txn.ListSubscriptions());
    for (const meta::Resource& sub : subs) {
      ASSIGN_OR_RETURN(auto versions, txn.ListByType(sub.id, kVersionType));
      for (meta::Resource& v : versions) {
        ASSIGN_OR_RETURN(gallery::VersionRecord rec, gallery::VersionRecord::FromResource(v));
        if (rec.provisioning_state != "Creating" && rec.provisioning_state != "Updating") continue;
        const ResourceId def = v.id.Parent();
        const std::string finish =
            "the backup was taken while this replica was being made; finish it with `imagesmith "
            "sig image-version update -g " +
            v.id.resource_group() + " -r " + def.Parent().name() + " -i " + def.name() + " -e " +
            v.id.name() + "`";
        for (gallery::ReplicaStatus& s : rec.replication) {
          if (s.state == gallery::ReplicaState::kInProgress) {
            s.state = gallery::ReplicaState::kFailed;
            s.details = finish;
          }
        }
        rec.provisioning_state = "Failed";
        Json props = rec.ToProperties();
        v.properties = std::move(props);
        RETURN_IF_ERROR(txn.Replace(v));
        interrupted->push_back(v.id.ToString());
      }
      ASSIGN_OR_RETURN(auto templates, txn.ListByType(sub.id, kTemplateType));
      for (meta::Resource& t : templates) {
        Json* last = t.properties.Find("lastRunStatus");
        if (last == nullptr || !last->is_object()) continue;
        const Json* state = last->Find("runState");
        if (state == nullptr || !state->is_string() ||
            (state->string_value() != "Running" && state->string_value() != "Canceling")) {
          continue;
        }
        last->Set("runState", Json::String("Failed"));
        last->Set("message", Json::String("the backup was taken while this run was in progress; "
                                          "start a new run with `imagesmith image-template run "
                                          "-g " +
                                          t.id.resource_group() + " -n " + t.id.name() + "`"));
        // The run's process belongs to the backed-up machine, not to us.
        if (Json* ext = t.properties.Find("imagesmith"); ext != nullptr && ext->is_object()) {
          auto& members = ext->object_items();
          std::erase_if(members, [](const JsonMember& m) {
            return m.key == "runnerPid" || m.key == "runnerStartTicks";
          });
        }
        RETURN_IF_ERROR(txn.Replace(t));
        interrupted->push_back(t.id.ToString());
      }
    }
    // Durable operations (doc/operations.md) in flight: their workers are
    // processes of the backed-up machine. Failed, so none stays InProgress
    // (a restored resumable one would otherwise wait for a worker that
    // resumes work the resource above already records as interrupted).
    ASSIGN_OR_RETURN(auto ops, txn.ListOperations("", "InProgress", 1'000'000));
    for (meta::OperationRow& op : ops) {
      op.status = "Failed";
      op.owner.clear();
      op.lease_expiry_us = 0;
      Json error = Json::MakeObject();
      error.Set("code", Json::String("BackupInterrupted"));
      error.Set("message", Json::String("the backup was taken while this operation was in "
                                        "progress; start the work again on the restored data "
                                        "(its resource says how)"));
      op.doc.Set("error", std::move(error));
      RETURN_IF_ERROR(txn.ReplaceOperation(op));
      interrupted->push_back("operation " + op.id);
    }
    return Status::Ok();
  });
}

StatusOr<uint64_t> CountResources(meta::MetaStore& meta) {
  uint64_t n = 0;
  RETURN_IF_ERROR(meta.Read([&](meta::Transaction& txn) -> Status {
    ASSIGN_OR_RETURN(auto subs, txn.ListSubscriptions());
    n = subs.size();
    for (const meta::Resource& sub : subs) {
      ASSIGN_OR_RETURN(int64_t below, txn.CountDescendants(sub.id));
      n += static_cast<uint64_t>(below);
    }
    return Status::Ok();
  }));
  return n;
}

// Distinct (region, image) pairs, each with the first resource naming it.
std::map<std::pair<std::string, Sha256Digest>, gallery::StoreRef> Distinct(
    const std::vector<gallery::StoreRef>& refs) {
  std::map<std::pair<std::string, Sha256Digest>, gallery::StoreRef> out;
  for (const gallery::StoreRef& r : refs) out.emplace(std::make_pair(r.region.name(), r.image), r);
  return out;
}

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening " + dir, errno);
  int r = fsync(fd);
  int err = errno;
  close(fd);
  if (r != 0) return ErrnoError("syncing " + dir, err);
  return Status::Ok();
}

// A snapshot of the live database, edited, with the images it names pinned
// in the live store and known complete there.
struct Snapshot {
  std::unique_ptr<meta::MetaStore> meta;
  std::vector<gallery::StoreRef> refs;
  std::vector<std::string> interrupted;
  std::optional<store::Pin> pin;
};

StatusOr<Snapshot> TakeSnapshot(Env& env, meta::MetaStore& live, store::Store& store,
                                const std::string& tmp) {
  Status last;
  for (int attempt = 1; attempt <= kSnapshotAttempts; ++attempt) {
    const std::string path = tmp + "/snapshot-" + std::to_string(attempt) + ".db";
    RETURN_IF_ERROR(live.BackupTo(path).WithContext("taking the metadata snapshot"));
    CrashPoint("backup.snapshot.taken");
    Snapshot snap;
    ASSIGN_OR_RETURN(snap.meta, meta::OpenSqliteMetaStore(env, path));
    RETURN_IF_ERROR(MarkInterrupted(*snap.meta, &snap.interrupted));
    auto refs = gallery::CollectStoreRefs(*snap.meta);
    if (!refs.ok()) return refs.status().WithContext("the metadata snapshot");
    snap.refs = std::move(*refs);
    ASSIGN_OR_RETURN(store::Pin pin, store.NewPin());
    // From here on no gc takes these images (Pin::Add waits for a running gc).
    for (const auto& [key, r] : Distinct(snap.refs)) {
      RETURN_IF_ERROR(pin.Add(store::ImageRef{r.region, r.image}));
    }
    snap.pin.emplace(std::move(pin));
    CrashPoint("backup.snapshot.pinned");
    std::string missing;
    for (const auto& [key, r] : Distinct(snap.refs)) {
      if (!store.HasImage(r.region, r.image)) {
        missing = "image " + r.image.ToHex() + " in region " + r.region.name() + ", named by " +
                  r.owner.ToString();
        break;
      }
    }
    if (missing.empty()) return snap;
    // A gc between the snapshot and the pin may have taken an image that
    // a resource deleted since then named; a new snapshot no longer does.
    last = FailedPreconditionError(
        "the store does not hold " + missing +
        " completely; run `imagesmith store fsck`, then republish or delete that resource");
  }
  return last;
}

StatusOr<Sha256Digest> DigestOfFile(Env& env, const std::string& path, uint64_t* size) {
  ASSIGN_OR_RETURN(std::string data, env.ReadFile(path, kMaxMetaBytes));
  *size = data.size();
  return Sha256Of(data);
}

}  // namespace

StatusOr<BackupStats> CreateBackup(Env& env, meta::MetaStore& meta, store::Store& store,
                                   const std::string& backup_dir,
                                   const store::ProgressFn& progress) {
  RETURN_IF_ERROR(CheckBackupDir(env, backup_dir));
  DirLock lock;
  RETURN_IF_ERROR(lock.Lock(backup_dir));
  const std::string tmp = backup_dir + "/tmp";
  RETURN_IF_ERROR(env.RemoveAll(tmp));
  RETURN_IF_ERROR(env.CreateDirs(tmp));
  ASSIGN_OR_RETURN(auto target, store::Store::Open(env, backup_dir + "/store"));

  BackupStats stats;
  const int64_t started_us = env.NowMicros();
  ASSIGN_OR_RETURN(Snapshot snap, TakeSnapshot(env, meta, store, tmp));
  stats.interrupted = snap.interrupted;
  ASSIGN_OR_RETURN(stats.resources, CountResources(*snap.meta));

  auto images = Distinct(snap.refs);
  uint64_t done = 0;
  for (const auto& [key, r] : images) {
    auto copied = store.CopyImageTo(r.region, r.image, *target, nullptr);
    if (!copied.ok()) {
      return copied.status().WithContext("backing up image " + r.image.ToHex() + " of " +
                                         r.owner.ToString());
    }
    stats.copied_objects += copied->copied_objects;
    stats.copied_bytes += copied->copied_bytes;
    stats.present_objects += copied->present_objects;
    ++stats.images;
    if (progress) progress(++done, images.size());
    CrashPoint("backup.image.copied");
  }

  // The snapshot as one clean file, named by its digest.
  const std::string final_tmp = tmp + "/meta.db";
  RETURN_IF_ERROR(snap.meta->BackupTo(final_tmp));
  snap.meta.reset();
  ASSIGN_OR_RETURN(Sha256Digest digest, DigestOfFile(env, final_tmp, &stats.meta_bytes));
  stats.meta_file = "meta-" + digest.ToHex() + ".db";
  RETURN_IF_ERROR(env.Rename(final_tmp, backup_dir + "/" + stats.meta_file));
  RETURN_IF_ERROR(SyncDir(backup_dir));
  CrashPoint("backup.meta.written");

  Json manifest = Json::MakeObject();
  manifest.Set("imagesmithBackup", Json::Int(kFormat));
  manifest.Set("createdUtc", Json::String(FormatUtc(started_us)));
  Json m = Json::MakeObject();
  m.Set("file", Json::String(stats.meta_file));
  m.Set("sha256", Json::String(digest.ToHex()));
  m.Set("bytes", Json::Int(static_cast<int64_t>(stats.meta_bytes)));
  manifest.Set("meta", m);
  Json list = Json::MakeArray();
  for (const auto& [key, r] : images) {
    Json j = Json::MakeObject();
    j.Set("region", Json::String(r.region.name()));
    j.Set("image", Json::String(r.image.ToHex()));
    list.Append(j);
  }
  manifest.Set("images", list);
  Json interrupted = Json::MakeArray();
  for (const std::string& id : stats.interrupted) interrupted.Append(Json::String(id));
  manifest.Set("interrupted", interrupted);
  RETURN_IF_ERROR(env.WriteFileAtomic(backup_dir + "/" + kManifestName, manifest.Dump(2) + "\n"));
  RETURN_IF_ERROR(SyncDir(backup_dir));
  CrashPoint("backup.manifest.written");

  // What the new backup.json no longer names.
  ASSIGN_OR_RETURN(auto names, env.ListDir(backup_dir));
  for (const std::string& n : names) {
    if (IsMetaFileName(n) && n != stats.meta_file) {
      RETURN_IF_ERROR(env.RemoveAll(backup_dir + "/" + n));
    }
  }
  RETURN_IF_ERROR(env.RemoveAll(tmp));
  return stats;
}

namespace {

struct BackupManifest {
  std::string meta_file;
  Sha256Digest meta_digest;
  std::vector<std::pair<Region, Sha256Digest>> images;
  std::string created_utc;
};

StatusOr<BackupManifest> ReadManifest(Env& env, const std::string& dir) {
  const std::string path = dir + "/" + kManifestName;
  if (!env.IsDirectory(dir)) {
    return NotFoundError("backup directory " + dir + " does not exist");
  }
  if (!env.FileExists(path)) {
    return FailedPreconditionError(
        dir + " is not an imagesmith backup: it has no " + kManifestName +
        " (a backup writes it last; if `imagesmith backup create` was interrupted, run it "
        "again)");
  }
  ASSIGN_OR_RETURN(std::string text, env.ReadFile(path, 256 << 20));
  auto damaged = [&](const std::string& what) {
    return DataLossError("backup " + path + " is damaged: " + what +
                         "; use another backup or create a new one");
  };
  auto j = ParseJson(text, JsonParseOptions{false, 16});
  if (!j.ok()) return damaged(j.status().message());
  if (!j->is_object()) return damaged("not a JSON object");
  const Json* format = j->Find("imagesmithBackup");
  if (format == nullptr || !format->AsInt64().has_value()) return damaged("no imagesmithBackup");
  if (*format->AsInt64() != kFormat) {
    return FailedPreconditionError("backup " + path + " has format " + format->number_text() +
                                   "; this imagesmith reads format 1 only (use a newer one)");
  }
  BackupManifest out;
  const Json* created = j->Find("createdUtc");
  if (created != nullptr && created->is_string()) out.created_utc = created->string_value();
  const Json* meta = j->Find("meta");
  const Json* file = meta != nullptr && meta->is_object() ? meta->Find("file") : nullptr;
  const Json* sha = meta != nullptr && meta->is_object() ? meta->Find("sha256") : nullptr;
  if (file == nullptr || !file->is_string() || !IsMetaFileName(file->string_value())) {
    return damaged("meta.file is not \"meta-<sha256>.db\"");
  }
  if (sha == nullptr || !sha->is_string() || !Sha256Digest::IsHex(sha->string_value())) {
    return damaged("meta.sha256 is not a SHA-256 digest");
  }
  out.meta_file = file->string_value();
  out.meta_digest = *Sha256Digest::FromHex(sha->string_value());
  const Json* images = j->Find("images");
  if (images == nullptr || !images->is_array()) return damaged("images is not an array");
  for (size_t i = 0; i < images->array_items().size(); ++i) {
    const Json& e = images->array_items()[i];
    const Json* region = e.is_object() ? e.Find("region") : nullptr;
    const Json* image = e.is_object() ? e.Find("image") : nullptr;
    std::string where = "images[" + std::to_string(i) + "]";
    if (region == nullptr || !region->is_string() || image == nullptr || !image->is_string()) {
      return damaged(where + " needs string \"region\" and \"image\"");
    }
    auto r = Region::Parse(region->string_value());
    auto d = Sha256Digest::FromHex(image->string_value());
    if (!r.ok() || r->name() != region->string_value()) {
      return damaged(where + ".region: " + QuoteForMessage(region->string_value()));
    }
    if (!d.ok()) return damaged(where + ".image: " + d.status().message());
    out.images.emplace_back(*r, *d);
  }
  return out;
}

Status CheckEmptyDataDir(Env& env, const std::string& data_dir) {
  if (!env.FileExists(data_dir)) return Status::Ok();
  if (!env.IsDirectory(data_dir)) {
    return FailedPreconditionError("the data directory " + data_dir + " is not a directory");
  }
  ASSIGN_OR_RETURN(auto names, env.ListDir(data_dir));
  if (names.empty()) return Status::Ok();
  std::vector<std::string> some(names.begin(), names.begin() + std::min<size_t>(names.size(), 5));
  return FailedPreconditionError(
      "the data directory " + data_dir + " is not empty (it holds " + Join(some, ", ") +
      (names.size() > 5 ? ", ..." : "") +
      "); restore only into an empty or new directory: move this one aside (mv " + data_dir + " " +
      data_dir + ".old) or set IMAGESMITH_HOME to a new directory");
}

}  // namespace

StatusOr<RestoreStats> RestoreBackup(Env& env, const std::string& backup_dir,
                                     const std::string& data_dir,
                                     const store::ProgressFn& progress) {
  RETURN_IF_ERROR(CheckEmptyDataDir(env, data_dir));
  ASSIGN_OR_RETURN(BackupManifest manifest, ReadManifest(env, backup_dir));
  RestoreStats stats;
  stats.created_utc = manifest.created_utc;

  // Everything about the backup is checked before anything is written.
  const std::string meta_path = backup_dir + "/" + manifest.meta_file;
  if (!env.FileExists(meta_path)) {
    return DataLossError("backup " + backup_dir + ": its metadata database " + meta_path +
                         " is missing; use another backup or create a new one");
  }
  uint64_t meta_bytes = 0;
  ASSIGN_OR_RETURN(Sha256Digest got, DigestOfFile(env, meta_path, &meta_bytes));
  if (got != manifest.meta_digest) {
    return DataLossError("backup " + backup_dir + ": the metadata database " + meta_path +
                         " has SHA-256 " + got.ToHex() + ", but " + kManifestName + " says " +
                         manifest.meta_digest.ToHex() +
                         ": the file is damaged; use another backup or create a new one");
  }
  const std::string backup_store_dir = backup_dir + "/store";
  if (!env.FileExists(backup_store_dir + "/FORMAT")) {
    return DataLossError("backup " + backup_dir + ": its store " + backup_store_dir +
                         " is missing; use another backup or create a new one");
  }
  ASSIGN_OR_RETURN(auto source, store::Store::Open(env, backup_store_dir));
  for (const auto& [region, image] : manifest.images) {
    if (!source->HasImage(region, image)) {
      return DataLossError("backup " + backup_dir + ": image " + image.ToHex() + " in region " +
                           region.name() + ", listed in " + kManifestName +
                           ", is missing or incomplete in " + backup_store_dir +
                           "; use another backup or create a new one");
    }
  }

  // From here on, a failure removes what the restore made.
  const bool existed = env.FileExists(data_dir);
  auto undo = [&](const Status& s) -> Status {
    if (existed) {
      auto names = env.ListDir(data_dir);
      if (names.ok()) {
        for (const std::string& n : *names) (void)env.RemoveAll(data_dir + "/" + n);
      }
    } else {
      (void)env.RemoveAll(data_dir);
    }
    return s.WithContext("restore from " + backup_dir + " failed; " + data_dir + " was left empty");
  };
  Status made = env.CreateDirs(data_dir);
  if (!made.ok()) return undo(made);
  auto target = store::Store::Open(env, data_dir + "/store");
  if (!target.ok()) return undo(target.status());
  uint64_t done = 0;
  for (const auto& [region, image] : manifest.images) {
    auto copied = source->CopyImageTo(region, image, **target, nullptr);
    if (!copied.ok()) {
      return undo(copied.status().WithContext("restoring image " + image.ToHex() + " in region " +
                                              region.name()));
    }
    stats.copied_objects += copied->copied_objects;
    stats.copied_bytes += copied->copied_bytes;
    ++stats.images;
    if (progress) progress(++done, manifest.images.size());
    CrashPoint("backup.restore.image_copied");
  }
  // The database last: a data directory without meta.db is visibly unfinished.
  const std::string staging = data_dir + "/meta.db.restoring";
  Status s = meta::CopySqliteDatabase(meta_path, staging);
  if (s.ok()) s = env.Rename(staging, data_dir + "/meta.db");
  if (s.ok()) {
    // Opening applies migrations when the backup is from an older imagesmith.
    auto opened = meta::OpenSqliteMetaStore(env, data_dir + "/meta.db");
    s = opened.status();
  }
  if (s.ok()) s = SyncDir(data_dir);
  if (!s.ok()) return undo(s);
  return stats;
}

}  // namespace imagesmith::backup
