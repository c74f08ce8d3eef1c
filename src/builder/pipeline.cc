#include "builder/pipeline.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "base/crash_point.h"
#include "base/data_dir.h"
#include "base/strings.h"
#include "builder/fetch.h"
#include "builder/step_cache.h"
#include "builder/validate.h"
#include "catalog/boot_disk.h"
#include "catalog/catalog.h"
#include "disk/convert.h"
#include "sandbox/sandbox.h"
#include "vm/qemu_vm.h"

namespace imagesmith::build {

const char* RunStateName(RunState s) {
  switch (s) {
    case RunState::kSucceeded:
      return "Succeeded";
    case RunState::kPartiallySucceeded:
      return "PartiallySucceeded";
    case RunState::kFailed:
      return "Failed";
    case RunState::kCanceled:
      return "Canceled";
  }
  return "Failed";
}

Json StepRecord::ToJson() const {
  Json j = Json::MakeObject();
  j.Set("name", Json::String(name));
  j.Set("key", Json::String(key));
  j.Set("definitionDigest", Json::String(definition_digest));
  j.Set("inputsDigest", Json::String(inputs_digest));
  j.Set("parentKey", Json::String(parent_key));
  return j;
}

StepRecord StepRecord::FromJson(const Json& j) {
  auto get = [&](const char* k) {
    const Json* v = j.is_object() ? j.Find(k) : nullptr;
    return v != nullptr && v->is_string() ? v->string_value() : std::string();
  };
  return StepRecord{get("name"), get("key"), get("definitionDigest"), get("inputsDigest"),
                    get("parentKey")};
}

namespace {

std::string StepLabel(size_t index, const tmpl::Step& step) {
  std::string label = "customize[" + std::to_string(index) + "]";
  if (!step.name.empty()) label += " '" + step.name + "'";
  return label + " (" + tmpl::StepTypeName(step.type()) + ")";
}

// The default deprovisioning, Debian's equivalent of `waagent -deprovision`.
// `set -x` puts every command in customization.log.
constexpr const char kDefaultDeprovision[] = R"sh(set -x
# machine identity: a new machine-id is made on first boot
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
# SSH host keys: regenerated on first boot by imagesmith-ssh-keygen.service
rm -f /etc/ssh/ssh_host_*
if [ -d /etc/systemd/system ] && [ -x /usr/bin/ssh-keygen ]; then
  cat > /etc/systemd/system/imagesmith-ssh-keygen.service <<'UNIT'
[Unit]
Description=Generate SSH host keys removed by generalization
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
  mkdir -p /etc/systemd/system/multi-user.target.wants
  ln -sf /etc/systemd/system/imagesmith-ssh-keygen.service \
    /etc/systemd/system/multi-user.target.wants/imagesmith-ssh-keygen.service
fi
# cloud-init state
rm -rf /var/lib/cloud /var/log/cloud-init.log /var/log/cloud-init-output.log
# logs: keep the files, drop their content; drop rotated ones
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
rm -rf /var/log/journal/*
# shell histories
rm -f /root/.bash_history /root/.ash_history /home/*/.bash_history
# apt lists and caches
apt-get clean 2>/dev/null || true
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
)sh";

constexpr const char kGeneralizeWrapper[] = R"sh(
if [ -f /tmp/DeprovisioningScript.sh ]; then
  echo "generalize: running /tmp/DeprovisioningScript.sh left by the customizers:"
  cat /tmp/DeprovisioningScript.sh
  echo "--- end of /tmp/DeprovisioningScript.sh ---"
  /bin/sh -e /tmp/DeprovisioningScript.sh
else
  echo "generalize: running the default deprovisioning"
  /bin/sh -e /run/imagesmith-deprovision.sh
fi
rc=$?
# /tmp carried files between steps; nothing of it belongs in the image
find /tmp /var/tmp -mindepth 1 -delete
exit $rc
)sh";

constexpr const char kPolicyRcD[] =
    "#!/bin/sh\n# imagesmith: services are not started while an image is built\nexit 101\n";

class Builder {
 public:
  Builder(Env& env, const tmpl::ImageTemplate& t, const BuildOptions& o, RunLog& log)
      : env_(env),
        t_(t),
        o_(o),
        log_(log),
        cache_(env, o.data_dir + "/cache/steps"),
        customize_json_(*t.ToJson().Find("properties")->Find("customize")) {}

  BuildOutcome Run();

