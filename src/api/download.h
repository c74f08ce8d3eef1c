// Files a client may download over HTTP (doc/server.md, "Downloads"): the
// disk of a template's run, a run output's VHD, and the OS disk of a managed
// image or a gallery image version (exported once, then kept). The server
// streams the file this returns; the api layer decides what may be read.
#pragma once

#include <map>
#include <string>

#include "api/services.h"
#include "base/resource_id.h"
#include "base/statusor.h"

namespace imagesmith::api {

struct DownloadFile {
  std::string path;       // an existing regular file, inside the data directory
  std::string file_name;  // for Content-Disposition: "web-20261130T001500Z-disk.raw"
};

// What `GET {id}/download` serves, with the request's query `params`:
//   an image template (needs .../imageTemplates/read):
//     artifact=disk (default): the run's disk.raw; runId=R (default the
//       last run, one of the template's run directories);
//     artifact=runOutput&runOutputName=N: the run output's VHD (artifactUri)
//   a managed image, an image version or a definition's `latest` (needs their
//     read action): format=vhd (default) | raw | vhd-dynamic | qcow2,
//     location=R: its OS disk, exported under DATA/downloads/ on first use.
// Errors: NotFound naming what is missing; PermissionDenied
// (AuthorizationFailed); InvalidArgument ("InvalidParameter: ...") naming a
// bad parameter -- a runId that is not a plain name, a file outside the
// data directory (a path that escapes it through "..", a symlink or a VHD
// written elsewhere) is refused, never served.
StatusOr<DownloadFile> PrepareDownload(Services& services, const Caller& caller,
                                       const ResourceId& id,
                                       const std::map<std::string, std::string>& params);

}  // namespace imagesmith::api
