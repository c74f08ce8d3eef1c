// Writing qcow2 version 3 images in one sequential pass.
//
// Layout: header (cluster 0), L1 table (right after it; its size is known
// from the virtual size), then data clusters and L2 tables in the order the
// data arrives, then refcount blocks and the refcount table. Every host
// cluster before the refcount structures is used exactly once (plain data,
// L2 tables) or holds packed compressed clusters, so refcounts are known
// without a second pass: 1 for every cluster, except clusters shared by
// compressed data, which we count as we pack them.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "disk/bytes.h"
#include "disk/qcow2.h"
#include "disk/write_batch.h"

namespace imagesmith::disk {
namespace {

constexpr uint64_t kCopied = uint64_t{1} << 63;
constexpr uint64_t kCompressed = uint64_t{1} << 62;
constexpr uint32_t kRefcountOrder = 4;  // 16-bit refcounts, as qemu defaults to
constexpr uint64_t kRunBytes = 4 << 20;

// Deflates clusters with the parameters qemu uses (raw deflate, 4 KiB window).
class Deflater {
 public:
  explicit Deflater(int level) {
    ok_ = deflateInit2(&zs_, level, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Deflater() {
    if (ok_) deflateEnd(&zs_);
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // Compresses `len` bytes into `out` (capacity `cap`). Returns the size, or
  // 0 when the result would not be smaller than `cap`.
  size_t Compress(const char* in, size_t len, char* out, size_t cap) {
    if (!ok_) return 0;
    deflateReset(&zs_);
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
    zs_.avail_in = static_cast<uInt>(len);
    zs_.next_out = reinterpret_cast<Bytef*>(out);
    zs_.avail_out = static_cast<uInt>(cap);
    int ret = deflate(&zs_, Z_FINISH);
    if (ret != Z_STREAM_END) return 0;
    return cap - zs_.avail_out;
  }

 private:
  z_stream zs_{};
  bool ok_ = false;
};

class Qcow2Writer {
 public:
  Qcow2Writer(DiskReader& in, File& out, const Qcow2WriteOptions& options,
              const ProgressFn& progress)
      : in_(in), out_(out), opt_(options), progress_(progress) {}

  Status Run() {
    const uint64_t cs = opt_.cluster_size;
    if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)) != 0) {
      return InvalidArgumentError("qcow2 cluster size " + std::to_string(cs) +
                                  " must be a power of two from 512 B to 2 MiB");
    }
    cs_ = cs;
    while ((uint64_t{1} << cluster_bits_) < cs_) ++cluster_bits_;
    size_ = DivRoundUp(in_.virtual_size(), 512) * 512;
    l2_entries_ = cs_ / 8;
    const uint64_t l1_size = DivRoundUp(size_, cs_ * l2_entries_);
    if (l1_size * 8 > kQcow2MaxL1Bytes) {
      return InvalidArgumentError("disk of " + std::to_string(size_) +
                                  " bytes is too large for qcow2 with cluster size " +
                                  std::to_string(cs_));
    }
    l1_.assign(l1_size, 0);
    l2_.assign(cs_, '\0');
    csize_shift_ = 62 - (cluster_bits_ - 8);

    // Cluster 0: header; then the L1 table.
    next_cluster_ = 1;
    l1_offset_ = cs_;
    next_cluster_ += DivRoundUp(l1_size * 8, cs_);
    if (opt_.compress) refcounts_.assign(next_cluster_, 1);

    // Empty the file only if it is not already: on ext4, truncating a file
    // to 0 (even an empty one) marks it for a synchronous flush of all its
    // delayed allocations when it is closed (auto_da_alloc), which made
    // close() take ~0.35 s for a 720 MiB image.
    ASSIGN_OR_RETURN(uint64_t existing, out_.Size());
    if (existing != 0) RETURN_IF_ERROR(out_.Truncate(0));
    RETURN_IF_ERROR(CopyData());
    RETURN_IF_ERROR(FlushL2());
    return Finish();
  }

 private:
  uint64_t AllocCluster() {
    const uint64_t c = next_cluster_++;
    if (opt_.compress) refcounts_.push_back(1);
    return c * cs_;
  }

