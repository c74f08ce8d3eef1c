// The rollout engine. See rollout.h and doc/rollout.md.
#include "fleet/rollout.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

#include "base/strings.h"

namespace imagesmith::fleet {
namespace {

constexpr size_t kHistory = 5;
constexpr size_t kDetailChars = 400;  // of each instance's health output in messages

std::string Iso8601(int64_t us) {
  if (us <= 0) return "";
  std::time_t t = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06lldZ", static_cast<long long>(us % 1'000'000));
  return std::string(buf) + frac;
}

std::string Short(const std::string& text) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  if (t.size() > kDetailChars) t = t.substr(0, kDetailChars) + "...";
  return t;
}

std::string Percent(size_t part, size_t whole) {
  if (whole == 0) return "0%";
  double p = 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g%%", p);
  return buf;
}

// Whether `part` of `whole` is more than `limit` percent.
bool Over(size_t part, size_t whole, int limit) {
  return whole > 0 && part * 100 > static_cast<size_t>(limit) * whole;
}

StatusOr<int> Percentage(const Json& obj, std::string_view key, int def, const std::string& path) {
  const Json* v = obj.Find(key);
  if (v == nullptr) return def;
  std::optional<int64_t> n = v->AsInt64();
  if (!n.has_value() || *n < 5 || *n > 100) {
    return InvalidArgumentError(path + "." + std::string(key) +
                                ": expected an integer percentage from 5 to 100, got " +
                                v->Dump(0));
  }
  return static_cast<int>(*n);
}

StatusOr<bool> Flag(const Json& obj, std::string_view key, bool def, const std::string& path) {
  const Json* v = obj.Find(key);
  if (v == nullptr) return def;
  if (!v->is_bool()) {
    return InvalidArgumentError(path + "." + std::string(key) + ": expected true or false, got " +
                                v->Dump(0));
  }
  return v->bool_value();
}

Status OnlyKnown(const Json& obj, const std::vector<std::string_view>& known,
                 const std::string& path) {
  for (const JsonMember& m : obj.object_items()) {
    if (std::find(known.begin(), known.end(), m.key) == known.end()) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return InvalidArgumentError(path + "." + m.key + ": unknown field; expected one of " + list);
    }
  }
  return Status::Ok();
}

Json StringMap(const std::map<std::string, std::string>& m) {
  Json o = Json::MakeObject();
  for (const auto& [k, v] : m) o.Set(k, Json::String(v));
  return o;
}

Json StringList(const std::vector<std::string>& v) {
  Json a = Json::MakeArray();
  for (const std::string& s : v) a.Append(Json::String(s));
  return a;
}

std::map<std::string, std::string> ReadMap(const Json* j) {
  std::map<std::string, std::string> out;
  if (j == nullptr || !j->is_object()) return out;
  for (const JsonMember& m : j->object_items()) {
    if (m.value.is_string()) out[m.key] = m.value.string_value();
  }
  return out;
}

std::vector<std::string> ReadList(const Json* j) {
  std::vector<std::string> out;
  if (j == nullptr || !j->is_array()) return out;
  for (const Json& v : j->array_items()) {
    if (v.is_string()) out.push_back(v.string_value());
  }
  return out;
}

int64_t ReadInt(const Json& j, std::string_view key) {
  const Json* v = j.Find(key);
  return v == nullptr ? 0 : v->AsInt64().value_or(0);
}

std::string ReadString(const Json& j, std::string_view key) {
  const Json* v = j.Find(key);
  return v != nullptr && v->is_string() ? v->string_value() : "";
}

std::map<std::string, const InstanceView*> Index(const std::vector<InstanceView>& all) {
  std::map<std::string, const InstanceView*> out;
  for (const InstanceView& v : all) out[v.id] = &v;
  return out;
}

void Finish(RolloutState& s, RunningStatus status, int64_t now_us) {
  s.status = status;
  s.end_us = now_us;
  s.waiting.clear();
}