 private:
  // Fails the build; returns false so callers can `return Fail(...)`.
  bool Fail(const Status& s) {
    out_.message = s.message();
    out_.state = Cancelled() ? RunState::kCanceled : RunState::kFailed;
    if (Cancelled()) out_.message = "canceled during " + out_.last_sub_state + ": " + s.message();
    return false;
  }
  bool Cancelled() const { return o_.cancel != nullptr && o_.cancel->load(); }
  void SubState(const std::string& s) {
    out_.last_sub_state = s;
    if (o_.on_sub_state) o_.on_sub_state(s);
  }
  // Ends the phase being timed (into out_.phase_seconds) and starts `name`
  // ("" ends the last one).
  void Phase(const std::string& name) {
    int64_t now = env_.MonotonicMicros();
    if (!phase_.empty()) {
      out_.phase_seconds.emplace_back(phase_, static_cast<double>(now - phase_start_us_) / 1e6);
    }
    phase_ = name;
    phase_start_us_ = now;
  }
  // The time left before buildTimeoutInMinutes, or a DeadlineExceeded status.
  StatusOr<std::chrono::milliseconds> Remaining(const std::string& what) const {
    int64_t left_us = deadline_us_ - env_.MonotonicMicros();
    if (left_us <= 0) {
      return DeadlineExceededError("buildTimeoutInMinutes (" +
                                   std::to_string(t_.build_timeout_minutes) +
                                   " minutes) was reached before " + what);
    }
    return std::chrono::milliseconds(left_us / 1000);
  }
  Status CheckCancel() const {
    if (Cancelled()) return CancelledError("the build was canceled");
    return Status::Ok();
  }
  // Interprets a sandbox result for `what`.
  Status Judge(const sandbox::RunResult& r, const std::string& what) const {
    if (r.success()) return Status::Ok();
    if (r.cancelled) return CancelledError(what + " was canceled");
    if (r.timed_out) {
      return DeadlineExceededError(what + " was stopped: buildTimeoutInMinutes (" +
                                   std::to_string(t_.build_timeout_minutes) +
                                   " minutes) was reached");
    }
    return AbortedError(what + " failed: " + r.Describe() + " (its output is in " + log_.path() +
                        ")");
  }

  bool Prepare();
  // Where the KVM probe's verdict and the validation VMs' SSH host keys are
  // kept between processes (doc/vm.md).
  std::string AccelCacheFile() const { return VmAccelCacheFile(o_.data_dir); }
  std::string SshKeysCache() const { return o_.data_dir + "/cache/validation-ssh-host-keys"; }
  bool Customize();
  bool RunStep(size_t index, const tmpl::Step& step);
  bool Generalize();
  bool MakeDisk();
  // In-VM validation (builder/validate.h). False when it failed; `distribute`
  // says whether the outputs are distributed anyway.
  bool Validate(bool* distribute);
  bool Distribute();
  bool DistributeVhd(const tmpl::Distribution& d, RunOutput& ro);
  bool DistributeToStore(const tmpl::Distribution& d, RunOutput& ro);

  sandbox::RunSpec StepSpec(const std::string& label, const std::string& upper,
                            const std::string& work);
  std::string NewLayerDirs(const std::string& name, std::string* work);

  Env& env_;
  const tmpl::ImageTemplate& t_;
  const BuildOptions& o_;
  RunLog& log_;
  StepCache cache_;
  BuildOutcome out_;
  std::string phase_;  // the phase being timed ("" when none)
  int64_t phase_start_us_ = 0;
  int64_t deadline_us_ = 0;

  catalog::Generation generation_ = catalog::Generation::kV1;
  std::string base_rootfs_;
  std::string base_key_;
  std::string source_version_;          // for versioning Source
  catalog::BootConfig boot_config_;     // the disk's, set by MakeDisk
  std::optional<store::Pin> pin_;       // holds the ingested image against store gc
  std::optional<Sha256Digest> stored_;  // the ingested image, once ingested
  uint64_t source_disk_bytes_ = 0;
  std::vector<std::string> layers_;  // lowest first, base included
  sandbox::VmSizeLimits limits_;     // from vmProfile.vmSize; set by Prepare
  Json customize_json_;              // the normalised customize[] array, built once
  std::string policy_rc_d_;
};

std::string Builder::NewLayerDirs(const std::string& name, std::string* work) {
  std::string dir = o_.run_dir + "/work/" + name;
  (void)env_.RemoveAll(dir);
  (void)env_.CreateDirs(dir + "/upper");
  (void)env_.CreateDirs(dir + "/work");
  *work = dir + "/work";
  return dir + "/upper";
}

