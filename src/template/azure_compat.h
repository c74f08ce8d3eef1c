// 'template validate --azure': what Azure would refuse or handle differently
// in a template that imagesmith accepts. imagesmith is deliberately more
// permissive in places (local script paths, VHDs written to a path, files of
// any size); these warnings tell a user whose template must also work in
// Azure where it would not.
//
// Pure function over Env (it stats local files); safe to call from several
// threads.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/env.h"
#include "template/diagnostics.h"
#include "template/model.h"

namespace imagesmith::tmpl {

// Azure's File customizer is meant for files under 20 MB (template reference).
inline constexpr uint64_t kAzureFileCustomizerLimit = 20ull << 20;

// Warnings (never errors) about `t`. `template_dir` resolves relative
// sourceUri paths, to measure local files. Paths are relative to the template
// ("properties.customize[1].sourceUri").
std::vector<Diagnostic> AzureCompatibility(const ImageTemplate& t, Env& env,
                                           const std::string& template_dir);

// Every place `t` names a file on the imagesmith host rather than a URL: a
// customizer's or validator's local scriptUri / sourceUri (a path or
// file://), and a VHD target's uri that is not https://. Pairs of (JSON
// path, the value as written), in template order. The API lets only the data
// directory's owner write such templates: the build reads and writes those
// files with imagesmith's rights.
std::vector<std::pair<std::string, std::string>> HostPathReferences(const ImageTemplate& t);

}  // namespace imagesmith::tmpl
