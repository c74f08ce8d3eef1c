#include "api/download.h"

#include <limits.h>
#include <stdlib.h>

#include "api/arm_error.h"
#include "api/image_export.h"
#include "api/template_internal.h"
#include "api/template_provider.h"
#include "auth/authorize.h"
#include "base/random.h"
#include "base/strings.h"
#include "builder/distribute.h"
#include "disk/disk.h"
#include "store/store.h"

namespace imagesmith::api {
namespace {

using internal::ExtField;
using internal::ExtString;

Status BadParameter(const std::string& message) {
  return ArmStatus(StatusCode::kInvalidArgument, "InvalidParameter", message);
}

std::string Param(const std::map<std::string, std::string>& params, const std::string& name,
                  const std::string& fallback) {
  for (const auto& [k, v] : params) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return fallback;
}

// `path` resolved (symlinks, "..") when it is a regular file inside
// `data_dir`; errors otherwise. The file served is the resolved one, so a
// link swapped in later cannot lead outside either.
StatusOr<std::string> InsideDataDir(const std::string& data_dir, const std::string& path,
                                    const std::string& what) {
  char root[PATH_MAX], real[PATH_MAX];
  if (::realpath(data_dir.c_str(), root) == nullptr) {
    return InternalError("the data directory " + data_dir + " cannot be resolved");
  }
  if (::realpath(path.c_str(), real) == nullptr) {
    return ArmStatus(StatusCode::kNotFound, "ResourceNotFound", what + " is gone from the server");
  }
  std::string r(real), base = std::string(root) + "/";
  if (r.compare(0, base.size(), base) != 0) {
    return ArmStatus(StatusCode::kPermissionDenied, "AuthorizationFailed",
                     what +
                         " is not inside the data directory; the server serves only files it "
                         "keeps");
  }
  return r;
}

// A run ID from the query: a plain name (run directories are named by it).
Status CheckRunId(const std::string& run) {
  if (run.empty() || run.size() > 100 || run == "." || run == ".." ||
      run.find_first_of("/\\") != std::string::npos) {
    return BadParameter("runId must be the name of one of the template's runs");
  }
  for (char c : run) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return BadParameter("runId must be the name of one of the template's runs");
    }
  }
  return Status::Ok();
}

StatusOr<DownloadFile> TemplateArtifact(Services& s, const Caller& caller, const ResourceId& id,
                                        const std::map<std::string, std::string>& params) {
  const std::string artifact = Param(params, "artifact", "disk");
  if (artifact != "disk" && artifact != "runOutput") {
    return BadParameter("artifact must be 'disk' (the run's disk) or 'runOutput'");
  }
  std::string current_dir, last_run, output_path;
  const std::string output = Param(params, "runOutputName", "");
  if (artifact == "runOutput" && output.empty()) {
    return BadParameter("artifact=runOutput needs runOutputName");
  }
  RETURN_IF_TXN_ERROR(s.meta->Read([&](meta::Transaction& txn) -> Status {
    RETURN_IF_ERROR(
        auth::Authorize(txn, caller.principal, std::string(kTemplateType) + "/read", id));
    auto r = txn.Get(id);
    if (!r.ok()) {
      return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                       "image template '" + id.name() + "' was not found");
    }
    current_dir = ExtString(*r, "currentRunDir");
    if (const Json* last = ExtField(*r, "lastRun"); last != nullptr && last->Find("runId")) {
      last_run = last->Find("runId")->is_string() ? last->Find("runId")->string_value() : "";
    }
    if (artifact == "runOutput") {
      auto o = txn.Get(id.Child("runOutputs", output));
      const Json* uri = o.ok() ? o->properties.Find("artifactUri") : nullptr;
      if (uri == nullptr || !uri->is_string() || uri->string_value().empty()) {
        return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                         "image template '" + id.name() + "' has no run output '" +
                             output.substr(0, 64) + "' with a file (a VHD)");
      }
      output_path = uri->string_value();
    }
    return Status::Ok();
  }));
  if (artifact == "runOutput") {
    ASSIGN_OR_RETURN(std::string path,
                     InsideDataDir(s.data_dir, output_path,
                                   "run output '" + output + "' (" + output_path + ")"));
    return DownloadFile{path, id.name() + "-" + output + ".vhd"};
  }
  if (current_dir.empty()) {
    return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                     "image template '" + id.name() + "' has not run yet");
  }
  const std::string run =
      Param(params, "runId", last_run.empty() ? Basename(current_dir) : last_run);
  RETURN_IF_ERROR(CheckRunId(run));
  const std::string disk = Dirname(current_dir) + "/" + run + "/disk.raw";
  if (!s.env->IsDirectory(Dirname(current_dir) + "/" + run)) {
    return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                     "image template '" + id.name() + "' has no run '" + run + "'");
  }
  if (!s.env->FileExists(disk)) {
    return ArmStatus(StatusCode::kNotFound, "ResourceNotFound",
                     "run '" + run + "' of image template '" + id.name() +
                         "' kept no disk (it failed before the disk was made, or was canceled)");
  }
  ASSIGN_OR_RETURN(std::string path,
                   InsideDataDir(s.data_dir, disk, "the disk of run '" + run + "'"));
  return DownloadFile{path, id.name() + "-" + run + "-disk.raw"};
}

