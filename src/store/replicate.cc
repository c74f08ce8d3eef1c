// Why the steps are in this order: an object is visible in `dst` only once
// its bytes are durable (the batch), the manifest only after every object
// it names, and the marker (what makes the image present) last, so a crash
// anywhere leaves `dst` without the image and a rerun copies what is missing.
#include "store/replicate.h"

#include "base/crash_point.h"

namespace imagesmith::store {

StatusOr<ReplicateStats> CopyClosure(const RegionObjects& src, const RegionObjects& dst,
                                     const std::vector<Sha256Digest>& objects,
                                     const Sha256Digest& image, const std::string& src_label,
                                     const std::string& dst_label, const ProgressFn& progress) {
  RETURN_IF_ERROR(dst.Init());
  ReplicateStats stats;
  std::vector<Sha256Digest> copied;
  ObjectBatch batch(dst);
  const uint64_t total = objects.size();
  uint64_t done = 0;
  // Children before parents, the manifest after everything.
  for (size_t i = 0; i + 1 < objects.size(); ++i) {
    const Sha256Digest& d = objects[i];
    if (progress && (++done % 1024) == 0) progress(done, total);
    if (dst.Touch(d)) {
      ++stats.present_objects;
      continue;
    }
    ASSIGN_OR_RETURN(std::string framed, src.ReadFramed(d));
    auto ok = UnframeObject(framed, d);
    if (!ok.ok()) {
      return DataLossError(src_label + "region " + src.name() + ": object " + d.ToHex() + " (" +
                           src.ObjectPath(d) + ") is corrupt, not copying it to " + dst_label +
                           dst.name() + ": " + ok.status().message() +
                           "; run `imagesmith store fsck`");
    }
    RETURN_IF_ERROR(batch.Add(d, framed));
    copied.push_back(d);
    ++stats.copied_objects;
    stats.copied_bytes += framed.size();
    CrashPoint("store.replicate.object_copied");
  }
  RETURN_IF_ERROR(batch.Commit());
  CrashPoint("store.replicate.committed");
  // Verify what landed in the target, as the target will serve it.
  for (const Sha256Digest& d : copied) {
    auto v = dst.Read(d);
    if (!v.ok()) return v.status().WithContext("verifying the copy in " + dst_label + dst.name());
  }
  CrashPoint("store.replicate.before_manifest");
  if (dst.Touch(image)) {
    ++stats.present_objects;
  } else {
    ASSIGN_OR_RETURN(std::string framed, src.ReadFramed(image));
    auto ok = UnframeObject(framed, image);
    if (!ok.ok()) {
      return DataLossError(src_label + "region " + src.name() + ": manifest " + image.ToHex() +
                           " (" + src.ObjectPath(image) + ") is corrupt: " + ok.status().message() +
                           "; run `imagesmith store fsck`");
    }
    RETURN_IF_ERROR(dst.WriteDurably(image, framed));
    ++stats.copied_objects;
    stats.copied_bytes += framed.size();
  }
  RETURN_IF_ERROR(dst.SyncFs());
  CrashPoint("store.replicate.before_marker");
  RETURN_IF_ERROR(dst.TouchOrWriteMarker(image));
  if (progress) progress(total, total);
  return stats;
}

}  // namespace imagesmith::store
