// Reading and checking qcow2 images.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "disk/bytes.h"
#include "disk/qcow2.h"

namespace imagesmith::disk {
namespace {

constexpr uint64_t kCopied = uint64_t{1} << 63;
constexpr uint64_t kCompressedFlag = uint64_t{1} << 62;
constexpr uint64_t kZeroFlag = 1;
constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ULL;
constexpr uint64_t kL1Reserved = 0x7f000000000001ffULL;
constexpr uint64_t kL2Reserved = 0x3f000000000001feULL;
constexpr uint64_t kRefTableReserved = 0x1ffULL;
// Memory for cached L2 tables.
constexpr uint64_t kL2CacheBytes = 4 << 20;
// Check() keeps a counter per host cluster; refuse files with more clusters.
constexpr uint64_t kMaxCheckClusters = uint64_t{64} << 20;

enum class ClusterKind { kUnallocated, kZero, kData, kCompressed };

struct Mapping {
  ClusterKind kind = ClusterKind::kUnallocated;
  uint64_t host = 0;   // plain: cluster offset; compressed: byte offset
  uint64_t csize = 0;  // compressed: bytes to read
};

class Qcow2Reader final : public DiskReader {
 public:
  Qcow2Reader(std::unique_ptr<File> file, Qcow2Header h, uint64_t file_size,
              std::vector<uint64_t> l1)
      : file_(std::move(file)),
        h_(h),
        file_size_(file_size),
        cs_(h.cluster_size()),
        l2_entries_(cs_ / 8),
        l1_(std::move(l1)),
        slots_(std::max<uint64_t>(1, std::min<uint64_t>(16, kL2CacheBytes / cs_))),
        cluster_buf_(cs_),
        compressed_buf_(2 * cs_ + 512) {
    for (Slot& s : slots_) s.table.resize(cs_);
    csize_shift_ = 62 - (h_.cluster_bits - 8);
    csize_mask_ = (uint64_t{1} << (h_.cluster_bits - 8)) - 1;
    coffset_mask_ = (uint64_t{1} << csize_shift_) - 1;
  }
  ~Qcow2Reader() override {
    if (zinit_) inflateEnd(&zs_);
  }
  Qcow2Reader(const Qcow2Reader&) = delete;
  Qcow2Reader& operator=(const Qcow2Reader&) = delete;

  DiskFormat format() const override { return DiskFormat::kQcow2; }
  uint64_t virtual_size() const override { return h_.size; }

  Status Read(uint64_t offset, size_t len, char* buf) override {
    if (offset > h_.size || len > h_.size - offset) {
      return OutOfRangeError("read past the end of the disk");
    }
    while (len > 0) {
      const uint64_t in_cluster = offset & (cs_ - 1);
      size_t n = static_cast<size_t>(std::min<uint64_t>(len, cs_ - in_cluster));
      ASSIGN_OR_RETURN(Mapping m, Map(offset));
      switch (m.kind) {
        case ClusterKind::kUnallocated:
        case ClusterKind::kZero:
          std::memset(buf, 0, n);
          break;
        case ClusterKind::kData: {
          // Merge following clusters that are contiguous on the host.
          uint64_t host_end = m.host + in_cluster + n;
          while (n < len) {
            ASSIGN_OR_RETURN(Mapping next, Map(offset + n));
            if (next.kind != ClusterKind::kData || next.host != host_end) break;
            const size_t add = static_cast<size_t>(std::min<uint64_t>(len - n, cs_));
            n += add;
            host_end += add;
          }
          ASSIGN_OR_RETURN(size_t got, file_->ReadAt(m.host + in_cluster, n, buf));
          // A last cluster may end before its full size in the file.
          std::memset(buf + got, 0, n - got);
          break;
        }
        case ClusterKind::kCompressed:
          RETURN_IF_ERROR(Decompress(offset >> h_.cluster_bits, m));
          std::memcpy(buf, cluster_buf_.data() + in_cluster, n);
          break;
      }
      offset += n;
      buf += n;
      len -= n;
    }
    return Status::Ok();
  }

