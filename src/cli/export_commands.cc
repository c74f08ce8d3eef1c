// imagesmith image export / sig image-version export: the disk of a stored
// image as a raw, VHD or qcow2 file. Tree images are made again from their
// file tree, byte for byte the disk their build made (builder/distribute.h).
#include <functional>
#include <optional>

#include "api/image_export.h"
#include "api/local.h"
#include "builder/distribute.h"
#include "cli/command.h"
#include "cli/gallery_args.h"
#include "disk/disk.h"
#include "gallery/names.h"
#include "gallery/publish.h"
#include "gallery/resources.h"

namespace imagesmith::cli {
namespace {

// Exports the resource `id_of` names in the opened data directory.
int Export(const ParsedArgs& args, CommandContext& ctx,
           const std::function<ResourceId(const Data&)>& id_of) {
  auto format = disk::ParseDiskFormat(args.Get("format", "vhd"));
  if (!format.ok()) return ReportError(format.status().WithContext("--format"), ctx);
  auto g = OpenGalleryData(*ctx.env);
  if (!g.ok()) return ReportError(g.status(), ctx);
  const ResourceId id = id_of(g->data);
  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);
  std::optional<std::string> region;
  if (args.Has("location")) region = args.Get("location");
  auto image = api::ResolveExportImage((*local)->services, (*local)->owner, id, region);
  Status s = image.status();
  if (!s.ok()) return ReportError(s, ctx);
  const std::string out = args.Get("file");
  s = build::ExportStoredImage(*ctx.env, *g->store, image->region, image->image, *format, out,
                               nullptr);
  if (!s.ok()) return ReportError(s, ctx);
  Json result = Json::MakeObject();
  result.Set("file", Json::String(out));
  result.Set("format", Json::String(std::string(disk::DiskFormatName(*format))));
  result.Set("source", Json::String(image->resource_id));
  result.Set("region", Json::String(image->region.name()));
  result.Set("storeImage", Json::String(image->image.ToHex()));
  PrintResult(result, ctx);
  return 0;
}

CommandSpec ExportSpec(std::string path, std::string summary, std::vector<OptionSpec> options,
                       std::string example,
                       std::function<int(const ParsedArgs&, CommandContext&)> run) {
  options.push_back(
      {"file", 'f', "FILE", "Where to write the disk (must not exist).", false, true});
  options.push_back({"format", 0, "FORMAT",
                     "raw, vhd (fixed, whole MiB: Azure's rule; the default), vhd-dynamic or "
                     "qcow2."});
  return CommandSpec{
      .path = std::move(path),
      .summary = std::move(summary),
      .description =
          "Writes the image's OS disk. An image an imagesmith build published is made again\n"
          "from its stored file tree: the same image always gives the same bytes, those of\n"
          "the disk the build made. An imported image gives back the disk it was imported from.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options = std::move(options),
      .examples = {std::move(example)},
      .run = std::move(run)};
}

int RunImageExport(const ParsedArgs& args, CommandContext& ctx) {
  return Export(args, ctx, [&](const Data& d) {
    return gallery::ManagedImageId(d.Group(args.Get("resource-group")), args.Get("name"));
  });
}

int RunVersionExport(const ParsedArgs& args, CommandContext& ctx) {
  return Export(args, ctx, [&](const Data& d) {
    return gallery::DefinitionId(d.Group(args.Get("resource-group")), args.Get("gallery-name"),
                                 args.Get("gallery-image-definition"))
        .Child("versions", args.Get("gallery-image-version"));
  });
}

}  // namespace

void RegisterExportCommands(CommandRegistry& registry) {
  registry.Add(ExportSpec("image export", "Write a managed image's OS disk to a file.",
                          {{"resource-group", 'g', "GROUP", "Resource group.", false, true},
                           {"name", 'n', "NAME", "Managed image name.", false, true}},
                          "imagesmith image export -g images -n web-1 -f web-1.vhd",
                          RunImageExport));
  registry.Add(ExportSpec(
      "sig image-version export", "Write an image version's OS disk to a file.",
      {{"resource-group", 'g', "GROUP", "Resource group.", false, true},
       {"gallery-name", 'r', "GALLERY", "Gallery name.", false, true},
       {"gallery-image-definition", 'i', "DEFINITION", "Image definition name.", false, true},
       {"gallery-image-version", 'e', "VERSION", "Version (Major.Minor.Patch) or 'latest'.", false,
        true},
       {"location", 'l', "REGION", "Read the replica in this region (default: the home region)."}},
      "imagesmith sig image-version export -g images -r gal -i web -e 1.0.0 -f web.qcow2 "
      "--format qcow2",
      RunVersionExport));
}

}  // namespace imagesmith::cli