// Stops the rollout at a breached gate: Faulted, after rolling the upgraded
// instances back unless the policy says not to.
void Breach(RolloutState& s, const std::string& code, const std::string& message,
            std::vector<std::pair<std::string, std::string>> details, int64_t now_us) {
  s.error_code = code;
  s.error_message = message;
  s.error_details = std::move(details);
  if (s.policy.disable_automatic_rollback) {
    s.error_message +=
        "; automatic rollback is disabled, so the upgraded instances stay on " + s.target_image;
    Finish(s, RunningStatus::kFaulted, now_us);
    return;
  }
  s.rolling_back = true;
  s.rollback_start_us = now_us;
  s.waiting = "rolling back";
}

// The instances this rollout moved onto the target image, and where each
// goes back to. A running batch's instances are included.
std::map<std::string, std::string> Moved(const RolloutState& s) {
  std::map<std::string, std::string> out;
  for (const RolloutBatch& b : s.batches) {
    for (size_t i = 0; i < b.instances.size(); ++i) {
      const std::string& id = b.instances[i];
      // A surge instance goes back to what the instance it replaced ran.
      std::string from = i < b.replaces.size() ? b.replaces[i] : id;
      auto prev = s.previous_image.find(from);
      if (prev != s.previous_image.end()) out[id] = prev->second;
    }
  }
  return out;
}

Status StartRollback(RolloutTarget& target, RolloutState& s) {
  s.rollback = Moved(s);
  // A running surge batch's new instances are removed; the old ones were
  // never touched.
  if (!s.batches.empty() && s.batches.back().end_us == 0) {
    RolloutBatch& b = s.batches.back();
    for (size_t i = 0; i < b.replaces.size() && i < b.instances.size(); ++i) {
      RETURN_IF_ERROR(target.RemoveInstance(b.instances[i]));
      s.rollback.erase(b.instances[i]);
    }
  }
  for (const auto& [id, image] : s.rollback) RETURN_IF_ERROR(target.Reimage(id, image));
  return Status::Ok();
}

Status StepRollback(RolloutTarget& target, RolloutState& s, int64_t now_us) {
  if (!s.rollback_started) {
    RETURN_IF_ERROR(StartRollback(target, s));
    s.rollback_started = true;
    if (s.rollback.empty()) {
      Finish(s, RunningStatus::kFaulted, now_us);
      return Status::Ok();
    }
    s.waiting = "rolling back " + std::to_string(s.rollback.size()) + " instances";
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<InstanceView> all, target.Instances());
  auto index = Index(all);
  int ok = 0, bad = 0, pending = 0;
  std::string errors;
  for (const auto& [id, image] : s.rollback) {
    auto it = index.find(id);
    if (it == index.end()) {
      ++bad;
      errors += (errors.empty() ? "" : "; ") + id + ": gone";
      continue;
    }
    const InstanceView& v = *it->second;
    if (v.image == image && v.health == Health::kHealthy) {
      ++ok;
    } else if (v.health == Health::kUnhealthy ||
               now_us - s.rollback_start_us > s.policy.health_deadline_us) {
      ++bad;
      errors += (errors.empty() ? "" : "; ") + id + ": " +
                (v.health_detail.empty() ? std::string("not healthy within ") +
                                               FormatIsoDuration(s.policy.health_deadline_us)
                                         : Short(v.health_detail));
    } else {
      ++pending;
    }
  }
  if (pending > 0) {
    s.waiting = "rolling back: " + std::to_string(pending) + " of " +
                std::to_string(s.rollback.size()) + " instances not healthy yet";
    return Status::Ok();
  }
  s.rolled_back_succeeded = ok;
  s.rolled_back_failed = bad;
  s.rollback_error = errors;
  s.rolling_back = false;
  Finish(s, RunningStatus::kFaulted, now_us);
  return Status::Ok();
}