  StatusOr<Extent> BlockStatus(uint64_t offset, uint64_t max_len) override {
    const uint64_t end = offset + std::min(max_len, h_.size - offset);
    ASSIGN_OR_RETURN(Mapping m, Map(offset));
    ExtentKind kind = KindOf(m.kind);
    uint64_t p = (offset | (cs_ - 1)) + 1;
    while (p < end) {
      // Skip whole unmapped L2 ranges at once.
      const uint64_t l1i = (p >> h_.cluster_bits) / l2_entries_;
      if (kind == ExtentKind::kUnallocated && (l1_[l1i] & kOffsetMask) == 0) {
        p = (l1i + 1) * l2_entries_ * cs_;
        continue;
      }
      ASSIGN_OR_RETURN(Mapping next, Map(p));
      if (KindOf(next.kind) != kind) break;
      p += cs_;
    }
    return Extent{offset, std::min(p, end) - offset, kind};
  }

  StatusOr<DiskInfo> Info() override {
    DiskInfo info;
    info.format = DiskFormat::kQcow2;
    info.virtual_size = h_.size;
    info.file_size = file_size_;
    info.cluster_size = cs_;
    ASSIGN_OR_RETURN(info.allocated_bytes, file_->AllocatedBytes());
    for (uint64_t p = 0; p < h_.size;) {
      ASSIGN_OR_RETURN(Mapping m, Map(p));
      uint64_t n = std::min(cs_, h_.size - p);
      if (m.kind == ClusterKind::kData || m.kind == ClusterKind::kCompressed) {
        info.data_bytes += n;
      }
      if (m.kind == ClusterKind::kCompressed) info.compressed_clusters = true;
      p += n;
      const uint64_t l1i = (p >> h_.cluster_bits) / l2_entries_;
      if (p < h_.size && (p >> h_.cluster_bits) % l2_entries_ == 0 &&
          (l1_[l1i] & kOffsetMask) == 0) {
        p = std::min(h_.size, (l1i + 1) * l2_entries_ * cs_);
      }
    }
    return info;
  }

  StatusOr<CheckResult> Check() override;

 private:
  struct Slot {
    uint64_t l1_index = ~uint64_t{0};
    std::vector<char> table;
  };

  static ExtentKind KindOf(ClusterKind k) {
    switch (k) {
      case ClusterKind::kUnallocated:
        return ExtentKind::kUnallocated;
      case ClusterKind::kZero:
        return ExtentKind::kZero;
      default:
        return ExtentKind::kData;
    }
  }

  bool OverlapsTopLevelMetadata(uint64_t begin, uint64_t len) const {
    const uint64_t l1_begin = h_.l1_table_offset, l1_end = l1_begin + uint64_t{h_.l1_size} * 8;
    const uint64_t rt_begin = h_.refcount_table_offset,
                   rt_end = rt_begin + uint64_t{h_.refcount_table_clusters} * cs_;
    return begin < cs_ || (begin < l1_end && begin + len > l1_begin) ||
           (begin < rt_end && begin + len > rt_begin);
  }

  // The L2 table for `l1i`, or nullptr when unallocated. Validates the L1
  // entry and the table's placement.
  StatusOr<const char*> L2Table(uint64_t l1i) {
    const uint64_t e = l1_[l1i];
    const uint64_t off = e & kOffsetMask;
    if (off == 0) return static_cast<const char*>(nullptr);
    Slot& slot = slots_[l1i % slots_.size()];
    if (slot.l1_index == l1i) return static_cast<const char*>(slot.table.data());
    const std::string where = file_->name() + ": L1 entry " + std::to_string(l1i) + " (at " +
                              Hex(h_.l1_table_offset + 8 * l1i) + ")";
    if (e & kL1Reserved) return DataLossError(where + " has reserved bits set: " + Hex(e));
    if (off & (cs_ - 1)) {
      return DataLossError(where + " points to an unaligned L2 table at " + Hex(off));
    }
    if (off >= file_size_ || cs_ > file_size_ - off) {
      return DataLossError(where + " points to an L2 table at " + Hex(off) +
                           " past the end of the file (size " + std::to_string(file_size_) + ")");
    }
    if (OverlapsTopLevelMetadata(off, cs_)) {
      return DataLossError(where + " points to an L2 table at " + Hex(off) +
                           " that overlaps the header, L1 table or refcount table");
    }
    slot.l1_index = ~uint64_t{0};
    RETURN_IF_ERROR(file_->ReadExactAt(off, cs_, slot.table.data(), "qcow2 L2 table"));
    slot.l1_index = l1i;
    return static_cast<const char*>(slot.table.data());
  }

