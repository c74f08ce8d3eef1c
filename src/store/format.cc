#include "store/format.h"

#include <algorithm>

#include "base/strings.h"

namespace imagesmith::store {
namespace {

constexpr std::string_view kDirMagic = "ISDIR\x01\n";
// Upper bounds that keep a hostile object from making us allocate much.
constexpr uint64_t kMaxEntries = 1u << 20;
constexpr uint64_t kMaxName = 4096;
constexpr uint64_t kMaxXattrs = 1024;
constexpr uint64_t kMaxXattrValue = 1u << 20;

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutBytes(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

void PutDigest(std::string& out, const Sha256Digest& d) {
  out.append(reinterpret_cast<const char*>(d.bytes().data()), d.bytes().size());
}

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

void PutAttrs(std::string& out, const Attrs& a) {
  PutVarint(out, a.mode);
  PutVarint(out, a.uid);
  PutVarint(out, a.gid);
  PutVarint(out, ZigZag(a.mtime_sec));
  PutVarint(out, a.mtime_nsec);
  PutVarint(out, a.xattrs.size());
  for (const auto& [k, v] : a.xattrs) {
    PutBytes(out, k);
    PutBytes(out, v);
  }
}

// A bounds-checked reader over untrusted bytes.
class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool done() const { return pos_ == d_.size(); }
  size_t pos() const { return pos_; }

  Status Varint(uint64_t* v, uint64_t max, std::string_view what) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= d_.size()) return Err("truncated " + std::string(what));
      auto b = static_cast<uint8_t>(d_[pos_++]);
      r |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        if (r > max) return Err(std::string(what) + " " + std::to_string(r) + " out of range");
        *v = r;
        return Status::Ok();
      }
    }
    return Err("overlong varint in " + std::string(what));
  }
  Status Bytes(std::string* s, uint64_t max, std::string_view what) {
    uint64_t n = 0;
    RETURN_IF_ERROR(Varint(&n, max, what));
    if (d_.size() - pos_ < n) return Err("truncated " + std::string(what));
    s->assign(d_.substr(pos_, n));
    pos_ += n;
    return Status::Ok();
  }
  Status Digest(Sha256Digest* d, std::string_view what) {
    if (d_.size() - pos_ < 32) return Err("truncated " + std::string(what));
    std::array<uint8_t, 32> b{};
    std::copy_n(reinterpret_cast<const uint8_t*>(d_.data() + pos_), 32, b.begin());
    *d = Sha256Digest(b);
    pos_ += 32;
    return Status::Ok();
  }
  Status Err(const std::string& m) const {
    return InvalidArgumentError("directory object: " + m + " at byte " + std::to_string(pos_));
  }

 private:
  std::string_view d_;
  size_t pos_ = 0;
};

Status ReadAttrs(Reader& r, Attrs* a) {
  uint64_t v = 0;
  RETURN_IF_ERROR(r.Varint(&v, 07777, "mode"));
  a->mode = static_cast<uint32_t>(v);
  RETURN_IF_ERROR(r.Varint(&v, UINT32_MAX, "uid"));
  a->uid = static_cast<uint32_t>(v);
  RETURN_IF_ERROR(r.Varint(&v, UINT32_MAX, "gid"));
  a->gid = static_cast<uint32_t>(v);
  RETURN_IF_ERROR(r.Varint(&v, UINT64_MAX, "mtime seconds"));
  a->mtime_sec = UnZigZag(v);
  RETURN_IF_ERROR(r.Varint(&v, 999999999, "mtime nanoseconds"));
  a->mtime_nsec = static_cast<uint32_t>(v);
  uint64_t n = 0;
  RETURN_IF_ERROR(r.Varint(&n, kMaxXattrs, "xattr count"));
  a->xattrs.clear();
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, val;
    RETURN_IF_ERROR(r.Bytes(&k, 255, "xattr name"));
    RETURN_IF_ERROR(r.Bytes(&val, kMaxXattrValue, "xattr value"));
    if (k.empty() || k.find('\0') != std::string::npos) return r.Err("bad xattr name");
    if (!a->xattrs.empty() && a->xattrs.back().first >= k) return r.Err("xattrs not sorted");
    a->xattrs.emplace_back(std::move(k), std::move(val));
  }
  return Status::Ok();
}

bool ValidName(std::string_view n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string_view::npos &&
         n.find('\0') == std::string_view::npos;
}

