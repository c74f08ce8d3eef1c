#include "store/objects.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/crash_point.h"
#include "base/env.h"
#include "store/format.h"

namespace imagesmith::store {
namespace {

constexpr char kMagic[4] = {'I', 'S', 'O', 'B'};
constexpr size_t kHeaderBytes = 16;
constexpr uint8_t kCodecRaw = 0;
constexpr uint8_t kCodecZstd = 1;
constexpr int kZstdLevel = 3;
// A batch is committed once it holds this many objects or bytes.
constexpr size_t kBatchObjects = 4096;
constexpr uint64_t kBatchBytes = 256ull << 20;

void PutLE64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t GetLE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// A new file with `data`; removed again when anything fails.
Status WriteFile(StoreFs& fs, const std::string& path, std::string_view data, bool sync) {
  ASSIGN_OR_RETURN(int fd, fs.Create(path, 0444));
  Status s = WriteAll(fs, fd, data, path);
  if (s.ok() && sync) s = fs.Sync(fd, path);
  fs.Close(fd);
  if (!s.ok()) (void)fs.Unlink(path);
  return s;
}

std::atomic<uint64_t> g_temp_counter{0};

}  // namespace

std::string FrameObject(std::string_view content) {
  std::string out(kHeaderBytes, '\0');
  std::memcpy(out.data(), kMagic, 4);
  out[4] = 1;  // format version
  PutLE64(out.data() + 8, content.size());
  size_t bound = ZSTD_compressBound(content.size());
  out.resize(kHeaderBytes + bound);
  thread_local ZSTD_CCtx* cctx = ZSTD_createCCtx();
  size_t n = ZSTD_compressCCtx(cctx, out.data() + kHeaderBytes, bound, content.data(),
                               content.size(), kZstdLevel);
  if (ZSTD_isError(n) || n >= content.size()) {
    out[5] = static_cast<char>(kCodecRaw);
    out.resize(kHeaderBytes);
    out.append(content);
  } else {
    out[5] = static_cast<char>(kCodecZstd);
    out.resize(kHeaderBytes + n);
  }
  return out;
}

StatusOr<std::string> UnframeObject(std::string_view framed, const Sha256Digest& expected) {
  if (framed.size() < kHeaderBytes || std::memcmp(framed.data(), kMagic, 4) != 0) {
    return DataLossError("not an imagesmith object (bad header)");
  }
  if (framed[4] != 1) return DataLossError("unknown object format version");
  if (framed[6] != 0 || framed[7] != 0) return DataLossError("reserved header bytes are not zero");
  uint64_t size = GetLE64(framed.data() + 8);
  if (size > kMaxObjectBytes) return DataLossError("object size in header too large");
  std::string_view payload = framed.substr(kHeaderBytes);
  std::string content;
  auto codec = static_cast<uint8_t>(framed[5]);
  if (codec == kCodecRaw) {
    if (payload.size() != size) return DataLossError("raw object length does not match header");
    content.assign(payload);
  } else if (codec == kCodecZstd) {
    unsigned long long frame = ZSTD_getFrameContentSize(payload.data(), payload.size());
    if (frame != size) return DataLossError("zstd frame size does not match header");
    content.resize(size);
    thread_local ZSTD_DCtx* dctx = ZSTD_createDCtx();
    size_t n =
        ZSTD_decompressDCtx(dctx, content.data(), content.size(), payload.data(), payload.size());
    if (ZSTD_isError(n)) {
      return DataLossError(std::string("zstd: ") + ZSTD_getErrorName(n));
    }
    if (n != size) return DataLossError("zstd frame shorter than header says");
  } else {
    return DataLossError("unknown compression codec " + std::to_string(codec));
  }
  Sha256Digest got = Sha256Of(content);
  if (got != expected) {
    return DataLossError("content hashes to " + got.ToHex() + ", not to its name");
  }
  return content;
}

std::string RegionObjects::ObjectPath(const Sha256Digest& d) const {
  std::string hex = d.ToHex();
  return dir_ + "/objects/" + hex.substr(0, 2) + "/" + hex;
}

std::string RegionObjects::MarkerPath(const Sha256Digest& image) const {
  return dir_ + "/images/" + image.ToHex();
}

Status RegionObjects::Init() const {
  Env* env = Env::Default();
  for (const char* sub : {"images", "tmp", "trash"}) {
    RETURN_IF_ERROR(env->CreateDirs(dir_ + "/" + sub));
  }
  static const char* kHex = "0123456789abcdef";
  for (int i = 0; i < 256; ++i) {
    std::string p = dir_ + "/objects/" + kHex[i >> 4] + kHex[i & 15];
    if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) {
      if (errno == ENOENT) {
        RETURN_IF_ERROR(env->CreateDirs(p));
        continue;
      }
      return ErrnoError("creating " + p, errno);
    }
  }
  return Status::Ok();
}