sandbox::RunSpec Builder::StepSpec(const std::string& label, const std::string& upper,
                                   const std::string& work) {
  sandbox::RunSpec spec;
  spec.tree = sandbox::Tree{layers_, upper, work};
  spec.env = {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
              {"HOME", "/root"},
              {"LANG", "C.UTF-8"},
              {"TERM", "dumb"},
              {"DEBIAN_FRONTEND", "noninteractive"}};
  // A name the tree's /etc/hosts resolves, so sudo does not complain.
  spec.hostname = "localhost";
  spec.binds.push_back({policy_rc_d_, "/usr/sbin/policy-rc.d", true});
  spec.control.limits = limits_.limits;
  // Nothing a step writes can be larger than the image's disk.
  spec.disk_limit_bytes = static_cast<int64_t>(std::max<uint64_t>(
      source_disk_bytes_, static_cast<uint64_t>(t_.vm_profile.os_disk_size_gb) << 30));
  // The old sandbox (real root, host network), only to measure the
  // boundary's cost: bench/sandbox. Never for templates one does not trust.
  if (const char* iso = std::getenv("IMAGESMITH_SANDBOX_ISOLATION");
      iso != nullptr && std::string_view(iso) == "legacy") {
    spec.isolation = sandbox::Isolation::kLegacy;
    log_.Info("sandbox: IMAGESMITH_SANDBOX_ISOLATION=legacy -- " + label +
              " runs as real root on the host network (benchmarks only)");
  }
  spec.control.cancel = o_.cancel;
  spec.control.on_line = [this, label](std::string_view line, bool is_stderr) {
    log_.Output(label, line, is_stderr);
  };
  return spec;
}

bool Builder::Prepare() {
  SubState("Building");
  Phase("source");
  log_.Header("source");
  const auto* platform = std::get_if<tmpl::PlatformImageSource>(&t_.source);
  uint64_t stored_disk_bytes = 0;
  if (platform == nullptr) {
    if (o_.publish == nullptr) {
      return Fail(FailedPreconditionError(
          "properties.source: ManagedImage and SharedImageVersion sources need the image store"));
    }
    auto src = MaterializeStoreSource(env_, *o_.publish->meta, *o_.publish->store, t_.source,
                                      t_.location, o_.data_dir, log_, o_.publish->authorize);
    if (!src.ok()) return Fail(src.status());
    generation_ = src->generation;
    base_rootfs_ = src->rootfs;
    out_.source_urn = src->id;
    source_version_ = src->version;
    stored_disk_bytes = src->disk_size_bytes;
    base_key_ = Sha256Of("imagesmith-store-v1\n" + src->image.ToHex()).ToHex();
  } else {
    // Building a missing base counts toward buildTimeoutInMinutes.
    auto left = Remaining("the platform base was ready");
    if (!left.ok()) return Fail(left.status());
    catalog::Catalog cat(env_, o_.data_dir + "/catalog");
    auto base = cat.Ensure(
        *platform, [this](std::string_view line) { log_.Output("catalog", line, false); }, *left);
    if (!base.ok() && base.status().code() == StatusCode::kDeadlineExceeded) {
      return Fail(DeadlineExceededError("buildTimeoutInMinutes (" +
                                        std::to_string(t_.build_timeout_minutes) +
                                        " minutes) was reached before the platform base was "
                                        "ready: " +
                                        base.status().message()));
    }
    if (!base.ok()) return Fail(base.status().WithContext("properties.source"));
    generation_ = base->entry.generation;
    base_rootfs_ = base->rootfs_dir;
    out_.source_urn = base->entry.Urn();
    source_version_ = base->entry.version;
    base_key_ = Sha256Of("imagesmith-base-v1\n" + out_.source_urn).ToHex();
  }
  out_.hyper_v_generation = std::string(catalog::GenerationName(generation_));
  log_.Info("source " + out_.source_urn + " (hyperVGeneration " + out_.hyper_v_generation +
            ") from " + base_rootfs_);
  layers_ = {base_rootfs_};

  auto size = catalog::DefaultDiskSize(env_, base_rootfs_);
  if (!size.ok()) return Fail(size.status());
  source_disk_bytes_ = std::max<uint64_t>(*size, stored_disk_bytes);
  uint64_t gib = 1ull << 30;
  if (t_.vm_profile.os_disk_size_gb > 0 &&
      static_cast<uint64_t>(t_.vm_profile.os_disk_size_gb) * gib < source_disk_bytes_) {
    return Fail(InvalidArgumentError(
        "properties.vmProfile.osDiskSizeGB is " + std::to_string(t_.vm_profile.os_disk_size_gb) +
        " GiB, smaller than the source image's disk (" + std::to_string(source_disk_bytes_ / gib) +
        " GiB); the OS disk can only grow. Use 0 (the source's size) or at least " +
        std::to_string(source_disk_bytes_ / gib)));
  }
  limits_ =
      sandbox::LimitsForVmSize(t_.vm_profile.vm_size, generation_ == catalog::Generation::kV2);
  const sandbox::VmSizeLimits& limits = limits_;
  log_.Info("customizer limits from vmSize " + limits.vm_size + ": " +
            std::to_string(limits.limits.memory_bytes >> 20) + " MiB memory, " +
            std::to_string(limits.limits.cpus) + " CPUs" +
            (limits.note.empty() ? "" : " (" + limits.note + ")"));
  (void)env_.CreateDirs(o_.run_dir + "/inputs");
  policy_rc_d_ = o_.run_dir + "/inputs/policy-rc.d";
  Status s = env_.WriteFileAtomic(policy_rc_d_, kPolicyRcD);
  if (s.ok() && ::chmod(policy_rc_d_.c_str(), 0755) != 0) s = ErrnoError("chmod", errno);
  if (!s.ok()) return Fail(s);
  return true;
}

