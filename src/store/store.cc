// The Store implementation: tree and disk images over RegionObjects,
// replication, pins, fsck and gc. The protocols are described in
// doc/store.md; comments here say why the steps are in the order they are.
#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "base/crash_point.h"
#include "base/strings.h"
#include "store/format.h"
#include "store/objects.h"
#include "store/pins.h"
#include "store/replicate.h"
#include "store/store_fs.h"
#include "store/tree_io.h"

namespace imagesmith::store {

// ---- Pin ----------------------------------------------------------------

struct Pin::Impl {
  std::string lock_path;
  std::mutex mu;
  PinFile file;  // guarded by mu
  ~Impl() {
    if (!file.path.empty()) unlink(file.path.c_str());
  }
};

Pin::Pin(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pin::Pin(Pin&&) noexcept = default;
Pin& Pin::operator=(Pin&&) noexcept = default;
Pin::~Pin() = default;

namespace {

// Waits until no gc holds the store's gc lock. A gc that started before a
// pin was written may not have seen it; once that gc is over, every later
// one reads the pin before it marks.
Status WaitForGc(const std::string& lock_path) {
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("opening " + lock_path, errno);
  int r;
  do {
    r = flock(fd, LOCK_SH);
  } while (r != 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (r != 0) return ErrnoError("locking " + lock_path, err);
  return Status::Ok();
}

}  // namespace

Status Pin::Add(const ImageRef& ref) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->file.refs.push_back(ref);
  RETURN_IF_ERROR(WritePinFile(impl_->file));
  return WaitForGc(impl_->lock_path);
}

namespace {

constexpr std::string_view kFormatLine = "imagesmith-store 1\n";

FsTime MtimeOf(const struct stat& st) { return {st.st_mtim.tv_sec, st.st_mtim.tv_nsec}; }

// Runs fn(i) for i in [0, n) on a few threads; the first error wins and
// stops the rest from starting new items.
Status ParallelFor(size_t n, const std::function<Status(size_t)>& fn) {
  unsigned threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  if (n < 2) threads = 1;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;
  auto work = [&] {
    while (!failed.load()) {
      size_t i = next.fetch_add(1);
      if (i >= n) return;
      Status s = fn(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = s;
        failed.store(true);
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return first;
}

// Reports progress from any thread, at most every 64 MiB of work.
class Progress {
 public:
  Progress(const ProgressFn& fn, uint64_t total) : fn_(fn), total_(total) {}
  void Add(uint64_t n) {
    if (!fn_) return;
    uint64_t before = done_.fetch_add(n);
    if ((before >> 26) != ((before + n) >> 26)) {
      std::lock_guard<std::mutex> lock(mu_);
      fn_(before + n, total_);
    }
  }
  void Finish() {
    if (fn_) {
      std::lock_guard<std::mutex> lock(mu_);
      fn_(total_ != 0 ? total_ : done_.load(), total_);
    }
  }

 private:
  const ProgressFn& fn_;
  uint64_t total_;
  std::atomic<uint64_t> done_{0};
  std::mutex mu_;
};

// Stores objects for one put: dedups within the put, touches what the
// region already has, batches what is new.
class Putter {
 public:
  explicit Putter(const RegionObjects& region) : region_(region), batch_(region) {}

  // Stores `content` unless the region has it; returns its digest.
  StatusOr<Sha256Digest> Put(std::string_view content) {
    Sha256Digest d = Sha256Of(content);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!seen_.insert(d).second) return d;
    }
    if (region_.Touch(d)) {
      reused_.fetch_add(1);
      return d;
    }
    std::string framed = FrameObject(content);
    RETURN_IF_ERROR(batch_.Add(d, framed));
    new_objects_.fetch_add(1);
    new_bytes_.fetch_add(framed.size());
    return d;
  }

  // Makes everything durable and checks it is all there (a gc cannot have
  // taken what this put touched, but a damaged store could have).
  Status Finish() {
    RETURN_IF_ERROR(batch_.Commit());
    for (const Sha256Digest& d : seen_) {
      if (!region_.Has(d)) {
        return AbortedError("region " + region_.name() + ": object " + d.ToHex() +
                            " vanished while the image was being stored; retry");
      }
    }
    return Status::Ok();
  }

  // Writes the manifest (durably) and then the marker that makes the image
  // visible.
  StatusOr<Sha256Digest> Commit(const Manifest& m, PutStats* stats) {
    std::string text = EncodeManifest(m);
    Sha256Digest image = Sha256Of(text);
    CrashPoint("store.put.before_manifest");
    if (!region_.Touch(image)) {
      std::string framed = FrameObject(text);
      RETURN_IF_ERROR(region_.WriteDurably(image, framed));
      new_objects_.fetch_add(1);
      new_bytes_.fetch_add(framed.size());
    } else {
      reused_.fetch_add(1);
    }
    // Renames of the batches are durable before the marker names them.
    RETURN_IF_ERROR(region_.SyncFs());
    CrashPoint("store.put.before_marker");
    RETURN_IF_ERROR(region_.TouchOrWriteMarker(image));
    if (stats != nullptr) {
      stats->new_objects = new_objects_.load();
      stats->new_bytes = new_bytes_.load();
      stats->reused_objects = reused_.load();
    }
    return image;
  }

 private:
  const RegionObjects& region_;
  ObjectBatch batch_;
  std::mutex mu_;
  std::set<Sha256Digest> seen_;  // guarded by mu_
  std::atomic<uint64_t> new_objects_{0}, new_bytes_{0}, reused_{0};
};

Status ReadFull(int fd, char* buf, size_t n, uint64_t off, size_t* got) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, buf + done, n - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read", errno);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  *got = done;
  return Status::Ok();
}

bool AllZero(std::string_view s) {
  // memcmp against itself shifted by one: zero iff every byte equals the first.
  return s.empty() || (s[0] == 0 && std::memcmp(s.data(), s.data() + 1, s.size() - 1) == 0);
}

// Everything an image needs in a region, children before parents, the
// manifest last. `problem` (may be empty) receives what is missing or
// corrupt and the walk goes on; without it the first problem is the error.
struct Closure {
  Manifest manifest;
  std::vector<Sha256Digest> objects;  // distinct, manifest last
};

class ClosureWalker {
 public:
  ClosureWalker(const RegionObjects& r, std::function<void(const std::string&)> problem)
      : r_(r), problem_(std::move(problem)) {}

  StatusOr<Closure> Walk(const Sha256Digest& image) {
    Closure c;
    auto text = r_.Read(image);
    if (!text.ok()) return Report(text.status(), "image " + image.ToHex());
    auto m = DecodeManifest(*text);
    if (!m.ok()) {
      return Report(DataLossError("region " + r_.name() + ": manifest " + image.ToHex() + ": " +
                                  m.status().message()),
                    "");
    }
    c.manifest = std::move(*m);
    if (c.manifest.kind == Manifest::Kind::kTree) {
      RETURN_IF_ERROR(WalkDir(c.manifest.root, "/", &c));
    } else {
      for (const Sha256Digest& d : ManifestChildren(c.manifest)) {
        if (seen_.insert(d).second) {
          if (problem_ && !r_.Has(d)) {
            problem_("region " + r_.name() + ": image " + image.ToHex() + ": missing object " +
                     d.ToHex());
          }
          c.objects.push_back(d);
        }
      }
    }
    c.objects.push_back(image);
    return c;
  }

 private:
  Status Report(const Status& s, const std::string&) {
    if (problem_) {
      problem_(s.message());
      return Status::Ok();
    }
    return s;
  }
  Status WalkDir(const Sha256Digest& d, const std::string& path, Closure* c) {
    if (!seen_.insert(d).second) return Status::Ok();
    // No real tree nests this deep (PATH_MAX); a crafted one must not
    // exhaust the stack here or in MaterializeTree, which walks after us.
    if (++depth_ > kMaxDepth) {
      --depth_;
      return Report(DataLossError("region " + r_.name() + ": directories nested deeper than " +
                                  std::to_string(kMaxDepth) + " at " + path.substr(0, 200) + "..."),
                    "");
    }
    struct DepthGuard {
      int& d;
      ~DepthGuard() { --d; }
    } guard{depth_};
    auto text = r_.Read(d);
    if (!text.ok()) {
      return Report(
          Status(text.status().code(), text.status().message() + " (directory " + path + ")"), "");
    }
    auto entries = DecodeDirectory(*text);
    if (!entries.ok()) {
      return Report(DataLossError("region " + r_.name() + ": directory object " + d.ToHex() + " (" +
                                  path + "): " + entries.status().message()),
                    "");
    }
    for (const DirEntry& e : *entries) {
      if (e.type == EntryType::kDir) {
        RETURN_IF_ERROR(WalkDir(e.dir, path + e.name + "/", c));
      } else if (e.type == EntryType::kFile) {
        for (const Sha256Digest& chunk : e.chunks) {
          if (!seen_.insert(chunk).second) continue;
          if (problem_ && !r_.Has(chunk)) {
            problem_("region " + r_.name() + ": missing object " + chunk.ToHex() + " (" + path +
                     e.name + ")");
          }
          c->objects.push_back(chunk);
        }
      }
    }
    c->objects.push_back(d);
    return Status::Ok();
  }

  static constexpr int kMaxDepth = 2048;
  const RegionObjects& r_;
  std::function<void(const std::string&)> problem_;
  std::set<Sha256Digest> seen_;
  int depth_ = 0;
};

struct InternalPin {
  PinFile file;
  ~InternalPin() { unlink(file.path.c_str()); }
};

class StoreImpl final : public Store {
 public:
  // Pin's constructor is Store's alone; Store::Open hands us a maker.
  using PinMaker = std::function<StatusOr<Pin>(const std::string& root)>;
  StoreImpl(Env& env, std::string root, PinMaker make_pin, StoreFs& fs)
      : env_(env), root_(std::move(root)), make_pin_(std::move(make_pin)), fs_(fs) {}

  Status Init() {
    RETURN_IF_ERROR(env_.CreateDirs(root_ + "/pins"));
    std::string fmt = root_ + "/FORMAT";
    if (!env_.FileExists(fmt)) return env_.WriteFileAtomic(fmt, kFormatLine);
    ASSIGN_OR_RETURN(std::string got, env_.ReadFile(fmt, 4096));
    if (got != kFormatLine) {
      return FailedPreconditionError(fmt + " says " + QuoteForMessage(TrimWhitespace(got)) +
                                     "; this imagesmith reads \"imagesmith-store 1\" only");
    }
    return Status::Ok();
  }

  RegionObjects R(const Region& region) const {
    return RegionObjects(root_ + "/" + region.name(), region.name(), fs_);
  }

  // The pin every put and replication holds for its own duration.
  Status NewInternalPin(std::unique_ptr<InternalPin>* holder, const std::vector<ImageRef>& refs) {
    auto pin = std::make_unique<InternalPin>();
    pin->file.refs = refs;
    RETURN_IF_ERROR(CreatePinFile(root_ + "/pins", &pin->file));
    if (!refs.empty()) RETURN_IF_ERROR(WaitForGc(root_ + "/gc.lock"));
    *holder = std::move(pin);
    return Status::Ok();
  }

  StatusOr<Sha256Digest> PutTree(const Region& region, const std::string& dir, const Json& meta,
                                 PutStats* stats, const ProgressFn& progress) override {
    if (!meta.is_object()) return InvalidArgumentError("PutTree: meta must be a JSON object");
    std::unique_ptr<InternalPin> pin;
    RETURN_IF_ERROR(NewInternalPin(&pin, {}));
    RegionObjects r = R(region);
    RETURN_IF_ERROR(r.Init());
    ASSIGN_OR_RETURN(std::vector<WalkNode> nodes, WalkTree(dir));
    CrashPoint("store.put.walked");
    std::vector<size_t> files;
    uint64_t total = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].entry.type == EntryType::kFile) {
        files.push_back(i);
        total += nodes[i].entry.size;
      }
    }
    // Biggest files first, so one large file does not run alone at the end.
    std::stable_sort(files.begin(), files.end(),
                     [&](size_t a, size_t b) { return nodes[a].entry.size > nodes[b].entry.size; });
    Putter putter(r);
    Progress prog(progress, total);
    std::atomic<size_t> done_files{0};
    RETURN_IF_ERROR(ParallelFor(files.size(), [&](size_t k) -> Status {
      WalkNode& n = nodes[files[k]];
      int fd = open(n.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) return ErrnoError("opening " + n.path, errno);
      // One buffer per thread for the whole put: a fresh 4 MiB buffer per
      // file costs a page fault per 4 KiB of it.
      thread_local std::vector<char> buf(kFileChunkBytes);
      uint64_t off = 0;
      n.entry.chunks.clear();
      Status s;
      while (true) {
        size_t got = 0;
        s = ReadFull(fd, buf.data(), buf.size(), off, &got);
        if (!s.ok()) {
          s = s.WithContext(n.path);
          break;
        }
        if (got == 0) break;
        auto d = putter.Put(std::string_view(buf.data(), got));
        if (!d.ok()) {
          s = d.status();
          break;
        }
        n.entry.chunks.push_back(*d);
        off += got;
        prog.Add(got);
        if (got < kFileChunkBytes) break;
      }
      close(fd);
      n.entry.size = off;  // what was read, should the file have changed
      if (done_files.fetch_add(1) == files.size() / 2) CrashPoint("store.put.half_files");
      return s;
    }));
    // Directories bottom-up: in pre-order, children come after parents.
    for (size_t i = nodes.size(); i-- > 0;) {
      if (nodes[i].entry.type != EntryType::kDir) continue;
      std::vector<DirEntry> entries;
      entries.reserve(nodes[i].children.size());
      for (size_t c : nodes[i].children) entries.push_back(nodes[c].entry);
      ASSIGN_OR_RETURN(nodes[i].entry.dir, putter.Put(EncodeDirectory(entries)));
    }
    CrashPoint("store.put.dirs_written");
    RETURN_IF_ERROR(putter.Finish());
    Manifest m;
    m.kind = Manifest::Kind::kTree;
    m.meta = meta;
    m.logical_bytes = total;
    m.root = nodes[0].entry.dir;
    m.root_attrs = nodes[0].entry.attrs;
    ASSIGN_OR_RETURN(Sha256Digest image, putter.Commit(m, stats));
    prog.Finish();
    return image;
  }