  Status CopyData() {
    DataScanner scanner(in_, size_, cs_, std::max<uint64_t>(kRunBytes, cs_));
    // Plain data clusters of a run are written together at the end of the
    // run, on several threads; L2 tables (written when the guest offset
    // leaves their range) go out directly, from their own buffer.
    WriteBatch batch(out_, opt_.compress ? 1 : WriteBatch::DefaultThreads());
    DataRun run;
    std::vector<std::thread> workers;
    const int threads = opt_.compress ? std::max(1, opt_.threads) : 0;
    std::vector<std::unique_ptr<Deflater>> deflaters;
    for (int t = 0; t < threads; ++t) {
      deflaters.push_back(std::make_unique<Deflater>(opt_.compression_level));
    }
    while (true) {
      ASSIGN_OR_RETURN(bool more, scanner.Next(&run));
      if (!more) break;
      const size_t n = run.data.size();
      const size_t nclusters = static_cast<size_t>(DivRoundUp(n, cs_));
      if (opt_.compress) {
        // Compress the run's clusters in parallel, then write them in order.
        csizes_.assign(nclusters, 0);
        if (cbuf_.size() < nclusters * cs_) cbuf_.resize(nclusters * cs_);
        auto work = [&](int t) {
          for (size_t i = static_cast<size_t>(t); i < nclusters;
               i += static_cast<size_t>(threads)) {
            const char* src = run.data.data() + i * cs_;
            const size_t len = std::min<size_t>(cs_, n - i * cs_);
            if (IsAllZero(src, len)) {
              csizes_[i] = kZeroCluster;
              continue;
            }
            // qemu inflates every compressed cluster to a full cluster, so a
            // short last cluster is compressed zero-padded.
            std::vector<char> padded;
            const char* in = src;
            if (len < cs_) {
              padded.assign(cs_, '\0');
              std::memcpy(padded.data(), src, len);
              in = padded.data();
            }
            csizes_[i] = deflaters[static_cast<size_t>(t)]->Compress(
                in, cs_, cbuf_.data() + i * cs_, cs_ - 512);
          }
        };
        workers.clear();
        for (int t = 1; t < threads; ++t) workers.emplace_back(work, t);
        work(0);
        for (std::thread& w : workers) w.join();
      }
      for (size_t i = 0; i < nclusters; ++i) {
        const uint64_t guest = run.offset + i * cs_;
        const char* src = run.data.data() + i * cs_;
        const size_t len = std::min<size_t>(cs_, n - i * cs_);
        if (opt_.compress) {
          if (csizes_[i] == kZeroCluster) continue;
          RETURN_IF_ERROR(SelectL2(guest));
          if (csizes_[i] != 0) {
            RETURN_IF_ERROR(WriteCompressed(guest, cbuf_.data() + i * cs_, csizes_[i]));
            continue;
          }
          RETURN_IF_ERROR(WritePlain(guest, src, len));
          continue;
        }
        if (IsAllZero(src, len)) continue;
        // Batch consecutive nonzero clusters into one write; they get
        // consecutive host clusters unless an L2 table intervenes.
        RETURN_IF_ERROR(SelectL2(guest));
        size_t j = i + 1;
        const uint64_t l1i = (guest / cs_) / l2_entries_;
        while (j < nclusters) {
          const uint64_t g = run.offset + j * cs_;
          if ((g / cs_) / l2_entries_ != l1i) break;
          const size_t l = std::min<size_t>(cs_, n - j * cs_);
          if (IsAllZero(run.data.data() + j * cs_, l)) break;
          ++j;
        }
        const uint64_t host = next_cluster_ * cs_;
        for (size_t k = i; k < j; ++k) {
          const uint64_t h = AllocCluster();
          SetL2(run.offset + k * cs_, h | kCopied);
        }
        const size_t bytes = std::min<size_t>((j - i) * cs_, n - i * cs_);
        batch.Add(host, src, bytes);
        i = j - 1;
      }
      RETURN_IF_ERROR(batch.Flush());
      if (progress_) progress_(scanner.position(), size_);
    }
    return Status::Ok();
  }

  // Makes the L2 table covering guest offset `guest` current, writing out the
  // previous one.
  Status SelectL2(uint64_t guest) {
    const uint64_t l1i = (guest / cs_) / l2_entries_;
    if (l1i == current_l1i_) return Status::Ok();
    RETURN_IF_ERROR(FlushL2());
    current_l1i_ = l1i;
    std::fill(l2_.begin(), l2_.end(), '\0');
    l2_dirty_ = false;
    return Status::Ok();
  }

  void SetL2(uint64_t guest, uint64_t entry) {
    StoreBe64(l2_.data() + ((guest / cs_) % l2_entries_) * 8, entry);
    l2_dirty_ = true;
  }

  Status FlushL2() {
    if (current_l1i_ == kNone || !l2_dirty_) return Status::Ok();
    const uint64_t host = AllocCluster();
    RETURN_IF_ERROR(out_.WriteAt(host, l2_.data(), cs_));
    l1_[current_l1i_] = host | kCopied;
    l2_dirty_ = false;
    return Status::Ok();
  }

  Status WritePlain(uint64_t guest, const char* data, size_t len) {
    const uint64_t host = AllocCluster();
    RETURN_IF_ERROR(out_.WriteAt(host, data, len));
    SetL2(guest, host | kCopied);
    return Status::Ok();
  }

