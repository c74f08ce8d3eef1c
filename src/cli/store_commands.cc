// imagesmith store ...: checking and collecting the content-addressed store
// (<data dir>/store, doc/store.md).
#include <cstdio>

#include "base/data_dir.h"
#include "cli/command.h"
#include "cli/data.h"
#include "gallery/store_refs.h"
#include "store/store.h"

namespace imagesmith::cli {
namespace {

// A single updating line on stderr, on a terminal only, after a second.
class StoreProgress {
 public:
  StoreProgress(CommandContext& ctx, const char* unit)
      : ctx_(ctx), unit_(unit), start_(ctx.env->MonotonicMicros()) {}
  ~StoreProgress() {
    if (shown_) *ctx_.err << "\n" << std::flush;
  }
  StoreProgress(const StoreProgress&) = delete;
  StoreProgress& operator=(const StoreProgress&) = delete;

  store::ProgressFn Fn() {
    return [this](uint64_t done, uint64_t total) { Update(done, total); };
  }

 private:
  void Update(uint64_t done, uint64_t total) {
    if (!ctx_.stderr_is_tty) return;
    const int64_t now = ctx_.env->MonotonicMicros();
    if (now - start_ < 1000000 || now - last_ < 200000) return;
    last_ = now;
    shown_ = true;
    char line[128];
    std::snprintf(
        line, sizeof(line), "\r%5.1f%%  %llu/%llu %s",
        total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / static_cast<double>(total),
        static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), unit_);
    *ctx_.err << line << std::flush;
  }

  CommandContext& ctx_;
  const char* unit_;
  int64_t start_;
  int64_t last_ = 0;
  bool shown_ = false;
};

StatusOr<std::unique_ptr<store::Store>> OpenStore(Env& env) {
  ASSIGN_OR_RETURN(std::string dir, DataDirPath());
  return store::Store::Open(env, dir + "/store");
}

// The gc roots: every resource's properties.imagesmith.storeRefs. A
// malformed reference stops gc (it could be the only thing keeping an image).
Status CollectRoots(meta::MetaStore& meta, std::vector<store::ImageRef>* roots) {
  auto refs = gallery::CollectStoreRefs(meta);
  if (!refs.ok()) {
    return Status(
        refs.status().code(),
        refs.status().message() + "; gc removed nothing (fix or delete the resource first)");
  }
  for (const gallery::StoreRef& r : *refs) roots->push_back(store::ImageRef{r.region, r.image});
  return Status::Ok();
}

int RunFsck(const ParsedArgs&, CommandContext& ctx) {
  auto s = OpenStore(*ctx.env);
  if (!s.ok()) return ReportError(s.status(), ctx);
  StoreProgress progress(ctx, "objects");
  auto rep = (*s)->Fsck(progress.Fn());
  if (!rep.ok()) return ReportError(rep.status(), ctx);
  Json out = Json::MakeObject();
  out.Set("ok", Json::Bool(rep->ok()));
  out.Set("objectsChecked", Json::Int(static_cast<int64_t>(rep->objects_checked)));
  out.Set("imagesChecked", Json::Int(static_cast<int64_t>(rep->images_checked)));
  Json problems = Json::MakeArray();
  for (const auto& p : rep->problems) problems.Append(Json::String(p));
  out.Set("problems", std::move(problems));
  PrintResult(out, ctx);
  if (!rep->ok()) {
    *ctx.err << "ERROR: the store has " << rep->problems.size()
             << " problem(s); replicate the affected images again from a region where fsck "
                "finds them whole, or rebuild them\n";
    return ExitCodeFor(StatusCode::kDataLoss);
  }
  return 0;
}

int RunGc(const ParsedArgs&, CommandContext& ctx) {
  auto data = OpenData(*ctx.env);
  if (!data.ok()) return ReportError(data.status(), ctx);
  std::vector<store::ImageRef> roots;
  Status st = CollectRoots(*data->meta, &roots);
  if (!st.ok()) return ReportError(st, ctx);
  auto s = store::Store::Open(*ctx.env, data->dir + "/store");
  if (!s.ok()) return ReportError(s.status(), ctx);
  auto rep = (*s)->Gc(roots);
  if (!rep.ok()) return ReportError(rep.status(), ctx);
  Json out = Json::MakeObject();
  out.Set("roots", Json::Int(static_cast<int64_t>(roots.size())));
  out.Set("objectsKept", Json::Int(static_cast<int64_t>(rep->objects_kept)));
  out.Set("objectsRemoved", Json::Int(static_cast<int64_t>(rep->objects_removed)));
  out.Set("bytesRemoved", Json::Int(static_cast<int64_t>(rep->bytes_removed)));
  PrintResult(out, ctx);
  return 0;
}

}  // namespace

void RegisterStoreCommands(CommandRegistry& registry) {
  registry.AddGroup("store", "The content-addressed image store.");
  registry.Add(CommandSpec{
      "store fsck",
      "Verify every object and every image in every region.",
      "Reads every object, checks its content against its name, and checks that every image\n"
      "marked complete in a region has all of its objects there. Exits 70 when it finds a\n"
      "problem; each problem names the region, the object or image and what is wrong.",
      "",
      0,
      0,
      {},
      {"imagesmith store fsck"},
      RunFsck});
  registry.Add(CommandSpec{
      "store gc",
      "Remove objects no image version, image, run or publish in progress needs.",
      "Roots are the images named by any resource's properties.imagesmith.storeRefs; images\n"
      "pinned by a running process and anything written since the gc started are kept too, so\n"
      "gc is safe while a publish or replication runs in another process (doc/store.md).",
      "",
      0,
      0,
      {},
      {"imagesmith store gc"},
      RunGc});
}

}  // namespace imagesmith::cli
