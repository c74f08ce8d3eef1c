// The imagesmith side of bench/store/run.sh: store operations timed inside
// the process, printed as one JSON object each.
//
//   store_bench put-tree STORE REGION DIR
//   store_bench replicate STORE FROM TO IMAGE
//   store_bench disk TREE OUT      (catalog::MakeBootableDisk, fixed config;
//                                   TREE gets the boot files written into it)
#include <cstdio>
#include <string>

#include "catalog/boot_disk.h"
#include "store/store.h"

using namespace imagesmith;

namespace {

int Fail(const Status& s) {
  fprintf(stderr, "store_bench: %s\n", s.ToString().c_str());
  return 1;
}

double Secs(int64_t a, int64_t b) { return static_cast<double>(b - a) / 1e6; }

}  // namespace

int main(int argc, char** argv) {
  Env& env = *Env::Default();
  std::string op = argc > 1 ? argv[1] : "";
  if (op == "put-tree" && argc == 5) {
    auto store = store::Store::Open(env, argv[2]);
    if (!store.ok()) return Fail(store.status());
    auto region = Region::Parse(argv[3]);
    if (!region.ok()) return Fail(region.status());
    store::PutStats stats;
    int64_t t0 = env.MonotonicMicros();
    auto image = (*store)->PutTree(*region, argv[4], Json::MakeObject(), &stats, nullptr);
    int64_t t1 = env.MonotonicMicros();
    if (!image.ok()) return Fail(image.status());
    printf(
        "{\"image\":\"%s\",\"seconds\":%.3f,\"newBytes\":%llu,\"newObjects\":%llu,"
        "\"reusedObjects\":%llu}\n",
        image->ToHex().c_str(), Secs(t0, t1), static_cast<unsigned long long>(stats.new_bytes),
        static_cast<unsigned long long>(stats.new_objects),
        static_cast<unsigned long long>(stats.reused_objects));
    return 0;
  }
  if (op == "replicate" && argc == 6) {
    auto store = store::Store::Open(env, argv[2]);
    if (!store.ok()) return Fail(store.status());
    auto from = Region::Parse(argv[3]);
    auto to = Region::Parse(argv[4]);
    auto image = Sha256Digest::FromHex(argv[5]);
    if (!from.ok() || !to.ok() || !image.ok()) return Fail(InvalidArgumentError("bad arguments"));
    int64_t t0 = env.MonotonicMicros();
    auto rep = (*store)->Replicate(*from, *to, *image, nullptr);
    int64_t t1 = env.MonotonicMicros();
    if (!rep.ok()) return Fail(rep.status());
    printf(
        "{\"seconds\":%.3f,\"copiedBytes\":%llu,\"copiedObjects\":%llu,\"presentObjects\":%llu}\n",
        Secs(t0, t1), static_cast<unsigned long long>(rep->copied_bytes),
        static_cast<unsigned long long>(rep->copied_objects),
        static_cast<unsigned long long>(rep->present_objects));
    return 0;
  }
  if (op == "disk" && argc == 4) {
    catalog::BootConfig config = catalog::NewBootConfig(catalog::Generation::kV2);
    config.root_uuid = "0b0a1c8e-57a5-4c1f-9d57-4f0d2a5c8e11";
    config.timestamp = 1763769600;
    auto size = catalog::DefaultDiskSize(env, argv[2]);
    if (!size.ok()) return Fail(size.status());
    Status s = catalog::MakeBootableDisk(env, config, argv[2], *size, argv[3]);
    if (!s.ok()) return Fail(s);
    printf("{\"diskBytes\":%llu}\n", static_cast<unsigned long long>(*size));
    return 0;
  }
  fprintf(stderr, "usage: see the comment at the top of bench/store/store_bench.cc\n");
  return 2;
}