StatusOr<std::string> RegionObjects::ReadFramed(const Sha256Digest& d) const {
  std::string path = ObjectPath(d);
  auto data = Env::Default()->ReadFile(path, kMaxObjectBytes + (1 << 20));
  if (!data.ok()) {
    if (data.status().code() == StatusCode::kNotFound) {
      return NotFoundError("region " + name_ + ": object " + d.ToHex() + " is missing (" + path +
                           "); run `imagesmith store fsck`");
    }
    return Status(data.status().code(),
                  "region " + name_ + ": object " + d.ToHex() + ": " + data.status().message());
  }
  return data;
}

StatusOr<std::string> RegionObjects::Read(const Sha256Digest& d) const {
  ASSIGN_OR_RETURN(std::string framed, ReadFramed(d));
  auto content = UnframeObject(framed, d);
  if (!content.ok()) {
    return DataLossError("region " + name_ + ": object " + d.ToHex() + " (" + ObjectPath(d) +
                         ") is corrupt: " + content.status().message() +
                         "; run `imagesmith store fsck` and replicate the image again");
  }
  return content;
}

bool RegionObjects::Touch(const Sha256Digest& d) const { return fs_->Touch(ObjectPath(d)).ok(); }

bool RegionObjects::Has(const Sha256Digest& d) const {
  struct stat st;
  return stat(ObjectPath(d).c_str(), &st) == 0;
}

uint64_t RegionObjects::StoredSize(const Sha256Digest& d) const {
  struct stat st;
  if (stat(ObjectPath(d).c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

std::string RegionObjects::NewTempPath() const {
  return TmpDir() + "/" + SelfTag() + "." + std::to_string(g_temp_counter.fetch_add(1));
}

Status RegionObjects::WriteDurably(const Sha256Digest& d, std::string_view framed) const {
  const std::string what = "region " + name_ + ": object " + d.ToHex();
  std::string tmp = NewTempPath();
  RETURN_IF_ERROR(WriteFile(*fs_, tmp, framed, /*sync=*/true).WithContext(what));
  CrashPoint("store.object.before_rename");
  std::string path = ObjectPath(d);
  Status s = fs_->Rename(tmp, path);
  if (!s.ok()) {
    (void)fs_->Unlink(tmp);
    return s.WithContext(what);
  }
  CrashPoint("store.object.renamed");
  return fs_->SyncDir(Dirname(path)).WithContext(what);
}

Status RegionObjects::WriteMarker(const Sha256Digest& image) const {
  const std::string what = "region " + name_ + ": marker of image " + image.ToHex();
  std::string tmp = NewTempPath();
  RETURN_IF_ERROR(WriteFile(*fs_, tmp, "", /*sync=*/true).WithContext(what));
  CrashPoint("store.marker.before_rename");
  std::string path = MarkerPath(image);
  Status s = fs_->Rename(tmp, path);
  if (!s.ok()) {
    (void)fs_->Unlink(tmp);
    return s.WithContext(what);
  }
  return fs_->SyncDir(dir_ + "/images").WithContext(what);
}

Status RegionObjects::TouchOrWriteMarker(const Sha256Digest& image) const {
  if (fs_->Touch(MarkerPath(image)).ok()) return Status::Ok();
  return WriteMarker(image);
}

Status RegionObjects::SyncFs() const { return fs_->SyncFs(dir_).WithContext("region " + name_); }

ObjectBatch::~ObjectBatch() {
  // Uncommitted temp files are useless to anyone; remove them.
  for (const auto& [tmp, d] : pending_) (void)region_.fs().Unlink(tmp);
}

Status ObjectBatch::Add(const Sha256Digest& d, std::string_view framed) {
  std::string tmp = region_.NewTempPath();
  RETURN_IF_ERROR(WriteFile(region_.fs(), tmp, framed, /*sync=*/false)
                      .WithContext("region " + region_.name() + ": object " + d.ToHex()));
  CrashPoint("store.object.temp_written");
  bool commit = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace_back(std::move(tmp), d);
    pending_bytes_ += framed.size();
    commit = pending_.size() >= kBatchObjects || pending_bytes_ >= kBatchBytes;
  }
  if (commit) return Commit();
  return Status::Ok();
}

Status ObjectBatch::Commit() {
  std::lock_guard<std::mutex> commit_lock(commit_mu_);
  std::vector<std::pair<std::string, Sha256Digest>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_);
    pending_bytes_ = 0;
  }
  if (batch.empty()) return Status::Ok();
  // Bytes first, names second: an object never becomes visible before its
  // content is on disk.
  Status s = region_.SyncFs();
  CrashPoint("store.batch.synced");
  size_t i = 0;
  for (; s.ok() && i < batch.size(); ++i) {
    std::string path = region_.ObjectPath(batch[i].second);
    s = region_.fs().Rename(batch[i].first, path);
    if (!s.ok()) {
      s = s.WithContext("region " + region_.name() + ": object " + batch[i].second.ToHex());
      break;
    }
    if (i == batch.size() / 2) CrashPoint("store.batch.mid_rename");
  }
  for (; i < batch.size(); ++i) (void)region_.fs().Unlink(batch[i].first);
  return s;
}

Status SyncFileSystem(const std::string& dir, StoreFs& fs) { return fs.SyncFs(dir); }

Status SyncDir(const std::string& dir, StoreFs& fs) { return fs.SyncDir(dir); }

}  // namespace imagesmith::store
