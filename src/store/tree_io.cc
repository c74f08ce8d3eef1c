#include "store/tree_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

namespace imagesmith::store {
namespace {

Status ReadXattrs(const std::string& path, Attrs* attrs) {
  attrs->xattrs.clear();
  std::string names(1024, '\0');
  ssize_t n;
  while (true) {
    n = llistxattr(path.c_str(), names.data(), names.size());
    if (n >= 0) break;
    if (errno == ERANGE) {
      names.resize(names.size() * 4);
      continue;
    }
    if (errno == ENOTSUP) return Status::Ok();
    return ErrnoError("listing xattrs of " + path, errno);
  }
  names.resize(static_cast<size_t>(n));
  size_t pos = 0;
  while (pos < names.size()) {
    std::string key(names.c_str() + pos);
    pos += key.size() + 1;
    if (key.empty()) continue;
    std::string value(256, '\0');
    ssize_t v;
    while (true) {
      v = lgetxattr(path.c_str(), key.c_str(), value.data(), value.size());
      if (v >= 0) break;
      if (errno == ERANGE) {
        value.resize(value.size() * 4);
        if (value.size() > (1u << 20))
          return InternalError("xattr " + key + " of " + path + " is larger than 1 MiB");
        continue;
      }
      if (errno == ENODATA) break;
      return ErrnoError("reading xattr " + key + " of " + path, errno);
    }
    if (v < 0) continue;
    value.resize(static_cast<size_t>(v));
    attrs->xattrs.emplace_back(std::move(key), std::move(value));
  }
  std::sort(attrs->xattrs.begin(), attrs->xattrs.end());
  return Status::Ok();
}

void FillAttrs(const struct stat& st, Attrs* a) {
  a->mode = st.st_mode & 07777;
  a->uid = st.st_uid;
  a->gid = st.st_gid;
  a->mtime_sec = st.st_mtim.tv_sec;
  a->mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
}

struct Walker {
  std::vector<WalkNode> nodes;
  std::map<std::pair<dev_t, ino_t>, std::string> first_link;

  Status Visit(size_t idx) {
    std::string path = nodes[idx].path;
    DIR* d = opendir(path.c_str());
    if (d == nullptr) return ErrnoError("opening directory " + path, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* de = readdir(d)) {
      std::string_view n(de->d_name);
      if (n == "." || n == "..") continue;
      names.emplace_back(n);
    }
    int err = errno;
    closedir(d);
    if (err != 0) return ErrnoError("reading directory " + path, err);
    std::sort(names.begin(), names.end());
    for (std::string& name : names) {
      WalkNode node;
      node.path = path + "/" + name;
      node.rel = nodes[idx].rel.empty() ? name : nodes[idx].rel + "/" + name;
      struct stat st;
      if (lstat(node.path.c_str(), &st) != 0) return ErrnoError("stat " + node.path, errno);
      DirEntry& e = node.entry;
      e.name = std::move(name);
      FillAttrs(st, &e.attrs);
      RETURN_IF_ERROR(ReadXattrs(node.path, &e.attrs));
      switch (st.st_mode & S_IFMT) {
        case S_IFREG:
          e.type = EntryType::kFile;
          e.size = static_cast<uint64_t>(st.st_size);
          if (st.st_nlink > 1) {
            auto [it, inserted] =
                first_link.emplace(std::make_pair(st.st_dev, st.st_ino), node.rel);
            if (!inserted) {
              e.type = EntryType::kHardLink;
              e.target = it->second;
              e.size = 0;
            }
          }
          break;
        case S_IFDIR:
          e.type = EntryType::kDir;
          break;
        case S_IFLNK: {
          e.type = EntryType::kSymlink;
          std::string buf(static_cast<size_t>(st.st_size) + 1, '\0');
          ssize_t n = readlink(node.path.c_str(), buf.data(), buf.size());
          if (n < 0) return ErrnoError("reading symlink " + node.path, errno);
          buf.resize(static_cast<size_t>(n));
          if (buf.empty())
            return InvalidArgumentError("symlink " + node.path + " has an empty target");
          e.target = std::move(buf);
          break;
        }
        case S_IFCHR:
        case S_IFBLK:
          e.type = S_ISCHR(st.st_mode) ? EntryType::kCharDev : EntryType::kBlockDev;
          e.rdev_major = major(st.st_rdev);
          e.rdev_minor = minor(st.st_rdev);
          break;
        case S_IFIFO:
          e.type = EntryType::kFifo;
          break;
        case S_IFSOCK:
          e.type = EntryType::kSocket;
          break;
        default:
          return InvalidArgumentError(node.path + ": unsupported file type");
      }
      bool is_dir = e.type == EntryType::kDir;
      nodes.push_back(std::move(node));
      size_t child = nodes.size() - 1;
      nodes[idx].children.push_back(child);
      if (is_dir) RETURN_IF_ERROR(Visit(child));
    }
    return Status::Ok();
  }
};

}  // namespace

Status ReadAttrs(const std::string& path, Attrs* attrs) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return ErrnoError("stat " + path, errno);
  FillAttrs(st, attrs);
  return ReadXattrs(path, attrs);
}

StatusOr<std::vector<WalkNode>> WalkTree(const std::string& dir) {
  Walker w;
  WalkNode root;
  root.path = dir;
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return ErrnoError("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError(dir + " is not a directory");
  root.entry.type = EntryType::kDir;
  RETURN_IF_ERROR(ReadAttrs(dir, &root.entry.attrs));
  w.nodes.push_back(std::move(root));
  RETURN_IF_ERROR(w.Visit(0));
  return std::move(w.nodes);
}

Status ApplyAttrs(const std::string& path, const Attrs& a, bool is_symlink) {
  if (lchown(path.c_str(), a.uid, a.gid) != 0) return ErrnoError("chown " + path, errno);
  if (!is_symlink && chmod(path.c_str(), a.mode) != 0) return ErrnoError("chmod " + path, errno);
  for (const auto& [k, v] : a.xattrs) {
    if (lsetxattr(path.c_str(), k.c_str(), v.data(), v.size(), 0) != 0) {
      return ErrnoError("setting xattr " + k + " on " + path, errno);
    }
  }
  struct timespec ts[2];
  ts[0].tv_sec = a.mtime_sec;  // atime: the same, so the result is reproducible
  ts[0].tv_nsec = a.mtime_nsec;
  ts[1] = ts[0];
  if (utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError("setting mtime of " + path, errno);
  }
  return Status::Ok();
}

}  // namespace imagesmith::store