bool Builder::RunStep(size_t index, const tmpl::Step& step) {
  std::string label = StepLabel(index, step);
  std::string short_label = "customize[" + std::to_string(index) + "]";
  log_.Header(label);
  Status c = CheckCancel();
  if (!c.ok()) return Fail(c);

  // Fetch and verify inputs before anything runs.
  std::string inputs = o_.run_dir + "/inputs";
  (void)env_.CreateDirs(inputs);
  std::vector<Sha256Digest> digests;
  std::string fetched_path;
  std::string script_text;
  std::vector<std::string> argv;
  std::map<std::string, std::string> extra_env;
  std::string uri;
  std::optional<Sha256Digest> expected;
  if (const auto* sh = std::get_if<tmpl::ShellStep>(&step.spec)) {
    if (!sh->script_uri.empty()) {
      uri = sh->script_uri;
      expected = sh->sha256;
    } else {
      script_text = Join(sh->inline_commands, "\n") + "\n";
    }
  } else if (const auto* f = std::get_if<tmpl::FileStep>(&step.spec)) {
    uri = f->source_uri;
    expected = f->sha256;
  } else {
    return Fail(FailedPreconditionError(label + " cannot run on a Linux image"));
  }
  if (!uri.empty()) {
    auto got = FetchInput(env_, o_.template_dir, uri, expected,
                          inputs + "/" + std::to_string(index) + ".input");
    if (!got.ok()) return Fail(got.status().WithContext(label));
    log_.Info("fetched " + uri + ": " + std::to_string(got->bytes) + " bytes, sha256 " +
              got->digest.ToHex() + (expected ? " (matches sha256Checksum)" : ""));
    digests.push_back(got->digest);
    fetched_path = got->path;
  }

  // The cache key and, on a miss, why.
  // The checksum only asserts what the inputs' digests already cover, so it
  // is left out: a new script is "content changed", not "definition changed".
  Json def = Json::MakeObject();
  for (const JsonMember& m : customize_json_.array_items()[index].object_items()) {
    if (m.key != "sha256Checksum") def.Set(m.key, m.value);
  }
  std::string definition_digest = Sha256Of(def.Dump(-1)).ToHex();
  std::string inputs_digest;
  for (const auto& d : digests) inputs_digest += d.ToHex();
  inputs_digest = inputs_digest.empty() ? "" : Sha256Of(inputs_digest).ToHex();
  std::string parent = out_.steps.empty() ? base_key_ : out_.steps.back().key;
  std::string key = StepKey(parent, def, digests);
  StepRecord record{step.name, key, definition_digest, inputs_digest, parent};

  if (o_.use_cache) {
    if (auto layer = cache_.Lookup(key)) {
      log_.Info("cache hit for " + label + " (key " + key.substr(0, 12) + ")");
      ++out_.cache_hits;
      layers_.push_back(*layer);
      out_.steps.push_back(record);
      return true;
    }
  }
  std::string why;
  if (!o_.use_cache) {
    why = "the cache is off (--no-cache)";
  } else if (index >= o_.previous_steps.size()) {
    why = o_.previous_steps.empty() ? "not built before" : "new step";
  } else {
    const StepRecord& prev = o_.previous_steps[index];
    if (prev.definition_digest != definition_digest) {
      why = "definition changed";
    } else if (prev.inputs_digest != inputs_digest) {
      why = std::holds_alternative<tmpl::FileStep>(step.spec) ? "sourceUri content changed"
                                                              : "scriptUri content changed";
    } else if (prev.parent_key != parent) {
      why = "parent changed";
    } else {
      why = "not in the cache (pruned)";
    }
  }
  log_.Info("cache miss for " + label + ": " + why);
  ++out_.cache_misses;

  std::string work;
  std::string upper = NewLayerDirs("step-" + std::to_string(index), &work);
  sandbox::RunSpec spec = StepSpec(short_label, upper, work);
  if (!script_text.empty()) {
    std::string path = inputs + "/" + std::to_string(index) + ".sh";
    Status s = env_.WriteFileAtomic(path, script_text);
    if (!s.ok()) return Fail(s);
    spec.binds.push_back({path, "/run/imagesmith-step.sh", true});
    spec.argv = {"/bin/sh", "-e", "/run/imagesmith-step.sh"};
    log_.Info("inline commands:");
    for (const std::string& line : Split(script_text.substr(0, script_text.size() - 1), '\n')) {
      log_.Info("  " + line);
    }
  } else if (std::holds_alternative<tmpl::ShellStep>(step.spec)) {
    ::chmod(fetched_path.c_str(), 0755);
    spec.binds.push_back({fetched_path, "/run/imagesmith-step.sh", true});
    bool shebang = false;
    if (std::FILE* f = std::fopen(fetched_path.c_str(), "rbe")) {
      char head[2] = {};
      shebang = std::fread(head, 1, 2, f) == 2 && head[0] == '#' && head[1] == '!';
      std::fclose(f);
    }
    spec.argv = shebang ? std::vector<std::string>{"/run/imagesmith-step.sh"}
                        : std::vector<std::string>{"/bin/sh", "/run/imagesmith-step.sh"};
  } else {
    const auto& f = std::get<tmpl::FileStep>(step.spec);
    // The fetched file is 0600: give it to root inside the sandbox (an
    // unprivileged host uid), so cp can read it and the copy keeps its mode.
    if (auto root = sandbox::HostUidOfRootInside(); root.ok()) {
      if (::chown(fetched_path.c_str(), *root, *root) != 0) {
        return Fail(ErrnoError("chown " + fetched_path, errno));
      }
    }
    spec.binds.push_back({fetched_path, "/run/imagesmith-input", true});
    spec.env["IMAGESMITH_DESTINATION"] = f.destination;
    spec.argv = {"/bin/sh", "-c",
                 "dir=$(dirname \"$IMAGESMITH_DESTINATION\"); "
                 "if [ ! -d \"$dir\" ]; then echo \"the destination folder $dir does not exist; "
                 "create it in an earlier Shell customizer\" >&2; exit 1; fi; "
                 "cp /run/imagesmith-input \"$IMAGESMITH_DESTINATION\" && "
                 "echo \"copied to $IMAGESMITH_DESTINATION\""};
  }
  auto remaining = Remaining(label);
  if (!remaining.ok()) return Fail(remaining.status());
  spec.control.timeout = *remaining;
  auto result = sandbox::Run(spec);
  if (!result.ok()) return Fail(result.status().WithContext(label));
  for (const std::string& note : result->notes) log_.Info("sandbox: " + note);
  if (!result->refused.empty()) {
    log_.Info("sandbox: refused " + result->RefusedList() + " with EPERM in " + label +
              " (doc/sandbox.md)");
  }
  log_.Info(label + " ended: " + result->Describe());
  Status judged = Judge(*result, label);
  if (!judged.ok()) return Fail(judged);
  CrashPoint("build.step.ran");

  std::string layer = upper;
  if (o_.use_cache) {
    Json info = record.ToJson();
    info.Set("step", def);
    auto committed = cache_.Commit(key, upper, info);
    if (!committed.ok()) return Fail(committed.status());
    layer = *committed;
    CrashPoint("build.step.committed");
  }
  layers_.push_back(layer);
  out_.steps.push_back(record);
  return true;
}

