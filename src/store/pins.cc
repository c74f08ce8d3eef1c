#include "store/pins.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "base/crash_point.h"
#include "base/env.h"
#include "base/json.h"
#include "base/strings.h"
#include "store/objects.h"

namespace imagesmith::store {
namespace {

std::atomic<uint64_t> g_pin_counter{0};

// "<pid>.<start>.<n>.pin" -> pid, start.
bool ParsePinName(const std::string& name, int* pid, uint64_t* start) {
  if (!EndsWith(name, ".pin")) return false;
  std::vector<std::string> parts = Split(name, '.');
  if (parts.size() != 4 || !IsAsciiDigits(parts[0]) || !IsAsciiDigits(parts[1]) ||
      parts[0].size() > 9 || parts[1].size() > 19) {
    return false;
  }
  *pid = std::stoi(parts[0]);
  *start = std::stoull(parts[1]);
  return true;
}

}  // namespace

Status CreatePinFile(const std::string& pins_dir, PinFile* out) {
  out->path =
      pins_dir + "/" + SelfTag() + "." + std::to_string(g_pin_counter.fetch_add(1)) + ".pin";
  int fd = open(out->path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("creating pin " + out->path, errno);
  struct stat st;
  int r = fstat(fd, &st);
  int err = errno;
  close(fd);
  if (r != 0) return ErrnoError("stat " + out->path, err);
  out->created = {st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
  std::string tag = SelfTag();
  out->pid = SelfPidInProc();
  out->start_ticks = ProcessStartTicks(out->pid);
  CrashPoint("store.pin.created");
  return WritePinFile(*out);
}

Status WritePinFile(const PinFile& pin) {
  Json j = Json::MakeObject();
  j.Set("pid", Json::Int(pin.pid));
  j.Set("startTicks", Json::Int(static_cast<int64_t>(pin.start_ticks)));
  j.Set("createdSec", Json::Int(pin.created.sec));
  j.Set("createdNsec", Json::Int(pin.created.nsec));
  Json refs = Json::MakeArray();
  for (const ImageRef& r : pin.refs) {
    Json o = Json::MakeObject();
    o.Set("region", Json::String(r.region.name()));
    o.Set("image", Json::String(r.image.ToHex()));
    refs.Append(std::move(o));
  }
  j.Set("refs", std::move(refs));
  return Env::Default()->WriteFileAtomic(pin.path, j.Dump(-1) + "\n");
}

StatusOr<std::vector<PinFile>> ReadLivePins(const std::string& pins_dir) {
  Env* env = Env::Default();
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(pins_dir));
  std::vector<PinFile> out;
  for (const std::string& name : names) {
    PinFile pin;
    pin.path = pins_dir + "/" + name;
    if (!ParsePinName(name, &pin.pid, &pin.start_ticks)) {
      // A temp file of WriteFileAtomic, or junk: remove it once it is old.
      struct stat st;
      if (lstat(pin.path.c_str(), &st) == 0 && st.st_mtime + 3600 < time(nullptr)) {
        unlink(pin.path.c_str());
      }
      continue;
    }
    if (!ProcessAlive(pin.pid, pin.start_ticks)) {
      unlink(pin.path.c_str());
      continue;
    }
    struct stat st;
    if (lstat(pin.path.c_str(), &st) != 0) continue;  // released meanwhile
    pin.created = {st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
    auto text = env->ReadFile(pin.path, 16 << 20);
    if (text.ok()) {
      auto j = ParseJson(*text);
      if (j.ok() && j->is_object()) {
        const Json* sec = j->Find("createdSec");
        const Json* nsec = j->Find("createdNsec");
        if (sec != nullptr && nsec != nullptr && sec->AsInt64() && nsec->AsInt64()) {
          pin.created = {*sec->AsInt64(), *nsec->AsInt64()};
        }
        const Json* refs = j->Find("refs");
        if (refs != nullptr && refs->is_array()) {
          for (const Json& r : refs->array_items()) {
            const Json* region = r.Find("region");
            const Json* image = r.Find("image");
            if (region == nullptr || image == nullptr || !region->is_string() ||
                !image->is_string()) {
              continue;
            }
            auto reg = Region::Parse(region->string_value());
            auto dig = Sha256Digest::FromHex(image->string_value());
            if (reg.ok() && dig.ok()) pin.refs.push_back(ImageRef{*reg, *dig});
          }
        }
      }
    }
    out.push_back(std::move(pin));
  }
  return out;
}

}  // namespace imagesmith::store