  // Decodes and validates the L2 entry for guest `offset`.
  StatusOr<Mapping> Map(uint64_t offset) {
    const uint64_t cluster = offset >> h_.cluster_bits;
    const uint64_t l1i = cluster / l2_entries_;
    const uint64_t l2i = cluster % l2_entries_;
    ASSIGN_OR_RETURN(const char* table, L2Table(l1i));
    Mapping m;
    if (table == nullptr) return m;
    const uint64_t e = LoadBe64(table + 8 * l2i);
    return Decode(e, l1i, l2i);
  }

  StatusOr<Mapping> Decode(uint64_t e, uint64_t l1i, uint64_t l2i) {
    Mapping m;
    auto where = [&]() {
      return file_->name() + ": L2 entry " + std::to_string(l2i) + " of the table at " +
             Hex(l1_[l1i] & kOffsetMask) + " (guest offset " +
             std::to_string((l1i * l2_entries_ + l2i) * cs_) + ")";
    };
    if (e & kCompressedFlag) {
      m.kind = ClusterKind::kCompressed;
      m.host = e & coffset_mask_;
      const uint64_t sectors = ((e >> csize_shift_) & csize_mask_) + 1;
      m.csize = sectors * 512 - (m.host & 511);
      if (m.host < cs_) {
        return DataLossError(where() + " points compressed data into the header at " +
                             Hex(m.host));
      }
      if (m.host >= file_size_) {
        return DataLossError(where() + " points compressed data past the end of the file at " +
                             Hex(m.host));
      }
      return m;
    }
    if (e & kL2Reserved) return DataLossError(where() + " has reserved bits set: " + Hex(e));
    const uint64_t off = e & kOffsetMask;
    if (e & kZeroFlag) {
      if (h_.version < 3) return DataLossError(where() + " uses the zero flag in a version 2 image");
      m.kind = ClusterKind::kZero;
      return m;
    }
    if (off == 0) return m;
    if (off & (cs_ - 1)) return DataLossError(where() + " points to unaligned data at " + Hex(off));
    if (off >= file_size_) {
      return DataLossError(where() + " points to data at " + Hex(off) +
                           " past the end of the file (size " + std::to_string(file_size_) + ")");
    }
    if (OverlapsTopLevelMetadata(off, cs_) || off == (l1_[l1i] & kOffsetMask)) {
      return DataLossError(where() + " points to data at " + Hex(off) +
                           " inside the image's metadata (header, L1, refcount or its own L2 "
                           "table)");
    }
    m.kind = ClusterKind::kData;
    m.host = off;
    return m;
  }