  StatusOr<Sha256Digest> PutDisk(const Region& region, const std::string& path, const Json& meta,
                                 PutStats* stats, const ProgressFn& progress) override {
    if (!meta.is_object()) return InvalidArgumentError("PutDisk: meta must be a JSON object");
    std::unique_ptr<InternalPin> pin;
    RETURN_IF_ERROR(NewInternalPin(&pin, {}));
    RegionObjects r = R(region);
    RETURN_IF_ERROR(r.Init());
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("opening disk " + path, errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return InvalidArgumentError(path + " is not a regular file");
    }
    uint64_t size = static_cast<uint64_t>(st.st_size);
    uint64_t n = (size + kDiskChunkBytes - 1) / kDiskChunkBytes;
    // Which chunks touch data at all: holes are never read.
    std::vector<bool> has_data(n, false);
    off_t pos = 0;
    while (static_cast<uint64_t>(pos) < size) {
      off_t data = lseek(fd, pos, SEEK_DATA);
      if (data < 0) break;  // ENXIO: only a hole is left
      off_t hole = lseek(fd, data, SEEK_HOLE);
      if (hole < 0) hole = static_cast<off_t>(size);
      for (uint64_t c = static_cast<uint64_t>(data) / kDiskChunkBytes;
           c < n && c * kDiskChunkBytes < static_cast<uint64_t>(hole); ++c) {
        has_data[c] = true;
      }
      pos = hole;
    }
    Manifest m;
    m.kind = Manifest::Kind::kDisk;
    m.meta = meta;
    m.logical_bytes = size;
    m.chunks.resize(n);
    m.zero.assign(n, true);
    std::vector<char> zero_flags(n, 1);
    Putter putter(r);
    Progress prog(progress, size);
    std::atomic<uint64_t> done{0};
    Status s = ParallelFor(n, [&](size_t i) -> Status {
      if (!has_data[i]) {
        prog.Add(kDiskChunkBytes);
        return Status::Ok();
      }
      std::string buf(kDiskChunkBytes, '\0');
      size_t got = 0;
      RETURN_IF_ERROR(ReadFull(fd, buf.data(), buf.size(), i * kDiskChunkBytes, &got)
                          .WithContext("reading disk " + path));
      buf.resize(got);
      prog.Add(got);
      if (AllZero(buf)) return Status::Ok();
      ASSIGN_OR_RETURN(m.chunks[i], putter.Put(buf));
      zero_flags[i] = 0;
      if (done.fetch_add(1) == 4) CrashPoint("store.disk.mid");
      return Status::Ok();
    });
    close(fd);
    RETURN_IF_ERROR(s);
    for (uint64_t i = 0; i < n; ++i) m.zero[i] = zero_flags[i] != 0;
    RETURN_IF_ERROR(putter.Finish());
    ASSIGN_OR_RETURN(Sha256Digest image, putter.Commit(m, stats));
    prog.Finish();
    return image;
  }

