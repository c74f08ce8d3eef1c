// Fetching customizer inputs (scriptUri, sourceUri): a path relative to the
// template, an absolute path, file://, or http(s):// through libcurl. The
// content's SHA-256 is computed while it is fetched and checked against the
// template's sha256Checksum before the caller can use it.
//
// Thread-compatible; each call is independent.
#pragma once

#include <optional>
#include <string>

#include "base/env.h"
#include "base/sha256.h"

namespace imagesmith::build {

struct FetchedInput {
  std::string path;     // where the content now is (inside the run directory)
  Sha256Digest digest;  // of the content
  uint64_t bytes = 0;
};

// Inputs larger than this are refused (the reference recommends the File
// customizer for files under 20 MB; scripts are far smaller).
inline constexpr uint64_t kMaxInputBytes = 256ull << 20;

// Fetches `uri` into `dest_path`. Relative paths resolve against
// `template_dir` and must stay inside it (no "..", no symlink escapes).
// When `expected` is set and differs from the content's digest, returns
// InvalidArgument showing the expected and actual digests, and deletes the
// fetched file. Network errors are Unavailable with curl's message; HTTP
// errors name the status code.
StatusOr<FetchedInput> FetchInput(Env& env, const std::string& template_dir, const std::string& uri,
                                  const std::optional<Sha256Digest>& expected,
                                  const std::string& dest_path);

}  // namespace imagesmith::build
