// The build pipeline: one run of an image template, from the source image to
// a bootable disk and its distribution targets.
//
//   precheck -> base image (catalog) -> customizers (sandbox, step cache)
//   -> generalize -> bootable disk (ext4 root + GRUB, BIOS and UEFI)
//   -> distribute (VHD, managed image, gallery version; see distribute.h)
//
// Everything a run writes lives in its run directory. The pipeline does not
// touch the metadata database; the caller records the outcome.
// Thread-compatible: one RunBuild per run.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "base/env.h"
#include "builder/distribute.h"
#include "builder/run_log.h"
#include "template/model.h"

namespace imagesmith::build {

// What identified a step in a previous run, to explain cache misses.
struct StepRecord {
  std::string name;
  std::string key;                // the cache key
  std::string definition_digest;  // SHA-256 of the canonical step JSON
  std::string inputs_digest;      // SHA-256 over the fetched inputs' digests
  std::string parent_key;
  Json ToJson() const;
  static StepRecord FromJson(const Json& j);
};

struct BuildOptions {
  std::string template_dir;  // relative scriptUri/sourceUri resolve here
  std::string data_dir;      // catalog and step cache live here
  std::string run_dir;       // this run's directory (exists, empty)
  bool use_cache = true;
  // Polled; when it becomes true the build stops and reports Canceled.
  const std::atomic<bool>* cancel = nullptr;
  // Steps of the previous run of the same template, for miss reasons.
  std::vector<StepRecord> previous_steps;
  // runSubState changes: "Building", "Customizing", "Validating", "Distributing".
  std::function<void(const std::string&)> on_sub_state;
  // The store and metadata for ManagedImage/SharedImage targets and for
  // sources from the store. Borrowed; null means such a template fails with
  // a message saying so.
  const PublishContext* publish = nullptr;
  // Where VHD targets without a `uri` go (the template's staging area);
  // empty: <run_dir>/outputs.
  std::string staging_dir;
};

enum class RunState { kSucceeded, kPartiallySucceeded, kFailed, kCanceled };
const char* RunStateName(RunState s);

struct RunOutput {
  std::string run_output_name;
  std::string type;                // "VHD", ...
  std::string artifact_uri;        // file path of the artifact (VHD)
  std::string artifact_id;         // resource ID (ManagedImage, SharedImage)
  std::string provisioning_state;  // "Succeeded" or "Failed"
  std::string error;
};

struct BuildOutcome {
  RunState state = RunState::kFailed;
  std::string message;         // why it failed or was canceled; "" on success
  std::string last_sub_state;  // the phase it ended in
  std::string disk_path;       // the bootable raw disk, when one was made
  uint64_t disk_size_bytes = 0;
  std::string hyper_v_generation;  // "V1" or "V2"
  std::string source_urn;          // the resolved platform image, or the store source's ID
  std::string stored_image;        // the store digest of the image, when it was ingested
  std::vector<StepRecord> steps;   // the customizer steps that completed
  std::vector<RunOutput> outputs;
  bool workspace_kept = false;  // errorHandling abort: the run dir is kept for inspection
  // How long each phase that ran took, in the order they ran: "source",
  // "customize", "generalize", "disk", "validate", "distribute" (seconds;
  // the last one ends when the build does, however it ends).
  std::vector<std::pair<std::string, double>> phase_seconds;
  int cache_hits = 0;
  int cache_misses = 0;
};

// Checks what can be checked before anything runs: customizer types against
// the source's OS, supported source and distribution types, URIs. Each error
// names the customizer's index and name or the target's runOutputName.
Status Precheck(const tmpl::ImageTemplate& t);

// Runs the whole build. Never throws; every failure is in the outcome and
// in the log. The run's deadline is t.build_timeout_minutes from the start.
BuildOutcome RunBuild(Env& env, const tmpl::ImageTemplate& t, const BuildOptions& options,
                      RunLog& log);

}  // namespace imagesmith::build