  bool HasImage(const Region& region, const Sha256Digest& image) override {
    struct stat st;
    RegionObjects r = R(region);
    return stat(r.MarkerPath(image).c_str(), &st) == 0 && r.Has(image);
  }

  StatusOr<Closure> ClosureOf(const Region& region, const Sha256Digest& image) {
    if (!HasImage(region, image)) {
      return NotFoundError("image " + image.ToHex() + " is not (completely) stored in region " +
                           region.name() + " (" + R(region).dir() + ")");
    }
    RegionObjects r = R(region);
    ClosureWalker w(r, nullptr);
    return w.Walk(image);
  }

  StatusOr<ImageInfo> GetImage(const Region& region, const Sha256Digest& image) override {
    ASSIGN_OR_RETURN(Closure c, ClosureOf(region, image));
    RegionObjects r = R(region);
    ImageInfo info;
    info.digest = image;
    info.kind = c.manifest.kind == Manifest::Kind::kTree ? ImageKind::kTree : ImageKind::kDisk;
    info.logical_bytes = c.manifest.logical_bytes;
    info.object_count = c.objects.size();
    for (const Sha256Digest& d : c.objects) {
      uint64_t sz = r.StoredSize(d);
      if (sz == 0) {
        return NotFoundError("region " + region.name() + ": image " + image.ToHex() +
                             " is missing object " + d.ToHex() + "; run `imagesmith store fsck`");
      }
      info.stored_bytes += sz;
    }
    info.meta = c.manifest.meta;
    return info;
  }

