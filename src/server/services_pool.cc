#include "server/services_pool.h"

namespace imagesmith::server {

ServicesPool::ServicesPool(api::Services& base,
                           std::vector<std::unique_ptr<meta::MetaStore>> stores)
    : base_(base), stores_(std::move(stores)) {
  services_.reserve(stores_.size());
  for (auto& store : stores_) {
    api::Services s = base_;
    s.meta = store.get();
    services_.push_back(s);
  }
}

api::Services& ServicesPool::ForThisThread() {
  // Per pool and thread; the key is the pool's address so two pools in one
  // process (tests) do not share slots.
  thread_local const ServicesPool* owner = nullptr;
  thread_local api::Services* mine = nullptr;
  if (owner != this) {
    owner = this;
    size_t i = next_.fetch_add(1);
    mine = i < services_.size() ? &services_[i] : &base_;
  }
  return *mine;
}

}  // namespace imagesmith::server