bool Builder::Customize() {
  SubState("Customizing");
  Phase("customize");
  for (size_t i = 0; i < t_.customize.size(); ++i) {
    if (!RunStep(i, t_.customize[i])) return false;
  }
  log_.Info("customization done: " + std::to_string(out_.cache_hits) + " cached, " +
            std::to_string(out_.cache_misses) + " run");
  return true;
}

bool Builder::Generalize() {
  Phase("generalize");
  log_.Header("generalize");
  Status c = CheckCancel();
  if (!c.ok()) return Fail(c);
  std::string work;
  std::string upper = NewLayerDirs("generalize", &work);
  std::string script = o_.run_dir + "/inputs/deprovision.sh";
  (void)env_.CreateDirs(o_.run_dir + "/inputs");
  Status s = env_.WriteFileAtomic(script, kDefaultDeprovision);
  if (!s.ok()) return Fail(s);
  sandbox::RunSpec spec = StepSpec("generalize", upper, work);
  spec.binds.push_back({script, "/run/imagesmith-deprovision.sh", true});
  spec.argv = {"/bin/sh", "-c", kGeneralizeWrapper};
  spec.network = false;  // the deprovisioning needs none
  auto remaining = Remaining("generalization");
  if (!remaining.ok()) return Fail(remaining.status());
  spec.control.timeout = *remaining;
  auto result = sandbox::Run(spec);
  if (!result.ok()) return Fail(result.status().WithContext("generalize"));
  if (!result->refused.empty()) {
    log_.Info("sandbox: refused " + result->RefusedList() + " with EPERM in generalization");
  }
  Status judged = Judge(*result, "generalization");
  if (!judged.ok()) return Fail(judged);
  CrashPoint("build.generalize.ran");
  layers_.push_back(upper);
  return true;
}

