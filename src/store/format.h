// The encodings of the store's structured objects: directory listings and
// image manifests (doc/store.md, "Directory objects" and "Manifests").
//
// Both are canonical: one tree or image has exactly one encoding, so the
// same input always gives the same digest. Decoders accept only canonical
// input and never crash or assert on anything; they return InvalidArgument
// (the caller turns that into DataLoss naming the object).
// Plain functions and value types; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "base/sha256.h"
#include "base/statusor.h"

namespace imagesmith::store {

// Regular files larger than this are split into chunks of this size.
inline constexpr uint64_t kFileChunkBytes = 4ull << 20;
// Raw disks are cut into chunks of this size.
inline constexpr uint64_t kDiskChunkBytes = 256ull << 10;
// No object's uncompressed content may exceed this (a bound for readers).
inline constexpr uint64_t kMaxObjectBytes = 64ull << 20;

enum class EntryType : uint8_t {
  kFile = 1,
  kDir = 2,
  kSymlink = 3,
  kCharDev = 4,
  kBlockDev = 5,
  kFifo = 6,
  kSocket = 7,
  kHardLink = 8,  // another name for an earlier regular file of the tree
};

// Owner, mode, mtime and xattrs of one inode.
struct Attrs {
  uint32_t mode = 0;  // permission bits and setuid/setgid/sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  // Sorted by name, names unique and non-empty.
  std::vector<std::pair<std::string, std::string>> xattrs;
  friend bool operator==(const Attrs&, const Attrs&) = default;
};

struct DirEntry {
  std::string name;
  EntryType type = EntryType::kFile;
  Attrs attrs;
  uint64_t size = 0;                 // kFile
  std::vector<Sha256Digest> chunks;  // kFile: ceil(size / kFileChunkBytes) digests
  Sha256Digest dir;                  // kDir: the child directory object
  std::string target;                // kSymlink: link text; kHardLink: path from the root
  uint32_t rdev_major = 0;           // kCharDev, kBlockDev
  uint32_t rdev_minor = 0;
  friend bool operator==(const DirEntry&, const DirEntry&) = default;
};

// `entries` must be sorted by name (bytewise) with unique names.
std::string EncodeDirectory(const std::vector<DirEntry>& entries);
StatusOr<std::vector<DirEntry>> DecodeDirectory(std::string_view data);

struct Manifest {
  enum class Kind { kTree, kDisk } kind = Kind::kTree;
  Json meta = Json::MakeObject();
  uint64_t logical_bytes = 0;
  // kTree
  Sha256Digest root;
  Attrs root_attrs;
  // kDisk: one entry per kDiskChunkBytes of the disk; nullopt-like zero
  // chunks are represented by `zero[i] == true`.
  std::vector<Sha256Digest> chunks;
  std::vector<bool> zero;
};

std::string EncodeManifest(const Manifest& m);
StatusOr<Manifest> DecodeManifest(std::string_view data);

// Every object a manifest names directly (root directory or disk chunks).
std::vector<Sha256Digest> ManifestChildren(const Manifest& m);

}  // namespace imagesmith::store