// Picks the next batch from the instances still to move.
std::vector<std::string> NextBatch(const RolloutState& s, const std::vector<InstanceView>& all,
                                   size_t size, bool* only_deferred) {
  std::vector<const InstanceView*> todo;
  *only_deferred = false;
  bool any_deferred = false;
  for (const InstanceView& v : all) {
    if (s.previous_image.count(v.id) == 0 || v.image == s.target_image) continue;
    if (s.failed.count(v.id) != 0) continue;
    if (v.deferred) {
      any_deferred = true;
      continue;
    }
    todo.push_back(&v);
  }
  std::stable_sort(todo.begin(), todo.end(), [&](const InstanceView* a, const InstanceView* b) {
    if (s.policy.prioritize_unhealthy_instances) {
      bool ua = a->health != Health::kHealthy, ub = b->health != Health::kHealthy;
      if (ua != ub) return ua;
    }
    return a->id < b->id;
  });
  std::vector<std::string> out;
  if (s.policy.batch_by_upgrade_domain && !todo.empty()) {
    // One upgrade domain per batch: the lowest domain with work left.
    int domain = todo.front()->upgrade_domain;
    for (const InstanceView* v : todo) domain = std::min(domain, v->upgrade_domain);
    for (const InstanceView* v : todo) {
      if (v->upgrade_domain == domain) out.push_back(v->id);
    }
    return out;
  }
  for (const InstanceView* v : todo) {
    if (out.size() == size) break;
    out.push_back(v->id);
  }
  *only_deferred = out.empty() && any_deferred;
  return out;
}

Status StartBatch(RolloutTarget& target, RolloutState& s, const std::vector<InstanceView>& all,
                  int64_t now_us) {
  const size_t total = all.size();
  // Gate 1, before every batch: unhealthy instances over the whole fleet.
  std::vector<std::pair<std::string, std::string>> unhealthy;
  for (const InstanceView& v : all) {
    if (v.health == Health::kUnhealthy) unhealthy.emplace_back(v.id, Short(v.health_detail));
  }
  if (Over(unhealthy.size(), total, s.policy.max_unhealthy_instance_percent)) {
    std::string names;
    for (const auto& [id, why] : unhealthy) names += (names.empty() ? "" : ", ") + id;
    std::string message = "before batch " + std::to_string(s.batches.size() + 1) + ", " +
                          std::to_string(unhealthy.size()) + " of " + std::to_string(total) +
                          " instances are unhealthy (" + Percent(unhealthy.size(), total) +
                          "), over maxUnhealthyInstancePercent (" +
                          std::to_string(s.policy.max_unhealthy_instance_percent) + "%): " + names;
    Breach(s, "MaxUnhealthyInstancePercentExceeded", message, std::move(unhealthy), now_us);
    return Status::Ok();
  }
  size_t size =
      std::max<size_t>(1, total * static_cast<size_t>(s.policy.max_batch_instance_percent) / 100);
  bool only_deferred = false;
  std::vector<std::string> ids = NextBatch(s, all, size, &only_deferred);
  if (ids.empty()) {
    if (only_deferred) {
      s.waiting = "waiting for running tasks that defer their node's upgrade";
      return Status::Ok();
    }
    Finish(s, RunningStatus::kCompleted, now_us);
    return Status::Ok();
  }
  RolloutBatch b;
  b.number = static_cast<int>(s.batches.size()) + 1;
  b.start_us = now_us;
  if (s.policy.max_surge) {
    for (const std::string& old : ids) {
      StatusOr<std::string> made = target.AddInstance(s.target_image);
      if (!made.ok()) {
        for (const std::string& id : b.instances) (void)target.RemoveInstance(id);
        return made.status();
      }
      b.instances.push_back(made.value());
      b.replaces.push_back(old);
    }
  } else {
    for (const std::string& id : ids) {
      RETURN_IF_ERROR(target.Reimage(id, s.target_image));
      b.instances.push_back(id);
    }
  }
  s.batches.push_back(std::move(b));
  s.waiting = "batch " + std::to_string(s.batches.back().number) + ": " +
              std::to_string(ids.size()) + " instances moving to the new image";
  return Status::Ok();
}