bool Builder::MakeDisk() {
  Phase("disk");
  log_.Header("bootable disk");
  Status c = CheckCancel();
  if (!c.ok()) return Fail(c);
  catalog::BootConfig config = catalog::NewBootConfig(generation_);
  boot_config_ = config;
  std::string boot_layer = o_.run_dir + "/work/boot";
  (void)env_.RemoveAll(boot_layer);
  Status s = env_.CreateDirs(boot_layer);
  if (s.ok()) s = catalog::WriteBootFiles(env_, config, boot_layer);
  if (!s.ok()) return Fail(s);
  layers_.push_back(boot_layer);

  uint64_t gib = 1ull << 30;
  uint64_t size = std::max<uint64_t>(source_disk_bytes_,
                                     static_cast<uint64_t>(t_.vm_profile.os_disk_size_gb) * gib);
  uint64_t used = 0;
  for (const std::string& l : layers_) used += TreeDiskUsage(l);
  uint64_t root_bytes = catalog::RootPartitionBytes(size);
  if (used + (used / 10) > root_bytes) {
    return Fail(ResourceExhaustedError(
        "the customized image needs about " + std::to_string(used >> 20) +
        " MiB but the root partition of a " + std::to_string(size / gib) + " GiB disk holds " +
        std::to_string(root_bytes >> 20) + " MiB; raise properties.vmProfile.osDiskSizeGB"));
  }
  std::string root_img = o_.run_dir + "/work/root.ext4";
  (void)env_.RemoveAll(root_img);
  std::vector<std::string> argv = catalog::RootFsCommand(config, root_img, root_bytes);
  sandbox::HostRunOptions ho;
  ho.control.cancel = o_.cancel;
  ho.control.on_line = [this](std::string_view line, bool is_stderr) {
    log_.Output("mke2fs", line, is_stderr);
  };
  auto remaining = Remaining("making the disk");
  if (!remaining.ok()) return Fail(remaining.status());
  ho.control.timeout = *remaining;
  log_.Info("root filesystem: ext4, UUID " + config.root_uuid + ", " +
            std::to_string(root_bytes >> 20) + " MiB, from " + std::to_string(layers_.size()) +
            " layers");
  auto r = sandbox::RunHostWithTree(sandbox::Tree{layers_, "", ""}, argv, ho);
  if (!r.ok()) return Fail(r.status().WithContext("making the root filesystem"));
  Status judged = Judge(*r, "making the root filesystem (mke2fs)");
  if (!judged.ok()) return Fail(judged);
  CrashPoint("build.disk.rootfs_made");
  std::string disk = o_.run_dir + "/disk.raw";
  s = catalog::AssembleDisk(env_, config, root_img, size, disk);
  (void)env_.RemoveAll(root_img);
  if (!s.ok()) return Fail(s.WithContext("assembling the disk"));
  CrashPoint("build.disk.assembled");
  out_.disk_path = disk;
  out_.disk_size_bytes = size;
  log_.Info("bootable disk " + disk + ": " + std::to_string(size / gib) + " GiB, GPT, " +
            (generation_ == catalog::Generation::kV2 ? "UEFI" : "BIOS") +
            " boot, root=UUID=" + config.root_uuid);
  return true;
}

bool Builder::DistributeVhd(const tmpl::Distribution& d, RunOutput& ro) {
  const auto& vhd = std::get<tmpl::VhdTarget>(d.target);
  std::string path;
  if (vhd.uri.empty()) {
    const std::string dir = o_.staging_dir.empty() ? o_.run_dir + "/outputs" : o_.staging_dir;
    path = dir + "/" + d.run_output_name + ".vhd";
    // A staged VHD is replaced by the next run's (the uri form never overwrites).
    (void)env_.RemoveAll(path);
  } else {
    path = StartsWithIgnoreCase(vhd.uri, "file://") ? vhd.uri.substr(7) : vhd.uri;
    if (path[0] != '/') path = o_.template_dir + "/" + path;
  }
  Status s = env_.FileExists(path)
                 ? AlreadyExistsError(path + " already exists; remove it or choose another uri")
                 : env_.CreateDirs(Dirname(path));
  if (s.ok()) {
    disk::ConvertOptions co;
    co.format = disk::DiskFormat::kVhdFixed;
    co.azure = true;
    co.round_up = true;
    s = disk::ConvertDisk(out_.disk_path, path, co);
  }
  if (!s.ok()) {
    ro.error = s.message();
    return false;
  }
  ro.artifact_uri = path;
  log_.Info("wrote fixed VHD (Azure rules: whole MiB) " + path);
  return true;
}