  // Packs compressed bytes right after the previous compressed cluster when
  // that is still the last cluster written; otherwise starts a fresh cluster.
  Status WriteCompressed(uint64_t guest, const char* data, size_t len) {
    uint64_t at;
    const bool packing = cbyte_ != 0 && DivRoundUp(cbyte_, cs_) == next_cluster_;
    if (packing) {
      at = cbyte_;
      const uint64_t end_cluster = DivRoundUp(at + len, cs_);
      while (next_cluster_ < end_cluster) AllocCluster();
      // The cluster holding `at` was counted for earlier data; add this use.
      if (at % cs_ != 0) ++refcounts_[at / cs_];
    } else {
      at = AllocCluster();
      while (next_cluster_ < DivRoundUp(at + len, cs_)) AllocCluster();
    }
    RETURN_IF_ERROR(out_.WriteAt(at, data, len));
    const uint64_t sectors_minus1 = ((at + len - 1) >> 9) - (at >> 9);
    SetL2(guest, at | (sectors_minus1 << csize_shift_) | kCompressed);
    cbyte_ = at + len;
    return Status::Ok();
  }

  uint64_t RefcountOf(uint64_t cluster) const {
    if (opt_.compress && cluster < refcounts_.size()) return refcounts_[cluster];
    return 1;
  }

  Status Finish() {
    // Refcount blocks and table go after everything else. Their own count
    // depends on how many there are, so iterate to a fixed point.
    const uint64_t per_block = cs_ * 8 / (1u << kRefcountOrder);
    const uint64_t used = next_cluster_;
    uint64_t blocks = 0, table_clusters = 0;
    while (true) {
      const uint64_t total = used + blocks + table_clusters;
      const uint64_t b = DivRoundUp(total, per_block);
      const uint64_t t = DivRoundUp(b * 8, cs_);
      if (b == blocks && t == table_clusters) break;
      blocks = b;
      table_clusters = t;
    }
    const uint64_t total = used + blocks + table_clusters;
    const uint64_t first_block = used;
    std::vector<char> buf(cs_);
    for (uint64_t b = 0; b < blocks; ++b) {
      std::fill(buf.begin(), buf.end(), '\0');
      for (uint64_t j = 0; j < per_block; ++j) {
        const uint64_t c = b * per_block + j;
        if (c >= total) break;
        StoreBe16(buf.data() + 2 * j, static_cast<uint16_t>(RefcountOf(c)));
      }
      RETURN_IF_ERROR(out_.WriteAt((first_block + b) * cs_, buf.data(), cs_));
    }
    std::vector<char> table(table_clusters * cs_, '\0');
    for (uint64_t b = 0; b < blocks; ++b) StoreBe64(table.data() + 8 * b, (first_block + b) * cs_);
    const uint64_t table_offset = (first_block + blocks) * cs_;
    RETURN_IF_ERROR(out_.WriteAt(table_offset, table.data(), table.size()));

    if (!l1_.empty()) {
      std::vector<char> l1(DivRoundUp(l1_.size() * 8, cs_) * cs_, '\0');
      for (size_t i = 0; i < l1_.size(); ++i) StoreBe64(l1.data() + 8 * i, l1_[i]);
      RETURN_IF_ERROR(out_.WriteAt(l1_offset_, l1.data(), l1.size()));
    }
    Qcow2Header h;
    h.cluster_bits = cluster_bits_;
    h.size = size_;
    h.l1_size = static_cast<uint32_t>(l1_.size());
    h.l1_table_offset = l1_offset_;
    h.refcount_table_offset = table_offset;
    h.refcount_table_clusters = static_cast<uint32_t>(table_clusters);
    h.refcount_order = kRefcountOrder;
    h.header_length = 104;
    std::string header(cs_, '\0');
    std::string fixed = h.Serialize();
    std::memcpy(header.data(), fixed.data(), fixed.size());
    RETURN_IF_ERROR(out_.WriteAt(0, header.data(), header.size()));
    if (progress_) progress_(size_, size_);
    return Status::Ok();
  }

  static constexpr uint64_t kNone = ~uint64_t{0};
  static constexpr size_t kZeroCluster = ~size_t{0};

  DiskReader& in_;
  File& out_;
  Qcow2WriteOptions opt_;
  const ProgressFn& progress_;
  uint64_t cs_ = 0;
  uint32_t cluster_bits_ = 9;
  uint64_t size_ = 0;
  uint64_t l2_entries_ = 0;
  int csize_shift_ = 0;
  uint64_t l1_offset_ = 0;
  uint64_t next_cluster_ = 0;
  std::vector<uint64_t> l1_;
  std::vector<char> l2_;
  uint64_t current_l1i_ = kNone;
  bool l2_dirty_ = false;
  std::vector<uint16_t> refcounts_;  // compress mode only
  uint64_t cbyte_ = 0;               // end of the last compressed data
  std::vector<char> cbuf_;
  std::vector<size_t> csizes_;
};

}  // namespace

Status WriteQcow2(DiskReader& in, File& out, const Qcow2WriteOptions& options,
                  const ProgressFn& progress) {
  return Qcow2Writer(in, out, options, progress).Run();
}

}  // namespace imagesmith::disk