Status JudgeBatch(RolloutTarget& target, RolloutState& s, const std::vector<InstanceView>& all,
                  int64_t now_us) {
  RolloutBatch& b = s.batches.back();
  auto index = Index(all);
  size_t waiting = 0;
  std::map<std::string, std::string> failed;
  std::vector<std::string> healthy;
  for (const std::string& id : b.instances) {
    auto it = index.find(id);
    if (it == index.end()) {
      failed[id] = "the instance is gone";
      continue;
    }
    const InstanceView& v = *it->second;
    if (v.image == s.target_image && v.health == Health::kHealthy) {
      healthy.push_back(id);
    } else if (v.health == Health::kUnhealthy) {
      failed[id] = v.health_detail.empty() ? "unhealthy" : Short(v.health_detail);
    } else if (now_us - b.start_us > s.policy.health_deadline_us) {
      failed[id] = "not healthy within " + FormatIsoDuration(s.policy.health_deadline_us) +
                   (v.health_detail.empty() ? "" : ": " + Short(v.health_detail));
    } else {
      ++waiting;
    }
  }
  if (waiting > 0) {
    s.waiting = "batch " + std::to_string(b.number) + ": " + std::to_string(waiting) + " of " +
                std::to_string(b.instances.size()) + " instances not healthy yet";
    return Status::Ok();
  }
  // maxSurge: the old instances go once their replacements are healthy.
  for (size_t i = 0; i < b.replaces.size(); ++i) {
    if (failed.count(b.instances[i]) == 0) RETURN_IF_ERROR(target.RemoveInstance(b.replaces[i]));
  }
  b.end_us = now_us;
  b.failed = failed;
  for (const std::string& id : healthy) s.succeeded.push_back(id);
  for (size_t i = 0; i < b.instances.size(); ++i) {
    auto f = failed.find(b.instances[i]);
    if (f == failed.end()) continue;
    // A failed surge instance is counted against the one it was to replace.
    s.failed[i < b.replaces.size() ? b.replaces[i] : b.instances[i]] = f->second;
  }
  // Gate 2, after every batch: unhealthy among the upgraded instances.
  size_t upgraded = s.succeeded.size() + s.failed.size();
  if (Over(s.failed.size(), upgraded, s.policy.max_unhealthy_upgraded_instance_percent)) {
    std::vector<std::pair<std::string, std::string>> details(s.failed.begin(), s.failed.end());
    std::string names;
    for (const auto& [id, why] : failed) names += (names.empty() ? "" : "; ") + id + ": " + why;
    Breach(s, "MaxUnhealthyUpgradedInstancePercentExceeded",
           "after batch " + std::to_string(b.number) + ", " + std::to_string(s.failed.size()) +
               " of " + std::to_string(upgraded) + " upgraded instances are unhealthy (" +
               Percent(s.failed.size(), upgraded) +
               "), over maxUnhealthyUpgradedInstancePercent (" +
               std::to_string(s.policy.max_unhealthy_upgraded_instance_percent) +
               "%); this batch: " + names,
           std::move(details), now_us);
    return Status::Ok();
  }
  s.next_batch_us = now_us + s.policy.pause_time_between_batches_us;
  s.waiting = s.policy.pause_time_between_batches_us > 0
                  ? "pausing " + FormatIsoDuration(s.policy.pause_time_between_batches_us) +
                        " before the next batch"
                  : "";
  return Status::Ok();
}

}  // namespace

StatusOr<int64_t> ParseIsoDurationUs(std::string_view original, std::string_view path) {
  std::string upper(original);  // "pt15m" is read as "PT15M"
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string_view text = upper;
  auto bad = [&]() {
    return InvalidArgumentError(std::string(path) +
                                ": expected an ISO 8601 duration such as PT5M or PT1H30M, got \"" +
                                std::string(original) + "\"");
  };
  if (text.size() < 3 || text[0] != 'P') return bad();
  bool in_time = false, any = false;
  double total_s = 0;
  size_t i = 1;
  while (i < text.size()) {
    if (text[i] == 'T') {
      if (in_time) return bad();
      in_time = true;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) ++j;
    if (j == i || j == text.size() || j - i > 12) return bad();
    double n = std::strtod(std::string(text.substr(i, j - i)).c_str(), nullptr);
    char unit = text[j];
    double scale = 0;
    if (!in_time && unit == 'D') scale = 86400;
    if (!in_time && unit == 'W') scale = 7 * 86400;
    if (in_time && unit == 'H') scale = 3600;
    if (in_time && unit == 'M') scale = 60;
    if (in_time && unit == 'S') scale = 1;
    if (scale == 0) return bad();
    total_s += n * scale;
    any = true;
    i = j + 1;
  }
  if (!any || text.back() == 'T' || total_s > 1e9) return bad();
  return static_cast<int64_t>(std::llround(total_s * 1e6));
}

