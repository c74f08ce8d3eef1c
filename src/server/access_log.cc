#include "server/access_log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "base/json.h"

namespace imagesmith::server {

void AccessLog::Write(const AccessLogEntry& e) {
  if (fd_ < 0) return;
  struct timeval tv;
  ::gettimeofday(&tv, nullptr);
  struct tm tm_utc;
  ::gmtime_r(&tv.tv_sec, &tm_utc);
  char when[40];
  size_t n = ::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm_utc);
  std::snprintf(when + n, sizeof(when) - n, ".%03dZ", static_cast<int>(tv.tv_usec / 1000));
  std::string line = "{\"time\":\"";
  line += when;
  line += "\",\"requestId\":";
  AppendJsonString(line, e.request_id);
  line += ",\"remote\":";
  AppendJsonString(line, e.remote);
  line += ",\"method\":";
  AppendJsonString(line, e.method.substr(0, 32));
  line += ",\"route\":";
  AppendJsonString(line, e.route);
  line += ",\"path\":";
  AppendJsonString(line, e.path.substr(0, 2048));
  char num[64];
  std::snprintf(num, sizeof(num), ",\"status\":%d,\"durationMs\":%.3f", e.status, e.duration_ms);
  line += num;
  line += ",\"bytesIn\":" + std::to_string(e.bytes_in);
  line += ",\"bytesOut\":" + std::to_string(e.bytes_out);
  line += ",\"principal\":";
  AppendJsonString(line, e.principal);
  if (!e.error_code.empty()) {
    line += ",\"error\":";
    AppendJsonString(line, e.error_code);
  }
  line += "}\n";
  // One write per line: O_APPEND files and pipes keep lines whole.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w <= 0) return;  // a full disk or closed stderr must not stop serving
    p += w;
    left -= static_cast<size_t>(w);
  }
}

}  // namespace imagesmith::server