StatusOr<DownloadFile> ImageDisk(Services& s, const Caller& caller, const ResourceId& id,
                                 const std::map<std::string, std::string>& params) {
  auto format = disk::ParseDiskFormat(Param(params, "format", "vhd"));
  if (!format.ok()) return BadParameter("format: " + format.status().message());
  std::optional<std::string> region;
  if (std::string l = Param(params, "location", ""); !l.empty()) region = l;
  ASSIGN_OR_RETURN(gallery::SourceImage image, ResolveExportImage(s, caller, id, region));
  const std::string ext = *format == disk::DiskFormat::kRaw     ? "raw"
                          : *format == disk::DiskFormat::kQcow2 ? "qcow2"
                                                                : "vhd";
  const std::string dir = s.data_dir + "/downloads";
  const std::string out = dir + "/" + image.image.ToHex() + "-" + image.region.name() + "-" +
                          std::string(disk::DiskFormatName(*format)) + "." + ext;
  if (!s.env->FileExists(out)) {
    // Exported once per image, region and format (the same image always
    // gives the same bytes); a temp name and a rename, so a concurrent
    // request never streams half a file.
    RETURN_IF_ERROR(s.env->CreateDirs(dir));
    ASSIGN_OR_RETURN(std::unique_ptr<store::Store> store,
                     store::Store::Open(*s.env, s.data_dir + "/store"));
    const std::string tmp = dir + "/.tmp-" + RandomHex(16) + "." + ext;
    Status made =
        build::ExportStoredImage(*s.env, *store, image.region, image.image, *format, tmp, nullptr);
    if (made.ok()) made = s.env->Rename(tmp, out);
    if (!made.ok()) {
      (void)s.env->RemoveAll(tmp);
      return made;
    }
  }
  std::string name = id.name();
  if (id.IsType("Microsoft.Compute/galleries/images/versions")) {
    name = id.Parent().name() + "-" + id.name();
  }
  return DownloadFile{out, name + "." + ext};
}

}  // namespace

StatusOr<DownloadFile> PrepareDownload(Services& services, const Caller& caller,
                                       const ResourceId& id,
                                       const std::map<std::string, std::string>& params) {
  if (id.IsType(kTemplateType)) return TemplateArtifact(services, caller, id, params);
  if (id.IsType("Microsoft.Compute/images") ||
      id.IsType("Microsoft.Compute/galleries/images/versions")) {
    return ImageDisk(services, caller, id, params);
  }
  return ArmStatus(StatusCode::kNotFound, "NotFound",
                   "nothing to download from a resource of type '" + id.FullType() +
                       "' (downloads: image templates' runs, managed images, image versions)");
}

}  // namespace imagesmith::api