std::string FormatIsoDuration(int64_t us) {
  int64_t s = us / 1'000'000;
  int64_t rem_us = us % 1'000'000;
  std::string out = "P";
  if (s >= 86400) {
    out += std::to_string(s / 86400) + "D";
    s %= 86400;
  }
  if (s == 0 && rem_us == 0 && out.size() > 1) return out;
  out += "T";
  if (s >= 3600) out += std::to_string(s / 3600) + "H";
  if (s % 3600 >= 60) out += std::to_string(s % 3600 / 60) + "M";
  if (s % 60 != 0 || rem_us != 0 || out.back() == 'T') {
    out += std::to_string(s % 60);
    if (rem_us != 0) {
      char frac[16];
      std::snprintf(frac, sizeof frac, "%06lld", static_cast<long long>(rem_us));
      std::string f = frac;
      while (f.back() == '0') f.pop_back();
      out += "." + f;
    }
    out += "S";
  }
  return out;
}

StatusOr<UpgradePolicy> UpgradePolicy::FromJson(const Json* rolling, const Json* automatic,
                                                std::string_view path) {
  UpgradePolicy p;
  const std::string base(path);
  if (rolling != nullptr && !rolling->is_null()) {
    const std::string rp = base + ".rollingUpgradePolicy";
    if (!rolling->is_object()) return InvalidArgumentError(rp + ": expected an object");
    RETURN_IF_ERROR(OnlyKnown(
        *rolling,
        {"maxBatchInstancePercent", "maxUnhealthyInstancePercent",
         "maxUnhealthyUpgradedInstancePercent", "pauseTimeBetweenBatches",
         "prioritizeUnhealthyInstances", "maxSurge", "enableCrossZoneUpgrade",
         "rollbackFailedInstancesOnPolicyBreach", "healthDeadline", "batchByUpgradeDomain"},
        rp));
    ASSIGN_OR_RETURN(p.max_batch_instance_percent,
                     Percentage(*rolling, "maxBatchInstancePercent", 20, rp));
    ASSIGN_OR_RETURN(p.max_unhealthy_instance_percent,
                     Percentage(*rolling, "maxUnhealthyInstancePercent", 20, rp));
    ASSIGN_OR_RETURN(p.max_unhealthy_upgraded_instance_percent,
                     Percentage(*rolling, "maxUnhealthyUpgradedInstancePercent", 20, rp));
    ASSIGN_OR_RETURN(p.prioritize_unhealthy_instances,
                     Flag(*rolling, "prioritizeUnhealthyInstances", false, rp));
    ASSIGN_OR_RETURN(p.max_surge, Flag(*rolling, "maxSurge", false, rp));
    ASSIGN_OR_RETURN(p.batch_by_upgrade_domain, Flag(*rolling, "batchByUpgradeDomain", false, rp));
    for (auto [key, field] :
         {std::pair{"pauseTimeBetweenBatches", &p.pause_time_between_batches_us},
          std::pair{"healthDeadline", &p.health_deadline_us}}) {
      const Json* v = rolling->Find(key);
      if (v == nullptr) continue;
      if (!v->is_string()) {
        return InvalidArgumentError(rp + "." + key + ": expected an ISO 8601 duration string");
      }
      ASSIGN_OR_RETURN(*field, ParseIsoDurationUs(v->string_value(), rp + "." + key));
    }
    if (p.health_deadline_us <= 0) {
      return InvalidArgumentError(rp + ".healthDeadline: must be longer than PT0S");
    }
  }
  if (automatic != nullptr && !automatic->is_null()) {
    const std::string ap = base + ".automaticOSUpgradePolicy";
    if (!automatic->is_object()) return InvalidArgumentError(ap + ": expected an object");
    RETURN_IF_ERROR(OnlyKnown(*automatic,
                              {"enableAutomaticOSUpgrade", "disableAutomaticRollback",
                               "useRollingUpgradePolicy", "osRollingUpgradeDeferral"},
                              ap));
    ASSIGN_OR_RETURN(p.disable_automatic_rollback,
                     Flag(*automatic, "disableAutomaticRollback", false, ap));
  }
  return p;
}