  Status Decompress(uint64_t guest_cluster, const Mapping& m) {
    if (decompressed_cluster_ == guest_cluster) return Status::Ok();
    decompressed_cluster_ = ~uint64_t{0};
    const size_t want = static_cast<size_t>(std::min<uint64_t>(m.csize, compressed_buf_.size()));
    ASSIGN_OR_RETURN(size_t got, file_->ReadAt(m.host, want, compressed_buf_.data()));
    if (!zinit_) {
      std::memset(&zs_, 0, sizeof(zs_));
      if (inflateInit2(&zs_, -12) != Z_OK) return InternalError("zlib inflateInit2 failed");
      zinit_ = true;
    } else {
      inflateReset(&zs_);
    }
    zs_.next_in = reinterpret_cast<Bytef*>(compressed_buf_.data());
    zs_.avail_in = static_cast<uInt>(got);
    zs_.next_out = reinterpret_cast<Bytef*>(cluster_buf_.data());
    zs_.avail_out = static_cast<uInt>(cs_);
    int ret = inflate(&zs_, Z_FINISH);
    if (!((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && zs_.avail_out == 0)) {
      return DataLossError(file_->name() + ": compressed cluster at " + Hex(m.host) + " (" +
                           std::to_string(m.csize) +
                           " bytes) does not inflate to a full cluster (zlib: " +
                           (zs_.msg != nullptr ? zs_.msg : std::to_string(ret)) + ")");
    }
    decompressed_cluster_ = guest_cluster;
    return Status::Ok();
  }

  friend class Qcow2Checker;

  std::unique_ptr<File> file_;
  Qcow2Header h_;
  uint64_t file_size_;
  uint64_t cs_;
  uint64_t l2_entries_;
  std::vector<uint64_t> l1_;
  std::vector<Slot> slots_;
  std::vector<char> cluster_buf_;
  std::vector<char> compressed_buf_;
  uint64_t decompressed_cluster_ = ~uint64_t{0};
  int csize_shift_ = 0;
  uint64_t csize_mask_ = 0;
  uint64_t coffset_mask_ = 0;
  z_stream zs_{};
  bool zinit_ = false;
};

// Recomputes every host cluster's refcount from the metadata and compares it
// with the stored refcounts; reports overlaps between metadata and data.
class Qcow2Checker {
 public:
  explicit Qcow2Checker(Qcow2Reader& r) : r_(r), cs_(r.cs_) {}

  StatusOr<CheckResult> Run() {
    const uint64_t nclusters = DivRoundUp(r_.file_size_, cs_);
    if (nclusters > kMaxCheckClusters) {
      return ResourceExhaustedError(r_.file_->name() + ": too many clusters to check (" +
                                    std::to_string(nclusters) + ")");
    }
    counts_.assign(nclusters, 0);
    meta_.assign(nclusters, false);
    if (r_.h_.incompatible_features & 1) {
      result_.warnings.push_back("image is marked dirty: refcounts may be stale");
    }
    if (r_.h_.nb_snapshots > 0) {
      result_.warnings.push_back("image has " + std::to_string(r_.h_.nb_snapshots) +
                                 " internal snapshots; their tables are not checked and "
                                 "refcounts are not compared");
    }
    AddMeta(0, cs_, "header");
    AddMeta(r_.h_.l1_table_offset, uint64_t{r_.h_.l1_size} * 8, "L1 table");
    AddMeta(r_.h_.refcount_table_offset, uint64_t{r_.h_.refcount_table_clusters} * cs_,
            "refcount table");
    RETURN_IF_ERROR(WalkRefcountTable());
    RETURN_IF_ERROR(WalkL1());
    if (r_.h_.nb_snapshots == 0 && (r_.h_.incompatible_features & 1) == 0) {
      RETURN_IF_ERROR(CompareRefcounts());
    }
    return result_;
  }

 private:
  void Error(std::string msg) {
    if (result_.errors.size() < 100) result_.errors.push_back(std::move(msg));
  }

  void Count(uint64_t begin, uint64_t len, bool meta, const std::string& what) {
    if (len == 0) return;
    const uint64_t first = begin / cs_, last = (begin + len - 1) / cs_;
    for (uint64_t c = first; c <= last; ++c) {
      if (c >= counts_.size()) {
        Error(what + " at " + Hex(begin) + " extends past the end of the file");
        return;
      }
      if (meta_[c] || (meta && counts_[c] > 0)) {
        Error(what + " at " + Hex(begin) + " overlaps metadata or data in cluster " + Hex(c * cs_));
      }
      if (meta) meta_[c] = true;
      if (counts_[c] < UINT32_MAX) ++counts_[c];
    }
  }
  void AddMeta(uint64_t begin, uint64_t len, const std::string& what) {
    Count(begin, len, true, what);
  }

