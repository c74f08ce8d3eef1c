#include "builder/fetch.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>

#include "base/strings.h"

namespace imagesmith::build {
namespace {

// Streams bytes into a file while hashing them, refusing oversized input.
class Sink {
 public:
  explicit Sink(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  }
  ~Sink() {
    if (fd_ >= 0) ::close(fd_);
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  Status Open() const { return fd_ < 0 ? ErrnoError("create " + path_, errno) : Status::Ok(); }

  bool Write(const char* data, size_t n) {
    if (bytes_ + n > kMaxInputBytes) {
      too_big_ = true;
      return false;
    }
    hasher_.Update(std::string_view(data, n));
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::write(fd_, data + done, n - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        write_errno_ = errno;
        return false;
      }
      done += static_cast<size_t>(w);
    }
    bytes_ += n;
    return true;
  }

  Status Finish(FetchedInput& out) {
    if (too_big_) {
      return ResourceExhaustedError("the input is larger than " +
                                    std::to_string(kMaxInputBytes >> 20) + " MiB");
    }
    if (write_errno_ != 0) return ErrnoError("write " + path_, write_errno_);
    if (::fsync(fd_) != 0) return ErrnoError("fsync " + path_, errno);
    out.path = path_;
    out.digest = hasher_.Finish();
    out.bytes = bytes_;
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_ = -1;
  Sha256Hasher hasher_;
  uint64_t bytes_ = 0;
  bool too_big_ = false;
  int write_errno_ = 0;
};

size_t CurlWrite(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<Sink*>(user);
  return sink->Write(data, size * nmemb) ? size * nmemb : 0;
}

Status FetchHttp(const std::string& uri, Sink& sink) {
  static const bool initialised = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!initialised) return InternalError("libcurl could not be initialised");
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return InternalError("libcurl could not start a transfer");
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, uri.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CurlWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "imagesmith");
  CURLcode rc = curl_easy_perform(curl);
  long http = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
  curl_easy_cleanup(curl);
  if (rc == CURLE_WRITE_ERROR) return Status::Ok();  // the sink reports why
  if (rc != CURLE_OK) {
    return UnavailableError("cannot download " + uri + ": " +
                            (error[0] != '\0' ? std::string(error) : curl_easy_strerror(rc)));
  }
  if (http >= 400) {
    return (http == 404
                ? NotFoundError("cannot download " + uri + ": HTTP 404 Not Found")
                : UnavailableError("cannot download " + uri + ": HTTP " + std::to_string(http)));
  }
  return Status::Ok();
}

// Resolves a local reference, keeping relative paths inside the template's
// directory even through symlinks.
StatusOr<std::string> ResolveLocal(const std::string& template_dir, const std::string& uri) {
  std::string path = uri;
  if (StartsWithIgnoreCase(uri, "file://")) {
    path = uri.substr(7);
    if (path.empty() || path[0] != '/') {
      return InvalidArgumentError(QuoteForMessage(uri) +
                                  " is not an absolute file:// URI (write file:///path)");
    }
    return path;
  }
  if (!path.empty() && path[0] == '/') return path;
  char dir_real[PATH_MAX];
  if (::realpath(template_dir.c_str(), dir_real) == nullptr) {
    return ErrnoError("template directory " + template_dir, errno);
  }
  std::string joined = std::string(dir_real) + "/" + path;
  char real[PATH_MAX];
  if (::realpath(joined.c_str(), real) == nullptr) {
    return ErrnoError(QuoteForMessage(uri) + " (relative to " + std::string(dir_real) + ")", errno);
  }
  std::string base = std::string(dir_real) + "/";
  if (!StartsWith(real, base)) {
    return PermissionDeniedError(QuoteForMessage(uri) + " resolves to " + real +
                                 ", outside the template's directory " + dir_real +
                                 "; use an absolute path or file:// URI to read files elsewhere");
  }
  return std::string(real);
}

Status CopyLocal(Env& env, const std::string& path, Sink& sink) {
  (void)env;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(path, errno);
  char buf[1 << 16];
  Status s;
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      s = ErrnoError("read " + path, errno);
      break;
    }
    if (n == 0 || !sink.Write(buf, static_cast<size_t>(n))) break;
  }
  ::close(fd);
  return s;
}

}  // namespace

StatusOr<FetchedInput> FetchInput(Env& env, const std::string& template_dir, const std::string& uri,
                                  const std::optional<Sha256Digest>& expected,
                                  const std::string& dest_path) {
  FetchedInput out;
  {
    Sink sink(dest_path);
    RETURN_IF_ERROR(sink.Open());
    Status fetched;
    if (StartsWithIgnoreCase(uri, "http://") || StartsWithIgnoreCase(uri, "https://")) {
      fetched = FetchHttp(uri, sink);
    } else {
      auto local = ResolveLocal(template_dir, uri);
      fetched = local.ok() ? CopyLocal(env, *local, sink) : local.status();
    }
    if (fetched.ok()) fetched = sink.Finish(out);
    if (!fetched.ok()) {
      (void)env.RemoveAll(dest_path);
      return fetched;
    }
  }
  if (expected && *expected != out.digest) {
    (void)env.RemoveAll(dest_path);
    return InvalidArgumentError("sha256Checksum mismatch for " + uri + ": expected " +
                                expected->ToHex() + ", got " + out.digest.ToHex() +
                                "; nothing was run");
  }
  return out;
}

}  // namespace imagesmith::build