bool ValidRelPath(std::string_view p) {
  if (p.empty()) return false;
  for (const auto& part : Split(p, '/')) {
    if (!ValidName(part)) return false;
  }
  return true;
}

}  // namespace

std::string EncodeDirectory(const std::vector<DirEntry>& entries) {
  std::string out(kDirMagic);
  PutVarint(out, entries.size());
  for (const DirEntry& e : entries) {
    PutBytes(out, e.name);
    out.push_back(static_cast<char>(e.type));
    PutAttrs(out, e.attrs);
    switch (e.type) {
      case EntryType::kFile:
        PutVarint(out, e.size);
        for (const auto& c : e.chunks) PutDigest(out, c);
        break;
      case EntryType::kDir:
        PutDigest(out, e.dir);
        break;
      case EntryType::kSymlink:
      case EntryType::kHardLink:
        PutBytes(out, e.target);
        break;
      case EntryType::kCharDev:
      case EntryType::kBlockDev:
        PutVarint(out, e.rdev_major);
        PutVarint(out, e.rdev_minor);
        break;
      case EntryType::kFifo:
      case EntryType::kSocket:
        break;
    }
  }
  return out;
}

StatusOr<std::vector<DirEntry>> DecodeDirectory(std::string_view data) {
  if (data.substr(0, kDirMagic.size()) != kDirMagic) {
    return InvalidArgumentError("directory object: bad magic (not an imagesmith directory object)");
  }
  Reader r(data.substr(kDirMagic.size()));
  uint64_t n = 0;
  RETURN_IF_ERROR(r.Varint(&n, kMaxEntries, "entry count"));
  std::vector<DirEntry> entries;
  entries.reserve(std::min<uint64_t>(n, 4096));
  for (uint64_t i = 0; i < n; ++i) {
    DirEntry e;
    RETURN_IF_ERROR(r.Bytes(&e.name, kMaxName, "name"));
    if (!ValidName(e.name)) return r.Err("invalid name " + QuoteForMessage(e.name));
    if (!entries.empty() && entries.back().name >= e.name) {
      return r.Err("names not sorted or not unique at " + QuoteForMessage(e.name));
    }
    uint64_t type = 0;
    RETURN_IF_ERROR(r.Varint(&type, 8, "entry type"));
    if (type == 0) return r.Err("entry type 0");
    e.type = static_cast<EntryType>(type);
    RETURN_IF_ERROR(ReadAttrs(r, &e.attrs));
    uint64_t v = 0;
    switch (e.type) {
      case EntryType::kFile: {
        RETURN_IF_ERROR(r.Varint(&e.size, UINT64_MAX / 2, "file size"));
        uint64_t chunks = (e.size + kFileChunkBytes - 1) / kFileChunkBytes;
        if (chunks > (data.size() / 32) + 1) return r.Err("file size larger than its chunk list");
        e.chunks.resize(chunks);
        for (auto& c : e.chunks) RETURN_IF_ERROR(r.Digest(&c, "chunk digest"));
        break;
      }
      case EntryType::kDir:
        RETURN_IF_ERROR(r.Digest(&e.dir, "directory digest"));
        break;
      case EntryType::kSymlink:
        RETURN_IF_ERROR(r.Bytes(&e.target, kMaxName, "symlink target"));
        if (e.target.empty() || e.target.find('\0') != std::string::npos) {
          return r.Err("invalid symlink target");
        }
        break;
      case EntryType::kHardLink:
        RETURN_IF_ERROR(r.Bytes(&e.target, kMaxName, "hard link target"));
        if (!ValidRelPath(e.target))
          return r.Err("invalid hard link target " + QuoteForMessage(e.target));
        break;
      case EntryType::kCharDev:
      case EntryType::kBlockDev:
        RETURN_IF_ERROR(r.Varint(&v, UINT32_MAX, "device major"));
        e.rdev_major = static_cast<uint32_t>(v);
        RETURN_IF_ERROR(r.Varint(&v, UINT32_MAX, "device minor"));
        e.rdev_minor = static_cast<uint32_t>(v);
        break;
      case EntryType::kFifo:
      case EntryType::kSocket:
        break;
    }
    entries.push_back(std::move(e));
  }
  if (!r.done()) return r.Err("trailing bytes");
  // Canonical form only (minimal varints): one listing, one digest.
  if (EncodeDirectory(entries) != data) {
    return InvalidArgumentError("directory object: not in canonical form");
  }
  return entries;
}

