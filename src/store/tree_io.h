// Reading a directory tree into directory entries (for PutTree) and
// recreating one from them (for MaterializeTree): the POSIX side of tree
// images. Internal to store/.
#pragma once

#include <string>
#include <vector>

#include "base/statusor.h"
#include "store/format.h"

namespace imagesmith::store {

// One inode met while walking a tree, in walk order: pre-order, each
// directory's entries sorted bytewise by name (the order MaterializeTree
// recreates them in, which is what makes hard links resolvable).
struct WalkNode {
  std::string path;              // absolute path on disk
  std::string rel;               // path from the tree's root ("" for the root)
  DirEntry entry;                // chunks / dir digest filled in later
  std::vector<size_t> children;  // indices into the walk, for directories
};

// Walks `dir`. Node 0 is the root. Errors name the path.
StatusOr<std::vector<WalkNode>> WalkTree(const std::string& dir);

// Reads an inode's owner, mode, mtime and xattrs (without following a
// symlink).
Status ReadAttrs(const std::string& path, Attrs* attrs);

// Applies owner, mode (not for symlinks), xattrs and mtime to `path`, in the
// order that keeps setuid bits and file capabilities (chown clears both).
Status ApplyAttrs(const std::string& path, const Attrs& attrs, bool is_symlink);

}  // namespace imagesmith::store