  Status WalkRefcountTable() {
    const uint64_t entries = uint64_t{r_.h_.refcount_table_clusters} * cs_ / 8;
    std::vector<char> buf(cs_);
    for (uint64_t i = 0; i < entries; ++i) {
      if (i % (cs_ / 8) == 0) {
        RETURN_IF_ERROR(r_.file_->ReadExactAt(r_.h_.refcount_table_offset + i * 8, cs_,
                                              buf.data(), "qcow2 refcount table"));
      }
      const uint64_t e = LoadBe64(buf.data() + (i % (cs_ / 8)) * 8);
      if (e & kRefTableReserved) {
        Error("refcount table entry " + std::to_string(i) + " has reserved bits set: " + Hex(e));
        continue;
      }
      if (e == 0) continue;
      if (e & (cs_ - 1)) {
        Error("refcount block " + std::to_string(i) + " at " + Hex(e) + " is not cluster aligned");
        continue;
      }
      if (e >= r_.file_size_ || cs_ > r_.file_size_ - e) {
        Error("refcount block " + std::to_string(i) + " at " + Hex(e) +
              " lies past the end of the file");
        continue;
      }
      blocks_.push_back({i, e});
      AddMeta(e, cs_, "refcount block " + std::to_string(i));
    }
    return Status::Ok();
  }

  Status WalkL1() {
    for (uint64_t l1i = 0; l1i < r_.l1_.size(); ++l1i) {
      const uint64_t l1e = r_.l1_[l1i];
      const uint64_t l2off = l1e & kOffsetMask;
      if (l2off == 0) continue;
      auto table = r_.L2Table(l1i);
      if (!table.ok()) {
        Error(table.status().message());
        continue;
      }
      AddMeta(l2off, cs_, "L2 table " + std::to_string(l1i));
      l2_tables_.push_back({l1i, l2off, (l1e & kCopied) != 0});
    }
    // Data clusters after all metadata is known, so a data cluster that
    // lands on any table is reported.
    std::vector<char> table(cs_);
    for (const L2Ref& t : l2_tables_) {
      RETURN_IF_ERROR(r_.file_->ReadExactAt(t.offset, cs_, table.data(), "qcow2 L2 table"));
      for (uint64_t l2i = 0; l2i < r_.l2_entries_; ++l2i) {
        const uint64_t e = LoadBe64(table.data() + 8 * l2i);
        if (e == 0) continue;
        auto m = r_.Decode(e, t.l1_index, l2i);
        if (!m.ok()) {
          Error(m.status().message());
          continue;
        }
        const std::string what = "data cluster for guest offset " +
                                 std::to_string((t.l1_index * r_.l2_entries_ + l2i) * cs_);
        if (m->kind == ClusterKind::kCompressed) {
          if (e & kCopied) Error(what + ": compressed cluster has the COPIED flag set");
          Count(m->host, m->csize, false, what);
        } else if (m->kind == ClusterKind::kData ||
                   (m->kind == ClusterKind::kZero && (e & kOffsetMask) != 0)) {
          const uint64_t host = e & kOffsetMask;
          if (host & (cs_ - 1)) {
            Error(what + " at " + Hex(host) + " is not cluster aligned");
            continue;
          }
          Count(host, cs_, false, what);
          data_refs_.push_back({host, (e & kCopied) != 0, what});
        }
      }
    }
    return Status::Ok();
  }