namespace {

Json AttrsJson(const Attrs& a) {
  Json j = Json::MakeObject();
  j.Set("mode", Json::Int(a.mode));
  j.Set("uid", Json::Int(a.uid));
  j.Set("gid", Json::Int(a.gid));
  j.Set("mtimeSec", Json::Int(a.mtime_sec));
  j.Set("mtimeNsec", Json::Int(a.mtime_nsec));
  Json x = Json::MakeObject();
  static const char* kHex = "0123456789abcdef";
  for (const auto& [k, v] : a.xattrs) {
    std::string hex;
    for (unsigned char c : v) {
      hex.push_back(kHex[c >> 4]);
      hex.push_back(kHex[c & 15]);
    }
    x.Set(k, Json::String(hex));
  }
  j.Set("xattrs", std::move(x));
  return j;
}

Status ManifestErr(const std::string& m) { return InvalidArgumentError("manifest: " + m); }

StatusOr<int64_t> GetInt(const Json& o, std::string_view key, int64_t min, int64_t max) {
  const Json* v = o.Find(key);
  std::optional<int64_t> n = v != nullptr ? v->AsInt64() : std::nullopt;
  if (!n || *n < min || *n > max) {
    return ManifestErr("\"" + std::string(key) + "\" missing or out of range");
  }
  return *n;
}

StatusOr<Sha256Digest> GetDigest(const Json& v, std::string_view what) {
  if (!v.is_string() || !Sha256Digest::IsHex(v.string_value()) ||
      AsciiToLower(v.string_value()) != v.string_value()) {
    return ManifestErr(std::string(what) + " is not a lowercase SHA-256 hex digest");
  }
  return Sha256Digest::FromHex(v.string_value());
}

StatusOr<Attrs> ParseAttrs(const Json& j) {
  if (!j.is_object()) return ManifestErr("rootAttrs is not an object");
  Attrs a;
  ASSIGN_OR_RETURN(int64_t mode, GetInt(j, "mode", 0, 07777));
  ASSIGN_OR_RETURN(int64_t uid, GetInt(j, "uid", 0, UINT32_MAX));
  ASSIGN_OR_RETURN(int64_t gid, GetInt(j, "gid", 0, UINT32_MAX));
  ASSIGN_OR_RETURN(a.mtime_sec, GetInt(j, "mtimeSec", INT64_MIN, INT64_MAX));
  ASSIGN_OR_RETURN(int64_t nsec, GetInt(j, "mtimeNsec", 0, 999999999));
  a.mode = static_cast<uint32_t>(mode);
  a.uid = static_cast<uint32_t>(uid);
  a.gid = static_cast<uint32_t>(gid);
  a.mtime_nsec = static_cast<uint32_t>(nsec);
  const Json* x = j.Find("xattrs");
  if (x == nullptr || !x->is_object()) return ManifestErr("rootAttrs.xattrs is not an object");
  for (const auto& m : x->object_items()) {
    if (!m.value.is_string() || m.value.string_value().size() % 2 != 0) {
      return ManifestErr("rootAttrs.xattrs value is not hex");
    }
    std::string bin;
    const std::string& h = m.value.string_value();
    for (size_t i = 0; i < h.size(); i += 2) {
      auto nib = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
      };
      int hi = nib(h[i]), lo = nib(h[i + 1]);
      if (hi < 0 || lo < 0) return ManifestErr("rootAttrs.xattrs value is not lowercase hex");
      bin.push_back(static_cast<char>(hi * 16 + lo));
    }
    if (m.key.empty() || (!a.xattrs.empty() && a.xattrs.back().first >= m.key)) {
      return ManifestErr("rootAttrs.xattrs names not sorted");
    }
    a.xattrs.emplace_back(m.key, std::move(bin));
  }
  return a;
}

}  // namespace