  Status MaterializeTree(const Region& region, const Sha256Digest& image, const std::string& dir,
                         const ProgressFn& progress) override {
    ASSIGN_OR_RETURN(Closure c, ClosureOf(region, image));
    if (c.manifest.kind != Manifest::Kind::kTree) {
      return InvalidArgumentError("image " + image.ToHex() +
                                  " is a disk image, not a tree; use "
                                  "MaterializeDisk");
    }
    if (env_.FileExists(dir)) {
      ASSIGN_OR_RETURN(auto names, env_.ListDir(dir));
      if (!names.empty())
        return FailedPreconditionError(dir + " is not empty; give a new directory");
    } else if (mkdir(dir.c_str(), 0700) != 0) {
      return ErrnoError("creating " + dir, errno);
    }
    RegionObjects r = R(region);
    Progress prog(progress, c.manifest.logical_bytes);
    std::map<std::string, std::string> files;  // rel -> path, for hard links
    RETURN_IF_ERROR(MaterializeDir(r, c.manifest.root, dir, "", &files, prog));
    RETURN_IF_ERROR(ApplyAttrs(dir, c.manifest.root_attrs, false));
    prog.Finish();
    return Status::Ok();
  }

  Status MaterializeDir(const RegionObjects& r, const Sha256Digest& d, const std::string& path,
                        const std::string& rel, std::map<std::string, std::string>* files,
                        Progress& prog) {
    auto text = r.Read(d);
    if (!text.ok()) return text.status().WithContext("materializing " + path);
    auto entries = DecodeDirectory(*text);
    if (!entries.ok()) {
      return DataLossError("region " + r.name() + ": directory object " + d.ToHex() + " for " +
                           path + ": " + entries.status().message());
    }
    for (const DirEntry& e : *entries) {
      std::string p = path + "/" + e.name;
      std::string erel = rel.empty() ? e.name : rel + "/" + e.name;
      switch (e.type) {
        case EntryType::kFile: {
          int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
          if (fd < 0) return ErrnoError("creating " + p, errno);
          uint64_t written = 0;
          Status s;
          for (const Sha256Digest& chunk : e.chunks) {
            auto data = r.Read(chunk);
            if (!data.ok()) {
              s = data.status().WithContext(p);
              break;
            }
            std::string_view v = *data;
            while (!v.empty()) {
              ssize_t w = write(fd, v.data(), v.size());
              if (w < 0 && errno == EINTR) continue;
              if (w < 0) {
                s = ErrnoError("writing " + p, errno);
                break;
              }
              v.remove_prefix(static_cast<size_t>(w));
            }
            if (!s.ok()) break;
            written += data->size();
            prog.Add(data->size());
          }
          close(fd);
          RETURN_IF_ERROR(s);
          if (written != e.size) {
            return DataLossError("region " + r.name() + ": " + p + ": chunks hold " +
                                 std::to_string(written) + " bytes, the listing says " +
                                 std::to_string(e.size));
          }
          RETURN_IF_ERROR(ApplyAttrs(p, e.attrs, false));
          (*files)[erel] = p;
          break;
        }
        case EntryType::kDir:
          if (mkdir(p.c_str(), 0700) != 0) return ErrnoError("creating " + p, errno);
          RETURN_IF_ERROR(MaterializeDir(r, e.dir, p, erel, files, prog));
          RETURN_IF_ERROR(ApplyAttrs(p, e.attrs, false));
          break;
        case EntryType::kSymlink:
          if (symlink(e.target.c_str(), p.c_str()) != 0)
            return ErrnoError("creating symlink " + p, errno);
          RETURN_IF_ERROR(ApplyAttrs(p, e.attrs, true));
          break;
        case EntryType::kCharDev:
        case EntryType::kBlockDev: {
          mode_t type = e.type == EntryType::kCharDev ? S_IFCHR : S_IFBLK;
          if (mknod(p.c_str(), type | 0600, makedev(e.rdev_major, e.rdev_minor)) != 0) {
            return ErrnoError("creating device " + p, errno);
          }
          RETURN_IF_ERROR(ApplyAttrs(p, e.attrs, false));
          break;
        }
        case EntryType::kFifo:
          if (mkfifo(p.c_str(), 0600) != 0) return ErrnoError("creating fifo " + p, errno);
          RETURN_IF_ERROR(ApplyAttrs(p, e.attrs, false));
          break;
        case EntryType::kSocket:
          if (mknod(p.c_str(), S_IFSOCK | 0600, 0) != 0)
            return ErrnoError("creating socket " + p, errno);
          RETURN_IF_ERROR(ApplyAttrs(p, e.attrs, false));
          break;
        case EntryType::kHardLink: {
          // Only to a regular file this run created: never through a symlink.
          auto it = files->find(e.target);
          if (it == files->end()) {
            return DataLossError("region " + r.name() + ": " + p + " is a hard link to " +
                                 QuoteForMessage(e.target) +
                                 ", which is not an earlier file of the image");
          }
          if (link(it->second.c_str(), p.c_str()) != 0) return ErrnoError("linking " + p, errno);
          break;
        }
      }
    }
    return Status::Ok();
  }