Json UpgradePolicy::ToJson() const {
  Json o = Json::MakeObject();
  o.Set("maxBatchInstancePercent", Json::Int(max_batch_instance_percent));
  o.Set("maxUnhealthyInstancePercent", Json::Int(max_unhealthy_instance_percent));
  o.Set("maxUnhealthyUpgradedInstancePercent", Json::Int(max_unhealthy_upgraded_instance_percent));
  o.Set("pauseTimeBetweenBatches", Json::String(FormatIsoDuration(pause_time_between_batches_us)));
  o.Set("prioritizeUnhealthyInstances", Json::Bool(prioritize_unhealthy_instances));
  o.Set("maxSurge", Json::Bool(max_surge));
  o.Set("healthDeadline", Json::String(FormatIsoDuration(health_deadline_us)));
  if (batch_by_upgrade_domain) o.Set("batchByUpgradeDomain", Json::Bool(true));
  return o;
}

std::string_view RunningStatusName(RunningStatus status) {
  switch (status) {
    case RunningStatus::kRollingForward:
      return "RollingForward";
    case RunningStatus::kCancelled:
      return "Cancelled";
    case RunningStatus::kCompleted:
      return "Completed";
    case RunningStatus::kFaulted:
      return "Faulted";
  }
  return "RollingForward";
}

int RolloutState::in_progress() const {
  if (batches.empty() || batches.back().end_us != 0) return 0;
  return static_cast<int>(batches.back().instances.size());
}

int RolloutState::pending() const {
  int done = static_cast<int>(succeeded.size() + failed.size()) + in_progress();
  return std::max(0, static_cast<int>(previous_image.size()) - done);
}

Json RolloutState::ToJson(bool resumable) const {
  Json o = Json::MakeObject();
  o.Set("id", Json::String(id));
  o.Set("policy", policy.ToJson());
  Json rs = Json::MakeObject();
  rs.Set("code", Json::String(std::string(RunningStatusName(status))));
  rs.Set("startTime", Json::String(Iso8601(start_us)));
  rs.Set("lastAction", Json::String(last_action));
  rs.Set("lastActionTime", Json::String(Iso8601(last_action_us)));
  if (end_us > 0) rs.Set("endTime", Json::String(Iso8601(end_us)));
  o.Set("runningStatus", rs);
  Json progress = Json::MakeObject();
  progress.Set("successfulInstanceCount", Json::Int(static_cast<int64_t>(succeeded.size())));
  progress.Set("failedInstanceCount", Json::Int(static_cast<int64_t>(failed.size())));
  progress.Set("inProgressInstanceCount", Json::Int(in_progress()));
  progress.Set("pendingInstanceCount", Json::Int(pending()));
  o.Set("progress", progress);
  o.Set("targetImage", Json::String(target_image));
  o.Set("startedBy", Json::String(started_by));
  if (!waiting.empty()) o.Set("waiting", Json::String(waiting));
  Json batches_json = Json::MakeArray();
  for (const RolloutBatch& b : batches) {
    Json bj = Json::MakeObject();
    bj.Set("batch", Json::Int(b.number));
    bj.Set("instances", StringList(b.instances));
    if (!b.replaces.empty()) bj.Set("replaces", StringList(b.replaces));
    bj.Set("startTime", Json::String(Iso8601(b.start_us)));
    if (b.end_us > 0) bj.Set("endTime", Json::String(Iso8601(b.end_us)));
    if (!b.failed.empty()) bj.Set("failed", StringMap(b.failed));
    batches_json.Append(bj);
  }
  o.Set("batches", batches_json);
  if (!error_code.empty()) {
    Json err = Json::MakeObject();
    err.Set("code", Json::String(error_code));
    err.Set("message", Json::String(error_message));
    Json details = Json::MakeArray();
    for (const auto& [target, message] : error_details) {
      Json d = Json::MakeObject();
      d.Set("code", Json::String("UnhealthyInstance"));
      d.Set("target", Json::String(target));
      d.Set("message", Json::String(message));
      details.Append(d);
    }
    err.Set("details", details);
    o.Set("error", err);
    Json rb = Json::MakeObject();
    rb.Set("successfullyRolledbackInstanceCount", Json::Int(rolled_back_succeeded));
    rb.Set("failedRolledbackInstanceCount", Json::Int(rolled_back_failed));
    if (!rollback_error.empty()) {
      Json re = Json::MakeObject();
      re.Set("code", Json::String("RollbackFailed"));
      re.Set("message", Json::String(rollback_error));
      rb.Set("rollbackError", re);
    }
    o.Set("rollbackInfo", rb);
  }
  if (resumable) {
    Json st = Json::MakeObject();
    st.Set("startUs", Json::Int(start_us));
    st.Set("endUs", Json::Int(end_us));
    st.Set("lastActionUs", Json::Int(last_action_us));
    st.Set("previousImage", StringMap(previous_image));
    st.Set("succeeded", StringList(succeeded));
    st.Set("failed", StringMap(failed));
    st.Set("nextBatchUs", Json::Int(next_batch_us));
    // automaticOSUpgradePolicy's, which policy.ToJson does not carry.
    st.Set("disableAutomaticRollback", Json::Bool(policy.disable_automatic_rollback));
    st.Set("rollingBack", Json::Bool(rolling_back));
    st.Set("rollbackStarted", Json::Bool(rollback_started));
    st.Set("rollback", StringMap(rollback));
    st.Set("rollbackStartUs", Json::Int(rollback_start_us));
    Json bs = Json::MakeArray();
    for (const RolloutBatch& b : batches) {
      Json bj = Json::MakeObject();
      bj.Set("number", Json::Int(b.number));
      bj.Set("instances", StringList(b.instances));
      bj.Set("replaces", StringList(b.replaces));
      bj.Set("startUs", Json::Int(b.start_us));
      bj.Set("endUs", Json::Int(b.end_us));
      bj.Set("failed", StringMap(b.failed));
      bs.Append(bj);
    }
    st.Set("batches", bs);
    o.Set("state", st);
  }
  return o;
}