bool Builder::DistributeToStore(const tmpl::Distribution& d, RunOutput& ro) {
  if (o_.publish == nullptr) {
    ro.error = "ManagedImage and SharedImage targets need the image store";
    return false;
  }
  const PublishContext& ctx = *o_.publish;
  if (!stored_.has_value()) {
    // Ingest once, whatever the number of targets.
    if (!pin_.has_value()) {
      auto pin = ctx.store->NewPin();
      if (!pin.ok()) {
        ro.error = pin.status().message();
        return false;
      }
      pin_.emplace(std::move(pin).value());
    }
    BuiltImage image;
    image.layers = layers_;
    image.boot = boot_config_;
    image.disk_size_bytes = out_.disk_size_bytes;
    image.hyper_v_generation = out_.hyper_v_generation;
    image.source_version = source_version_;
    auto remaining = Remaining("storing the image");
    auto digest = remaining.ok() ? IngestTree(env_, ctx, image, *pin_, log_, *remaining)
                                 : StatusOr<Sha256Digest>(remaining.status());
    if (!digest.ok()) {
      ro.error = digest.status().message();
      return false;
    }
    CrashPoint("build.ingest.stored");
    stored_ = *digest;
    out_.stored_image = digest->ToHex();
  }
  gallery::SourceImage src(ctx.home, *stored_);
  src.kind = store::ImageKind::kTree;
  src.hyper_v_generation = out_.hyper_v_generation;
  src.size_bytes = out_.disk_size_bytes;
  src.version = source_version_;
  src.resource_id = ctx.template_id.ToString();
  auto id = PublishTarget(env_, ctx, src, d, log_);
  if (!id.ok()) {
    ro.error = id.status().message();
    return false;
  }
  ro.artifact_id = id->ToString();
  return true;
}

bool Builder::Validate(bool* distribute) {
  *distribute = true;
  if (t_.validate.in_vm_validations.empty()) return true;
  SubState("Validating");
  Phase("validate");
  log_.Header("validate");
  auto left = Remaining("validation");
  if (!left.ok()) {
    *distribute = false;
    return Fail(left.status());
  }
  ValidateOptions vo;
  vo.disk = out_.disk_path;
  vo.uefi = generation_ == catalog::Generation::kV2;
  vo.template_dir = o_.template_dir;
  vo.run_dir = o_.run_dir;
  vo.accel_cache = AccelCacheFile();
  vo.ssh_keys_cache = SshKeysCache();
  // The vmSize's shape (capped to this host), at most 8 GiB for the guest.
  vo.cpus = std::max(1, static_cast<int>(limits_.limits.cpus));
  int64_t mib = limits_.limits.memory_bytes >> 20;
  vo.memory_mb = mib <= 0 ? 2048 : static_cast<uint64_t>(std::clamp<int64_t>(mib, 512, 8192));
  vo.time_left = *left;
  vo.cancel = o_.cancel;
  ValidateResult r = RunValidation(env_, t_, vo, log_);
  if (r.status.ok()) {
    CrashPoint("build.validate.passed");
    return true;
  }
  if (!r.kept_dir.empty()) out_.workspace_kept = true;
  *distribute = t_.validate.continue_distribute_on_failure &&
                r.status.code() != StatusCode::kCancelled &&
                r.status.code() != StatusCode::kDeadlineExceeded;
  return Fail(r.status.code() == StatusCode::kAborted ? r.status.WithContext("validation failed")
                                                      : r.status);
}

bool Builder::Distribute() {
  SubState("Distributing");
  Phase("distribute");
  bool any_failed = false;
  for (const tmpl::Distribution& d : t_.distribute) {
    const bool is_vhd = std::holds_alternative<tmpl::VhdTarget>(d.target);
    const char* type = is_vhd                                                       ? "VHD"
                       : std::holds_alternative<tmpl::ManagedImageTarget>(d.target) ? "ManagedImage"
                                                                                    : "SharedImage";
    RunOutput ro{d.run_output_name, type, "", "", "Succeeded", ""};
    log_.Header("distribute " + d.run_output_name + " (" + type + ")");
    bool ok = Cancelled() ? false : is_vhd ? DistributeVhd(d, ro) : DistributeToStore(d, ro);
    if (!ok) {
      if (ro.error.empty()) ro.error = "the build was canceled";
      ro.provisioning_state = "Failed";
      log_.Info("distribution " + d.run_output_name + " failed: " + ro.error);
      any_failed = true;
    }
    out_.outputs.push_back(ro);
  }
  if (Cancelled()) {
    out_.state = RunState::kCanceled;
    out_.message = "the build was canceled";
    return false;
  }
  if (any_failed) {
    bool all_failed = std::all_of(out_.outputs.begin(), out_.outputs.end(), [](const RunOutput& r) {
      return r.provisioning_state != "Succeeded";
    });
    out_.state = all_failed ? RunState::kFailed : RunState::kPartiallySucceeded;
    out_.message = "one or more distribution targets failed; see runOutputs";
    return false;
  }
  return true;
}