std::string EncodeManifest(const Manifest& m) {
  Json j = Json::MakeObject();
  j.Set("imagesmithImage", Json::Int(1));
  j.Set("kind", Json::String(m.kind == Manifest::Kind::kTree ? "tree" : "disk"));
  j.Set("logicalBytes", Json::Int(static_cast<int64_t>(m.logical_bytes)));
  if (m.kind == Manifest::Kind::kTree) {
    j.Set("root", Json::String(m.root.ToHex()));
    j.Set("rootAttrs", AttrsJson(m.root_attrs));
  } else {
    j.Set("chunkBytes", Json::Int(static_cast<int64_t>(kDiskChunkBytes)));
    // Runs of zero chunks are one number (their count); others are digests.
    Json chunks = Json::MakeArray();
    int64_t zeros = 0;
    for (size_t i = 0; i < m.chunks.size(); ++i) {
      if (m.zero[i]) {
        ++zeros;
        continue;
      }
      if (zeros > 0) chunks.Append(Json::Int(zeros));
      zeros = 0;
      chunks.Append(Json::String(m.chunks[i].ToHex()));
    }
    if (zeros > 0) chunks.Append(Json::Int(zeros));
    j.Set("chunks", std::move(chunks));
  }
  j.Set("meta", m.meta);
  return j.Dump(-1) + "\n";
}

StatusOr<Manifest> DecodeManifest(std::string_view data) {
  JsonParseOptions opts;
  opts.allow_comments = false;
  auto parsed = ParseJson(data, opts);
  if (!parsed.ok()) return ManifestErr(parsed.status().message());
  const Json& j = *parsed;
  if (!j.is_object()) return ManifestErr("not a JSON object");
  ASSIGN_OR_RETURN(int64_t version, GetInt(j, "imagesmithImage", 0, INT64_MAX));
  if (version != 1) return ManifestErr("format version " + std::to_string(version) + " is not 1");
  Manifest m;
  const Json* kind = j.Find("kind");
  if (kind == nullptr || !kind->is_string()) return ManifestErr("\"kind\" missing");
  ASSIGN_OR_RETURN(int64_t logical, GetInt(j, "logicalBytes", 0, INT64_MAX));
  m.logical_bytes = static_cast<uint64_t>(logical);
  if (kind->string_value() == "tree") {
    m.kind = Manifest::Kind::kTree;
    const Json* root = j.Find("root");
    if (root == nullptr) return ManifestErr("\"root\" missing");
    ASSIGN_OR_RETURN(m.root, GetDigest(*root, "root"));
    const Json* attrs = j.Find("rootAttrs");
    if (attrs == nullptr) return ManifestErr("\"rootAttrs\" missing");
    ASSIGN_OR_RETURN(m.root_attrs, ParseAttrs(*attrs));
  } else if (kind->string_value() == "disk") {
    m.kind = Manifest::Kind::kDisk;
    ASSIGN_OR_RETURN(int64_t cb, GetInt(j, "chunkBytes", 0, INT64_MAX));
    if (static_cast<uint64_t>(cb) != kDiskChunkBytes) return ManifestErr("unsupported chunkBytes");
    const Json* chunks = j.Find("chunks");
    if (chunks == nullptr || !chunks->is_array()) return ManifestErr("\"chunks\" is not an array");
    uint64_t expected = (m.logical_bytes + kDiskChunkBytes - 1) / kDiskChunkBytes;
    for (const Json& c : chunks->array_items()) {
      if (c.is_number()) {
        std::optional<int64_t> n = c.AsInt64();
        if (!n || *n <= 0 || static_cast<uint64_t>(*n) > expected - m.chunks.size()) {
          return ManifestErr("zero-chunk run out of range");
        }
        m.chunks.resize(m.chunks.size() + static_cast<size_t>(*n));
        m.zero.resize(m.chunks.size(), true);
      } else {
        if (m.chunks.size() >= expected) return ManifestErr("more chunks than the disk size needs");
        ASSIGN_OR_RETURN(Sha256Digest d, GetDigest(c, "chunk"));
        m.chunks.push_back(d);
        m.zero.push_back(false);
      }
    }
    if (m.chunks.size() != expected) return ManifestErr("chunk list does not cover the disk size");
  } else {
    return ManifestErr("unknown kind " + QuoteForMessage(kind->string_value()));
  }
  const Json* meta = j.Find("meta");
  if (meta == nullptr || !meta->is_object()) return ManifestErr("\"meta\" is not an object");
  m.meta = *meta;
  // Canonical form only: anything else would give one image two digests.
  if (EncodeManifest(m) != data) return ManifestErr("not in canonical form");
  return m;
}

std::vector<Sha256Digest> ManifestChildren(const Manifest& m) {
  if (m.kind == Manifest::Kind::kTree) return {m.root};
  std::vector<Sha256Digest> out;
  for (size_t i = 0; i < m.chunks.size(); ++i) {
    if (!m.zero[i]) out.push_back(m.chunks[i]);
  }
  return out;
}

}  // namespace imagesmith::store
