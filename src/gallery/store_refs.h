// The store images the metadata database keeps alive: by convention, any
// resource whose properties.imagesmith.storeRefs is an array of
// {"region": "<name>", "image": "<sha256 hex>"} keeps those images in those
// regions (doc/store.md, "Garbage collection"). Store gc takes its roots from
// here, and a backup copies exactly these images.
//
// Thread-compatible; runs one read transaction.
#pragma once

#include <vector>

#include "base/region.h"
#include "base/resource_id.h"
#include "base/sha256.h"
#include "meta/meta_store.h"

namespace imagesmith::gallery {

struct StoreRef {
  Region region;
  Sha256Digest image;
  ResourceId owner;  // the resource that names it
};

// Every storeRefs entry of every resource under every subscription, read
// in one read transaction (one consistent view), in resource ID order. A
// malformed entry is FailedPrecondition naming the resource and what is
// wrong: a caller must not act on a partial list.
StatusOr<std::vector<StoreRef>> CollectStoreRefs(meta::MetaStore& meta);

}  // namespace imagesmith::gallery