  Status MaterializeDisk(const Region& region, const Sha256Digest& image,
                         const std::string& out_path, const ProgressFn& progress) override {
    ASSIGN_OR_RETURN(Closure c, ClosureOf(region, image));
    const Manifest& m = c.manifest;
    if (m.kind != Manifest::Kind::kDisk) {
      return InvalidArgumentError("image " + image.ToHex() +
                                  " is a tree image; it has no stored "
                                  "disk bytes (regenerate the disk from MaterializeTree)");
    }
    RegionObjects r = R(region);
    std::string tmp = out_path + ".tmp-" + SelfTag();
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("creating " + tmp, errno);
    Progress prog(progress, m.logical_bytes);
    Status s;
    if (ftruncate(fd, static_cast<off_t>(m.logical_bytes)) != 0)
      s = ErrnoError("sizing " + tmp, errno);
    if (s.ok()) {
      s = ParallelFor(m.chunks.size(), [&](size_t i) -> Status {
        if (m.zero[i]) {
          prog.Add(kDiskChunkBytes);
          return Status::Ok();
        }
        ASSIGN_OR_RETURN(std::string data, r.Read(m.chunks[i]));
        uint64_t off = i * kDiskChunkBytes;
        if (data.size() > m.logical_bytes - off ||
            (data.size() != kDiskChunkBytes && i + 1 != m.chunks.size())) {
          return DataLossError("region " + region.name() + ": disk chunk " + m.chunks[i].ToHex() +
                               " has the wrong length for offset " + std::to_string(off));
        }
        std::string_view v = data;
        while (!v.empty()) {
          ssize_t w = pwrite(fd, v.data(), v.size(), static_cast<off_t>(off));
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return ErrnoError("writing " + tmp, errno);
          v.remove_prefix(static_cast<size_t>(w));
          off += static_cast<uint64_t>(w);
        }
        prog.Add(data.size());
        return Status::Ok();
      });
    }
    if (s.ok() && fsync(fd) != 0) s = ErrnoError("syncing " + tmp, errno);
    close(fd);
    if (s.ok() && rename(tmp.c_str(), out_path.c_str()) != 0)
      s = ErrnoError("renaming to " + out_path, errno);
    if (!s.ok()) {
      unlink(tmp.c_str());
      return s;
    }
    prog.Finish();
    return SyncDir(Dirname(out_path));
  }