BuildOutcome Builder::Run() {
  deadline_us_ = env_.MonotonicMicros() + t_.build_timeout_minutes * 60LL * 1000000;
  Status pre = Precheck(t_);
  if (!pre.ok()) {
    Fail(pre);
    return out_;
  }
  // sourceValidationOnly: the source's own disk, without customization.
  const bool source_only = t_.validate.source_validation_only;
  // Whether KVM works (the probe can take 5 s) and the validation VM's SSH
  // host keys are made while the image is built, not when validation starts.
  std::optional<vm::ValidationPrefetch> prefetch;
  if (!t_.validate.in_vm_validations.empty()) {
    prefetch.emplace(env_, AccelCacheFile(), SshKeysCache());
  }
  if (Prepare() && (source_only || (Customize() && Generalize())) && MakeDisk()) {
    bool distribute = true;
    bool valid = Validate(&distribute);
    if (source_only) {
      if (valid) {
        log_.Info(
            "sourceValidationOnly: the source image passed validation; nothing was built, "
            "so nothing is distributed");
        out_.state = RunState::kSucceeded;
        out_.message.clear();
      }
    } else if (distribute) {
      RunState failed_state = out_.state;
      std::string why = out_.message;
      bool distributed = Distribute();
      if (valid && distributed) {
        out_.state = RunState::kSucceeded;
        out_.message.clear();
      } else if (!valid) {
        // continueDistributeOnFailure: distributed, but the run still failed.
        out_.state = Cancelled() ? RunState::kCanceled : failed_state;
        out_.message = why + (distributed ? "; the outputs were distributed anyway "
                                            "(validate.continueDistributeOnFailure)"
                                          : "; " + out_.message);
      }
    }
  }
  Phase("");
  log_.Header("run " + std::string(RunStateName(out_.state)) +
              (out_.message.empty() ? "" : ": " + out_.message));
  return out_;
}

}  // namespace

Status Precheck(const tmpl::ImageTemplate& t) {
  for (size_t i = 0; i < t.customize.size(); ++i) {
    const tmpl::Step& s = t.customize[i];
    if (tmpl::IsWindowsOnly(s.type())) {
      return FailedPreconditionError(
          StepLabel(i, s) + ": " + tmpl::StepTypeName(s.type()) +
          " customizers run only on Windows images, and the source is a Linux image; use a "
          "Shell customizer");
    }
  }
  for (size_t i = 0; i < t.validate.in_vm_validations.size(); ++i) {
    const tmpl::Step& s = t.validate.in_vm_validations[i];
    if (tmpl::IsWindowsOnly(s.type())) {
      return FailedPreconditionError("validate.inVMValidations[" + std::to_string(i) + "]" +
                                     (s.name.empty() ? "" : " '" + s.name + "'") +
                                     ": PowerShell validators run only on Windows images");
    }
  }
  if (t.validate.source_validation_only) {
    if (!t.customize.empty()) {
      return FailedPreconditionError(
          "validate.sourceValidationOnly is true, so the source image is validated as it is, but "
          "customize has " +
          std::to_string(t.customize.size()) +
          " step(s); remove them or set sourceValidationOnly to false");
    }
    if (t.validate.in_vm_validations.empty()) {
      return FailedPreconditionError(
          "validate.sourceValidationOnly is true but validate.inVMValidations is empty; add a "
          "validator");
    }
  }
  for (const tmpl::Distribution& d : t.distribute) {
    if (const auto* v = std::get_if<tmpl::VhdTarget>(&d.target)) {
      if (StartsWithIgnoreCase(v->uri, "http://") || StartsWithIgnoreCase(v->uri, "https://")) {
        return UnimplementedError("distribute '" + d.run_output_name +
                                  "': uploading a VHD to a storage URL is not supported; give a "
                                  "local path or file:// URI, or leave uri out");
      }
    }
  }
  return Status::Ok();
}

BuildOutcome RunBuild(Env& env, const tmpl::ImageTemplate& t, const BuildOptions& options,
                      RunLog& log) {
  Builder b(env, t, options, log);
  return b.Run();
}

}  // namespace imagesmith::build
