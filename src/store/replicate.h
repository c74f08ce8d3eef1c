// Copying one image's objects from one region directory to another: the
// body of Store::Replicate (between regions of one store) and of
// Store::CopyImageTo (into another store, e.g. a backup). Internal to
// store/; doc/store.md, "Replication", describes the protocol.
#pragma once

#include <vector>

#include "base/sha256.h"
#include "base/statusor.h"
#include "store/objects.h"
#include "store/store.h"

namespace imagesmith::store {

// Copies `objects` (children before parents, the manifest `image` last, as
// a closure walk of `src` gives them) from `src` to `dst`: objects `dst`
// has are touched, the others are read, verified against their digest,
// written as one batch, made durable and read back verified; then the
// manifest, a syncfs, and the marker. The caller holds pins on both sides.
// Errors name both regions (`src_label`/`dst_label` say which store when
// they are not the same one) and the object.
StatusOr<ReplicateStats> CopyClosure(const RegionObjects& src, const RegionObjects& dst,
                                     const std::vector<Sha256Digest>& objects,
                                     const Sha256Digest& image, const std::string& src_label,
                                     const std::string& dst_label, const ProgressFn& progress);

}  // namespace imagesmith::store