  StatusOr<ReplicateStats> Replicate(const Region& from, const Region& to,
                                     const Sha256Digest& image,
                                     const ProgressFn& progress) override {
    std::unique_ptr<InternalPin> pin;
    RETURN_IF_ERROR(NewInternalPin(&pin, {ImageRef{from, image}, ImageRef{to, image}}));
    ASSIGN_OR_RETURN(Closure c, ClosureOf(from, image));
    CrashPoint("store.replicate.started");
    return CopyClosure(R(from), R(to), c.objects, image, "", "region ", progress);
  }

  StatusOr<ReplicateStats> CopyImageTo(const Region& region, const Sha256Digest& image, Store& dest,
                                       const ProgressFn& progress) override {
    auto* other = dynamic_cast<StoreImpl*>(&dest);
    if (other == nullptr) return UnimplementedError("CopyImageTo: the target is not a store");
    std::unique_ptr<InternalPin> pin, dest_pin;
    RETURN_IF_ERROR(NewInternalPin(&pin, {ImageRef{region, image}}));
    RETURN_IF_ERROR(other->NewInternalPin(&dest_pin, {ImageRef{region, image}}));
    auto c = ClosureOf(region, image);
    if (!c.ok()) return c.status().WithContext("store " + root_);
    return CopyClosure(R(region), other->R(region), c->objects, image, "store " + root_ + ": ",
                       "store " + other->root_ + ", region ", progress);
  }

  StatusOr<Pin> NewPin() override { return make_pin_(root_); }