StatusOr<RolloutState> RolloutState::FromJson(const Json& json) {
  const Json* st = json.is_object() ? json.Find("state") : nullptr;
  if (st == nullptr || !st->is_object()) {
    return InvalidArgumentError("a rollout record without its state cannot be resumed");
  }
  RolloutState s;
  s.id = ReadString(json, "id");
  s.target_image = ReadString(json, "targetImage");
  s.started_by = ReadString(json, "startedBy");
  const Json* policy = json.Find("policy");
  ASSIGN_OR_RETURN(s.policy, UpgradePolicy::FromJson(policy, nullptr, "rollout"));
  const Json* rs = json.Find("runningStatus");
  std::string code = rs != nullptr ? ReadString(*rs, "code") : "";
  for (RunningStatus c : {RunningStatus::kRollingForward, RunningStatus::kCancelled,
                          RunningStatus::kCompleted, RunningStatus::kFaulted}) {
    if (RunningStatusName(c) == code) s.status = c;
  }
  if (rs != nullptr) s.last_action = ReadString(*rs, "lastAction");
  s.waiting = ReadString(json, "waiting");
  s.start_us = ReadInt(*st, "startUs");
  s.end_us = ReadInt(*st, "endUs");
  s.last_action_us = ReadInt(*st, "lastActionUs");
  s.previous_image = ReadMap(st->Find("previousImage"));
  s.succeeded = ReadList(st->Find("succeeded"));
  s.failed = ReadMap(st->Find("failed"));
  s.next_batch_us = ReadInt(*st, "nextBatchUs");
  const Json* dar = st->Find("disableAutomaticRollback");
  s.policy.disable_automatic_rollback = dar != nullptr && dar->is_bool() && dar->bool_value();
  const Json* rb = st->Find("rollingBack");
  s.rolling_back = rb != nullptr && rb->is_bool() && rb->bool_value();
  const Json* rbs = st->Find("rollbackStarted");
  s.rollback_started = rbs != nullptr && rbs->is_bool() && rbs->bool_value();
  s.rollback = ReadMap(st->Find("rollback"));
  s.rollback_start_us = ReadInt(*st, "rollbackStartUs");
  if (const Json* bs = st->Find("batches"); bs != nullptr && bs->is_array()) {
    for (const Json& bj : bs->array_items()) {
      RolloutBatch b;
      b.number = static_cast<int>(ReadInt(bj, "number"));
      b.instances = ReadList(bj.Find("instances"));
      b.replaces = ReadList(bj.Find("replaces"));
      b.start_us = ReadInt(bj, "startUs");
      b.end_us = ReadInt(bj, "endUs");
      b.failed = ReadMap(bj.Find("failed"));
      s.batches.push_back(std::move(b));
    }
  }
  if (const Json* err = json.Find("error"); err != nullptr && err->is_object()) {
    s.error_code = ReadString(*err, "code");
    s.error_message = ReadString(*err, "message");
    if (const Json* d = err->Find("details"); d != nullptr && d->is_array()) {
      for (const Json& dj : d->array_items()) {
        s.error_details.emplace_back(ReadString(dj, "target"), ReadString(dj, "message"));
      }
    }
  }
  if (const Json* ri = json.Find("rollbackInfo"); ri != nullptr && ri->is_object()) {
    s.rolled_back_succeeded = static_cast<int>(ReadInt(*ri, "successfullyRolledbackInstanceCount"));
    s.rolled_back_failed = static_cast<int>(ReadInt(*ri, "failedRolledbackInstanceCount"));
    if (const Json* re = ri->Find("rollbackError"); re != nullptr && re->is_object()) {
      s.rollback_error = ReadString(*re, "message");
    }
  }
  return s;
}

