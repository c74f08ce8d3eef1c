// imagesmith vm image ...: the platform image catalog (catalog/), shaped like
// `az vm image list / show` plus `build` to make a new base version.
#include <iostream>
#include <string>

#include "base/strings.h"
#include "catalog/catalog.h"
#include "cli/command.h"

namespace imagesmith::cli {
namespace {

OptionSpec CatalogOption(std::string name, char short_name, std::string value_name,
                         std::string help, bool required = false) {
  OptionSpec o;
  o.name = std::move(name);
  o.short_name = short_name;
  o.value_name = std::move(value_name);
  o.help = std::move(help);
  o.required = required;
  return o;
}

Json EntryJson(const catalog::CatalogEntry& e) {
  Json o = Json::MakeObject();
  o.Set("architecture", Json::String("x64"));
  o.Set("offer", Json::String(e.offer));
  o.Set("publisher", Json::String(e.publisher));
  o.Set("sku", Json::String(e.sku));
  o.Set("urn", Json::String(e.Urn()));
  o.Set("version", Json::String(e.version));
  o.Set("hyperVGeneration", Json::String(std::string(catalog::GenerationName(e.generation))));
  o.Set("cached", Json::Bool(e.cached));
  return o;
}

// Case-insensitive containment, as az's --publisher/--offer/--sku filters.
bool Matches(const ParsedArgs& args, const char* option, const std::string& value) {
  if (!args.Has(option)) return true;
  return AsciiToLower(value).find(AsciiToLower(args.Get(option))) != std::string::npos;
}

StatusOr<catalog::Catalog> OpenCatalog(CommandContext& ctx) {
  ASSIGN_OR_RETURN(std::string dir, catalog::Catalog::DefaultCacheDir());
  return catalog::Catalog(*ctx.env, dir);
}

// Fills a source from --urn or -p/-f/-s/--version.
StatusOr<tmpl::PlatformImageSource> SourceFrom(const ParsedArgs& args, bool version_allowed) {
  tmpl::PlatformImageSource s;
  if (args.Has("urn")) {
    std::vector<std::string> parts = Split(args.Get("urn"), ':');
    if (parts.size() != 4 && parts.size() != 3) {
      return InvalidArgumentError("--urn " + QuoteForMessage(args.Get("urn")) +
                                  " is not PUBLISHER:OFFER:SKU[:VERSION]");
    }
    s.publisher = parts[0];
    s.offer = parts[1];
    s.sku = parts[2];
    s.version = parts.size() == 4 ? parts[3] : "latest";
    return s;
  }
  for (const char* o : {"publisher", "offer", "sku"}) {
    if (!args.Has(o)) return InvalidArgumentError(std::string("--") + o + " or --urn is required");
  }
  s.publisher = args.Get("publisher");
  s.offer = args.Get("offer");
  s.sku = args.Get("sku");
  s.version = version_allowed ? args.Get("version", "latest") : "latest";
  return s;
}

int RunList(const ParsedArgs& args, CommandContext& ctx) {
  auto cat = OpenCatalog(ctx);
  if (!cat.ok()) return ReportError(cat.status(), ctx);
  Json rows = Json::MakeArray();
  for (const catalog::CatalogEntry& e : cat->List(args.Has("all"))) {
    if (Matches(args, "publisher", e.publisher) && Matches(args, "offer", e.offer) &&
        Matches(args, "sku", e.sku)) {
      rows.Append(EntryJson(e));
    }
  }
  PrintResult(rows, ctx);
  return 0;
}

Json ImageJson(const catalog::BaseImage& image) {
  Json o = EntryJson(image.entry);
  o.Set("rootfs", Json::String(image.rootfs_dir));
  o.Set("manifest", image.manifest);
  return o;
}

int RunShow(const ParsedArgs& args, CommandContext& ctx) {
  auto source = SourceFrom(args, true);
  if (!source.ok()) return ReportError(source.status(), ctx);
  auto cat = OpenCatalog(ctx);
  if (!cat.ok()) return ReportError(cat.status(), ctx);
  auto entry = cat->Resolve(*source);
  if (!entry.ok()) return ReportError(entry.status(), ctx);
  if (!entry->cached) {
    return ReportError(NotFoundError(entry->Urn() + " has no version built yet"), ctx,
                       "run `imagesmith vm image build --urn " + entry->publisher + ":" +
                           entry->offer + ":" + entry->sku + "` or a build that uses it");
  }
  auto image = cat->Load(*entry);
  if (!image.ok()) return ReportError(image.status(), ctx);
  PrintResult(ImageJson(*image), ctx);
  return 0;
}

int RunBuild(const ParsedArgs& args, CommandContext& ctx) {
  auto source = SourceFrom(args, false);
  if (!source.ok()) return ReportError(source.status(), ctx);
  auto cat = OpenCatalog(ctx);
  if (!cat.ok()) return ReportError(cat.status(), ctx);
  const bool show = ctx.verbose || ctx.stderr_is_tty;
  auto progress = [&ctx, show](std::string_view line) {
    if (show) *ctx.err << line << "\n" << std::flush;
  };
  auto image = args.Has("if-missing") ? cat->Ensure(*source, progress)
                                      : cat->BuildNew(*source, progress);
  if (!image.ok()) return ReportError(image.status(), ctx);
  Json o = ImageJson(*image);
  // The package list is long; `vm image show` prints it.
  Json summary = Json::MakeObject();
  for (const JsonMember& m : image->manifest.object_items()) {
    if (m.key == "packages") {
      summary.Set("packageCount", Json::Int(static_cast<int64_t>(m.value.array_items().size())));
    } else {
      summary.Set(m.key, m.value);
    }
  }
  o.Set("manifest", std::move(summary));
  PrintResult(o, ctx);
  return 0;
}

const char* kSkuHelp =
    "Offered: Debian:debian-12:12 (hyperVGeneration V1, BIOS) and Debian:debian-12:12-gen2\n"
    "(V2, UEFI). Both use one base tree, which imagesmith builds from Debian's packages\n"
    "with mmdebstrap and the host's apt sources and keeps under the data directory\n"
    "(catalog/). Names match ignoring case. See doc/catalog.md.";

}  // namespace

void RegisterCatalogCommands(CommandRegistry& registry) {
  registry.AddGroup("vm", "Virtual machine images and sizes.");
  registry.AddGroup("vm image", "The platform image catalog (PlatformImage sources).");
  registry.Add(CommandSpec{
      .path = "vm image list",
      .summary = "List the platform images a template can name.",
      .description =
          std::string("Prints [{architecture, offer, publisher, sku, urn, version,\n"
                      "hyperVGeneration, cached}] like `az vm image list`. Without --all, one\n"
                      "row per sku with version \"latest\" (cached says whether a version is\n"
                      "built); with --all, one row per built version, oldest first.\n"
                      "--publisher, --offer and --sku keep rows whose value contains the given\n"
                      "text, ignoring case.\n\n") +
          kSkuHelp,
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options =
          {
              CatalogOption("all", 0, "", "List every built version instead of one row per sku."),
              CatalogOption("publisher", 'p', "PUBLISHER", "Filter by publisher."),
              CatalogOption("offer", 'f', "OFFER", "Filter by offer."),
              CatalogOption("sku", 's', "SKU", "Filter by sku."),
          },
      .examples = {"imagesmith vm image list -o table",
                   "imagesmith vm image list --all -p debian -s gen2"},
      .run = RunList,
  });
  registry.Add(CommandSpec{
      .path = "vm image show",
      .summary = "Show a built platform image version and its manifest.",
      .description =
          std::string("Resolves the image (version \"latest\" by default) and prints its row,\n"
                      "the path of its tree and its manifest (packages, kernel, size, build\n"
                      "time, apt source files used).\n\n") +
          kSkuHelp,
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options =
          {
              CatalogOption("urn", 0, "URN", "PUBLISHER:OFFER:SKU[:VERSION]."),
              CatalogOption("publisher", 'p', "PUBLISHER", "Publisher (or use --urn)."),
              CatalogOption("offer", 'f', "OFFER", "Offer (or use --urn)."),
              CatalogOption("sku", 's', "SKU", "Sku (or use --urn)."),
              CatalogOption("version", 0, "VERSION", "A built version, or latest (default)."),
          },
      .examples = {"imagesmith vm image show --urn Debian:debian-12:12:latest"},
      .run = RunShow,
  });
  registry.Add(CommandSpec{
      .path = "vm image build",
      .summary = "Build a new version of a platform image's base now.",
      .description =
          std::string("Builds the next version (0.YYYYMMDD.N) of the sku's base tree with\n"
                      "mmdebstrap, so later builds with version \"latest\" use it. With\n"
                      "--if-missing, builds only when no version exists yet. mmdebstrap's output\n"
                      "is shown on a terminal or with --verbose. Waits if another build of the\n"
                      "same base is running.\n\n") +
          kSkuHelp,
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options =
          {
              CatalogOption("urn", 0, "URN", "PUBLISHER:OFFER:SKU."),
              CatalogOption("publisher", 'p', "PUBLISHER", "Publisher (or use --urn)."),
              CatalogOption("offer", 'f', "OFFER", "Offer (or use --urn)."),
              CatalogOption("sku", 's', "SKU", "Sku (or use --urn)."),
              CatalogOption("if-missing", 0, "", "Build only if no version is built yet."),
          },
      .examples = {"imagesmith vm image build -p Debian -f debian-12 -s 12",
                   "imagesmith vm image build --urn Debian:debian-12:12-gen2 --if-missing"},
      .run = RunBuild,
  });
}

}  // namespace imagesmith::cli