  StatusOr<std::vector<Region>> Regions() override {
    ASSIGN_OR_RETURN(auto names, env_.ListDir(root_));
    std::vector<Region> out;
    for (const auto& n : names) {
      auto r = Region::Parse(n);
      if (r.ok() && r->name() == n && env_.IsDirectory(root_ + "/" + n)) out.push_back(*r);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Names of the object files in a region: (digest, path). Files whose name
  // is not a digest are reported through `junk`.
  StatusOr<std::vector<std::pair<Sha256Digest, std::string>>> ListObjects(
      const RegionObjects& r, std::vector<std::string>* junk) {
    std::vector<std::pair<Sha256Digest, std::string>> out;
    std::string base = r.dir() + "/objects";
    if (!env_.IsDirectory(base)) return out;
    ASSIGN_OR_RETURN(auto fans, env_.ListDir(base));
    for (const auto& fan : fans) {
      ASSIGN_OR_RETURN(auto names, env_.ListDir(base + "/" + fan));
      for (const auto& n : names) {
        std::string p = base + "/" + fan + "/" + n;
        auto d = Sha256Digest::FromHex(n);
        if (!d.ok() || n.substr(0, 2) != fan || d->ToHex() != n) {
          if (junk != nullptr) junk->push_back(p);
          continue;
        }
        out.emplace_back(*d, p);
      }
    }
    return out;
  }

  StatusOr<std::vector<Sha256Digest>> ListMarkers(const RegionObjects& r) {
    std::vector<Sha256Digest> out;
    std::string base = r.dir() + "/images";
    if (!env_.IsDirectory(base)) return out;
    ASSIGN_OR_RETURN(auto names, env_.ListDir(base));
    for (const auto& n : names) {
      auto d = Sha256Digest::FromHex(n);
      if (d.ok() && d->ToHex() == n) out.push_back(*d);
    }
    return out;
  }

  StatusOr<FsckReport> Fsck(const ProgressFn& progress) override {
    FsckReport rep;
    std::mutex mu;
    ASSIGN_OR_RETURN(auto regions, Regions());
    std::vector<std::pair<RegionObjects, std::vector<std::pair<Sha256Digest, std::string>>>> all;
    uint64_t total = 0;
    for (const Region& region : regions) {
      RegionObjects r = R(region);
      std::vector<std::string> junk;
      ASSIGN_OR_RETURN(auto objs, ListObjects(r, &junk));
      for (const auto& j : junk)
        rep.problems.push_back(region.name() + ": " + j + ": not an object name");
      total += objs.size();
      all.emplace_back(r, std::move(objs));
    }
    Progress prog(progress, total);
    for (auto& [r, objs] : all) {
      const RegionObjects& region = r;
      auto& list = objs;
      RETURN_IF_ERROR(ParallelFor(list.size(), [&](size_t i) -> Status {
        auto framed = env_.ReadFile(list[i].second, kMaxObjectBytes + (1 << 20));
        Status s = framed.ok() ? UnframeObject(*framed, list[i].first).status() : framed.status();
        prog.Add(1);
        std::lock_guard<std::mutex> lock(mu);
        ++rep.objects_checked;
        if (!s.ok()) {
          rep.problems.push_back(region.name() + ": object " + list[i].first.ToHex() + " (" +
                                 list[i].second + "): " + s.message());
        }
        return Status::Ok();
      }));
      ASSIGN_OR_RETURN(auto markers, ListMarkers(region));
      for (const Sha256Digest& image : markers) {
        ++rep.images_checked;
        ClosureWalker w(region, [&](const std::string& p) {
          rep.problems.push_back(region.name() + ": image " + image.ToHex() + ": " + p);
        });
        RETURN_IF_ERROR(w.Walk(image).status());
      }
    }
    prog.Finish();
    std::sort(rep.problems.begin(), rep.problems.end());
    return rep;
  }

  StatusOr<GcReport> Gc(const std::vector<ImageRef>& roots) override;

 private:
  Env& env_;
  std::string root_;
  PinMaker make_pin_;
  StoreFs& fs_;
};

// ---- gc -------------------------------------------------------------------

// Moves `path` to the trash, then looks at its mtime: if something touched it
// at or after `keep_from` (a put reusing it, before the rename), it goes
// back; otherwise it is deleted. A put that touches it after the rename
// finds it missing and writes it again. Returns the bytes freed.
StatusOr<uint64_t> SweepOne(StoreFs& fs, const std::string& path, const std::string& trash,
                            FsTime keep_from, bool* removed) {
  *removed = false;
  Status moved = fs.Rename(path, trash);
  if (!moved.ok()) {
    if (moved.code() == StatusCode::kNotFound) return 0;
    return moved;
  }
  CrashPoint("store.gc.trashed");
  struct stat st;
  if (lstat(trash.c_str(), &st) != 0) return ErrnoError("stat " + trash, errno);
  if (MtimeOf(st) >= keep_from) {
    Status back = fs.Link(trash, path);
    if (!back.ok() && back.code() != StatusCode::kAlreadyExists) {
      return back.WithContext("restoring " + path + " from the trash");
    }
    (void)fs.Unlink(trash);
    return 0;
  }
  RETURN_IF_ERROR(fs.Unlink(trash));
  *removed = true;
  return static_cast<uint64_t>(st.st_size);
}

StatusOr<GcReport> StoreImpl::Gc(const std::vector<ImageRef>& roots) {
  std::string lock_path = root_ + "/gc.lock";
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return ErrnoError("opening " + lock_path, errno);
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{lock_fd};
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    return UnavailableError("another gc (or a pin waiting for one) holds " + lock_path +
                            "; retry when it has finished");
  }
  ASSIGN_OR_RETURN(auto regions, Regions());
  // 1. A gc that died between moving an object to the trash and deciding
  //    about it: put everything back, the decision is made again below.
  for (const Region& region : regions) {
    RegionObjects r = R(region);
    if (!env_.IsDirectory(r.TrashDir())) continue;
    ASSIGN_OR_RETURN(auto names, env_.ListDir(r.TrashDir()));
    for (const auto& n : names) {
      std::string t = r.TrashDir() + "/" + n;
      std::string hex = n.substr(0, n.find('.'));
      auto d = Sha256Digest::FromHex(hex);
      if (d.ok()) {
        std::string back = StartsWith(n, hex + ".image.") ? r.MarkerPath(*d) : r.ObjectPath(*d);
        Status linked = fs_.Link(t, back);
        if (!linked.ok() && linked.code() != StatusCode::kAlreadyExists) {
          return linked.WithContext("region " + region.name() + ": restoring " + back +
                                    " from the trash");
        }
      }
      RETURN_IF_ERROR(fs_.Unlink(t).WithContext("region " + region.name()));
    }
  }
  // 2. The start: a file-system timestamp, comparable with objects' mtimes.
  std::string start_file = root_ + "/gc.start";
  unlink(start_file.c_str());
  {
    int fd = open(start_file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError("creating " + start_file, errno);
    close(fd);
  }
  struct stat st;
  if (stat(start_file.c_str(), &st) != 0) return ErrnoError("stat " + start_file, errno);
  FsTime keep_from = MtimeOf(st);
  // 3. Pins (read after the start: a pin made later has a later start).
  ASSIGN_OR_RETURN(auto pins, ReadLivePins(root_ + "/pins"));
  std::vector<ImageRef> keep = roots;
  for (const PinFile& p : pins) {
    keep_from = std::min(keep_from, p.created);
    keep.insert(keep.end(), p.refs.begin(), p.refs.end());
  }
  GcReport rep;
  for (const Region& region : regions) {
    RegionObjects r = R(region);
    // 4. Mark: the kept images' closures. An image whose marker is recent
    //    counts as kept (a put or replication just finished it).
    std::set<Sha256Digest> live_images;
    for (const ImageRef& ref : keep) {
      if (ref.region == region) live_images.insert(ref.image);
    }
    ASSIGN_OR_RETURN(auto markers, ListMarkers(r));
    std::vector<Sha256Digest> dead_markers;
    for (const Sha256Digest& m : markers) {
      struct stat ms;
      if (live_images.count(m) != 0) continue;
      if (lstat(r.MarkerPath(m).c_str(), &ms) == 0 && MtimeOf(ms) >= keep_from) {
        live_images.insert(m);
      } else {
        dead_markers.push_back(m);
      }
    }
    std::set<Sha256Digest> marked;
    for (const Sha256Digest& image : live_images) {
      if (!r.Has(image)) continue;  // being replicated here: its objects are new
      ClosureWalker w(r, nullptr);
      auto c = w.Walk(image);
      if (!c.ok()) {
        return FailedPreconditionError("gc stopped before removing anything in region " +
                                       region.name() + ": cannot read live image " + image.ToHex() +
                                       ": " + c.status().message() +
                                       "; run `imagesmith store fsck`");
      }
      marked.insert(c->objects.begin(), c->objects.end());
    }
    CrashPoint("store.gc.marked");
    // 5. Sweep: markers first, so no image is ever visible without its objects.
    std::string tag = SelfTag();
    for (const Sha256Digest& m : dead_markers) {
      bool removed = false;
      auto freed = SweepOne(fs_, r.MarkerPath(m), r.TrashDir() + "/" + m.ToHex() + ".image." + tag,
                            keep_from, &removed);
      if (!freed.ok()) {
        return freed.status().WithContext("region " + region.name() + ": removing image " +
                                          m.ToHex());
      }
    }
    RETURN_IF_ERROR(fs_.SyncDir(r.dir() + "/images").WithContext("region " + region.name()));
    ASSIGN_OR_RETURN(auto objs, ListObjects(r, nullptr));
    size_t swept = 0;
    for (const auto& [d, path] : objs) {
      if (marked.count(d) != 0) {
        ++rep.objects_kept;
        continue;
      }
      struct stat os;
      if (lstat(path.c_str(), &os) != 0 || MtimeOf(os) >= keep_from) {
        ++rep.objects_kept;
        continue;
      }
      bool removed = false;
      auto swept_one = SweepOne(fs_, path, r.TrashDir() + "/" + d.ToHex() + ".object." + tag,
                                keep_from, &removed);
      if (!swept_one.ok()) {
        return swept_one.status().WithContext("region " + region.name() + ": removing object " +
                                              d.ToHex());
      }
      uint64_t freed = *swept_one;
      if (removed) {
        ++rep.objects_removed;
        rep.bytes_removed += freed;
      } else {
        ++rep.objects_kept;
      }
      if (++swept == 2) CrashPoint("store.gc.mid_sweep");
    }
    // 6. Temp files of writers that are gone.
    if (env_.IsDirectory(r.TmpDir())) {
      ASSIGN_OR_RETURN(auto tmps, env_.ListDir(r.TmpDir()));
      for (const auto& n : tmps) {
        auto parts = Split(n, '.');
        if (parts.size() >= 2 && IsAsciiDigits(parts[0]) && IsAsciiDigits(parts[1]) &&
            parts[0].size() <= 9 && parts[1].size() <= 19 &&
            ProcessAlive(std::stoi(parts[0]), std::stoull(parts[1]))) {
          continue;
        }
        unlink((r.TmpDir() + "/" + n).c_str());
      }
    }
  }
  unlink(start_file.c_str());
  return rep;
}

}  // namespace

StatusOr<std::unique_ptr<Store>> Store::Open(Env& env, const std::string& root) {
  return Open(env, root, StoreFs::Default());
}

StatusOr<std::unique_ptr<Store>> Store::Open(Env& env, const std::string& root, StoreFs& fs) {
  auto make_pin = [](const std::string& store_root) -> StatusOr<Pin> {
    auto impl = std::make_unique<Pin::Impl>();
    impl->lock_path = store_root + "/gc.lock";
    RETURN_IF_ERROR(CreatePinFile(store_root + "/pins", &impl->file));
    return Pin(std::move(impl));
  };
  auto s = std::make_unique<StoreImpl>(env, root, make_pin, fs);
  RETURN_IF_ERROR(s->Init().WithContext("opening the store at " + root));
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace imagesmith::store