  Status CompareRefcounts() {
    const uint64_t bits = uint64_t{1} << r_.h_.refcount_order;
    const uint64_t per_block = cs_ * 8 / bits;
    std::vector<uint64_t> stored(counts_.size(), 0);
    std::vector<char> buf(cs_);
    for (const auto& [index, offset] : blocks_) {
      const uint64_t first = index * per_block;
      if (first >= counts_.size()) continue;
      RETURN_IF_ERROR(r_.file_->ReadExactAt(offset, cs_, buf.data(), "qcow2 refcount block"));
      const uint64_t n = std::min(per_block, counts_.size() - first);
      for (uint64_t j = 0; j < n; ++j) stored[first + j] = RefcountAt(buf.data(), j, bits);
    }
    uint64_t leaked = 0;
    for (uint64_t c = 0; c < counts_.size(); ++c) {
      if (stored[c] == counts_[c]) continue;
      if (counts_[c] == 0) {
        ++leaked;
        continue;
      }
      Error("cluster " + Hex(c * cs_) + " has refcount " + std::to_string(stored[c]) +
            " but is referenced " + std::to_string(counts_[c]) + " times");
    }
    if (leaked > 0) {
      result_.warnings.push_back(std::to_string(leaked) +
                                 " leaked clusters (allocated but unused)");
    }
    for (const L2Ref& t : l2_tables_) {
      const uint64_t c = t.offset / cs_;
      if (c < stored.size() && t.copied != (stored[c] == 1)) {
        Error("L1 entry " + std::to_string(t.l1_index) + ": COPIED flag is " +
              (t.copied ? "set" : "clear") + " but the L2 table's refcount is " +
              std::to_string(stored[c]));
      }
    }
    for (const DataRef& d : data_refs_) {
      const uint64_t c = d.host / cs_;
      if (c < stored.size() && d.copied != (stored[c] == 1)) {
        Error(d.what + ": COPIED flag is " + (d.copied ? "set" : "clear") +
              " but the refcount is " + std::to_string(stored[c]));
      }
    }
    return Status::Ok();
  }

  static uint64_t RefcountAt(const char* block, uint64_t j, uint64_t bits) {
    if (bits >= 8) {
      const uint64_t bytes = bits / 8;
      uint64_t v = 0;
      for (uint64_t k = 0; k < bytes; ++k) {
        v = (v << 8) | static_cast<unsigned char>(block[j * bytes + k]);
      }
      return v;
    }
    const uint64_t bit = j * bits;
    const unsigned char byte = static_cast<unsigned char>(block[bit / 8]);
    return (byte >> (bit % 8)) & ((1u << bits) - 1);
  }

  struct L2Ref {
    uint64_t l1_index, offset;
    bool copied;
  };
  struct DataRef {
    uint64_t host;
    bool copied;
    std::string what;
  };

  Qcow2Reader& r_;
  uint64_t cs_;
  CheckResult result_;
  std::vector<uint32_t> counts_;
  std::vector<bool> meta_;
  std::vector<std::pair<uint64_t, uint64_t>> blocks_;
  std::vector<L2Ref> l2_tables_;
  std::vector<DataRef> data_refs_;
};

StatusOr<CheckResult> Qcow2Reader::Check() { return Qcow2Checker(*this).Run(); }

}  // namespace

StatusOr<std::unique_ptr<DiskReader>> OpenQcow2(std::unique_ptr<File> file) {
  ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  std::vector<char> head(static_cast<size_t>(std::min<uint64_t>(file_size, 4096)));
  RETURN_IF_ERROR(file->ReadExactAt(0, head.size(), head.data(), "qcow2 header"));
  ASSIGN_OR_RETURN(Qcow2Header h,
                   ParseQcow2Header(head.data(), head.size(), file_size, file->name()));
  // ParseQcow2Header has checked the L1 table lies inside the file and is at
  // most 32 MiB, so this allocation is bounded by the file itself.
  std::vector<char> raw(uint64_t{h.l1_size} * 8);
  RETURN_IF_ERROR(file->ReadExactAt(h.l1_table_offset, raw.size(), raw.data(), "qcow2 L1 table"));
  std::vector<uint64_t> l1(h.l1_size);
  for (uint64_t i = 0; i < l1.size(); ++i) l1[i] = LoadBe64(raw.data() + 8 * i);
  return std::unique_ptr<DiskReader>(new Qcow2Reader(std::move(file), h, file_size, std::move(l1)));
}

}  // namespace imagesmith::disk