StatusOr<RolloutState> Rollout::Begin(RolloutTarget& target, const std::string& id,
                                      const std::string& target_image, const UpgradePolicy& policy,
                                      int64_t now_us) {
  if (!target.ImageExists(target_image)) {
    return FailedPreconditionError("cannot roll out " + target_image +
                                   ": the image does not exist (was it deleted?)");
  }
  ASSIGN_OR_RETURN(std::vector<InstanceView> all, target.Instances());
  RolloutState s;
  s.id = id;
  s.target_image = target_image;
  s.policy = policy;
  s.start_us = now_us;
  s.last_action_us = now_us;
  s.next_batch_us = now_us;
  for (const InstanceView& v : all) {
    if (v.image != target_image) s.previous_image[v.id] = v.image;
  }
  if (s.previous_image.empty()) Finish(s, RunningStatus::kCompleted, now_us);
  return s;
}

Status Rollout::Step(RolloutTarget& target, RolloutState& state, int64_t now_us) {
  if (state.done()) return Status::Ok();
  RolloutState s = state;  // changed in a copy, so that a failed call changes nothing
  if (s.rolling_back) {
    RETURN_IF_ERROR(StepRollback(target, s, now_us));
    state = std::move(s);
    return Status::Ok();
  }
  if (!target.ImageExists(s.target_image)) {
    Breach(s, "TargetImageDeleted",
           "the image " + s.target_image + " was deleted while the rollout moved to it", {},
           now_us);
    if (s.rolling_back) RETURN_IF_ERROR(StepRollback(target, s, now_us));
    state = std::move(s);
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::vector<InstanceView> all, target.Instances());
  if (!s.batches.empty() && s.batches.back().end_us == 0) {
    RETURN_IF_ERROR(JudgeBatch(target, s, all, now_us));
  } else if (now_us >= s.next_batch_us) {
    RETURN_IF_ERROR(StartBatch(target, s, all, now_us));
  }
  if (s.rolling_back) RETURN_IF_ERROR(StepRollback(target, s, now_us));
  state = std::move(s);
  return Status::Ok();
}

void Rollout::Cancel(RolloutState& state, int64_t now_us) {
  if (state.done()) return;
  state.last_action = "Cancel";
  state.last_action_us = now_us;
  state.rolling_back = false;
  Finish(state, RunningStatus::kCancelled, now_us);
}

void RecordHistory(Json& history, const RolloutState& state) {
  if (!history.is_array()) history = Json::MakeArray();
  Json out = Json::MakeArray();
  out.Append(state.ToJson());
  for (const Json& h : history.array_items()) {
    if (out.array_items().size() == kHistory) break;
    if (h.is_object() && ReadString(h, "id") == state.id) continue;
    out.Append(h);
  }
  history = std::move(out);
}

}  // namespace imagesmith::fleet
