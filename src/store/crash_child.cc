// The process store_crash_test kills: runs one store operation, named on the
// command line, with IMAGESMITH_CRASH_AT in its environment. It is exec'd
// (not just forked) so the crash point is read fresh. Test-only.
//
//   store_crash_child STORE put-tree REGION DIR
//   store_crash_child STORE put-disk REGION FILE
//   store_crash_child STORE replicate FROM TO IMAGE
//   store_crash_child STORE gc [REGION:IMAGE...]
#include <cstdio>
#include <cstring>
#include <string>

#include "store/store.h"

using namespace imagesmith;

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  auto store = store::Store::Open(*Env::Default(), argv[1]);
  if (!store.ok()) {
    fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  std::string op = argv[2];
  Status status;
  if ((op == "put-tree" || op == "put-disk") && argc == 5) {
    auto region = Region::Parse(argv[3]);
    if (!region.ok()) return 2;
    auto image = op == "put-tree"
                     ? (*store)->PutTree(*region, argv[4], Json::MakeObject(), nullptr, nullptr)
                     : (*store)->PutDisk(*region, argv[4], Json::MakeObject(), nullptr, nullptr);
    status = image.status();
    if (image.ok()) printf("%s\n", image->ToHex().c_str());
  } else if (op == "replicate" && argc == 6) {
    auto from = Region::Parse(argv[3]);
    auto to = Region::Parse(argv[4]);
    auto image = Sha256Digest::FromHex(argv[5]);
    if (!from.ok() || !to.ok() || !image.ok()) return 2;
    status = (*store)->Replicate(*from, *to, *image, nullptr).status();
  } else if (op == "gc") {
    std::vector<store::ImageRef> roots;
    for (int i = 3; i < argc; ++i) {
      const char* colon = strchr(argv[i], ':');
      if (colon == nullptr) return 2;
      auto region = Region::Parse(std::string(argv[i], static_cast<size_t>(colon - argv[i])));
      auto image = Sha256Digest::FromHex(colon + 1);
      if (!region.ok() || !image.ok()) return 2;
      roots.push_back(store::ImageRef{*region, *image});
    }
    status = (*store)->Gc(roots).status();
  } else {
    return 2;
  }
  if (!status.ok()) {
    fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
