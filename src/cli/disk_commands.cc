// imagesmith disk ...: convert, inspect and check disk images (raw, VHD,
// qcow2) with the readers and writers in disk/.
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>

#include "cli/command.h"
#include "disk/convert.h"
#include "disk/disk.h"

namespace imagesmith::cli {
namespace {

std::string_view SubformatOf(disk::DiskFormat f) {
  switch (f) {
    case disk::DiskFormat::kVhdFixed:
      return "fixed";
    case disk::DiskFormat::kVhdDynamic:
      return "dynamic";
    default:
      return "";
  }
}

Json InfoJson(const std::string& file, const disk::DiskInfo& info) {
  const bool vhd = info.format == disk::DiskFormat::kVhdFixed ||
                   info.format == disk::DiskFormat::kVhdDynamic;
  Json o = Json::MakeObject();
  o.Set("file", Json::String(file));
  o.Set("format", Json::String(vhd ? "vhd" : std::string(disk::DiskFormatName(info.format))));
  if (vhd) o.Set("subformat", Json::String(std::string(SubformatOf(info.format))));
  o.Set("virtualSize", Json::Int(static_cast<int64_t>(info.virtual_size)));
  o.Set("fileSize", Json::Int(static_cast<int64_t>(info.file_size)));
  o.Set("actualSize", Json::Int(static_cast<int64_t>(info.allocated_bytes)));
  o.Set("dataBytes", Json::Int(static_cast<int64_t>(info.data_bytes)));
  if (info.cluster_size != 0) {
    o.Set(info.format == disk::DiskFormat::kQcow2 ? "clusterSize" : "blockSize",
          Json::Int(static_cast<int64_t>(info.cluster_size)));
  }
  if (info.format == disk::DiskFormat::kQcow2) {
    o.Set("compressed", Json::Bool(info.compressed_clusters));
  }
  if (vhd) {
    o.Set("creator", Json::String(info.creator));
    o.Set("azureCompatible", Json::Bool(info.format == disk::DiskFormat::kVhdFixed &&
                                        info.virtual_size % (1 << 20) == 0));
  }
  return o;
}

// A single updating line on stderr, shown only on a terminal and only once
// the conversion has run for a second.
class Progress {
 public:
  explicit Progress(CommandContext& ctx) : ctx_(ctx), start_(ctx.env->MonotonicMicros()) {}
  ~Progress() {
    if (shown_) *ctx_.err << "\n" << std::flush;
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Update(uint64_t done, uint64_t total) {
    if (!ctx_.stderr_is_tty) return;
    const int64_t now = ctx_.env->MonotonicMicros();
    if (now - start_ < 1000000 || now - last_ < 200000) return;
    last_ = now;
    shown_ = true;
    const double secs = static_cast<double>(now - start_) / 1e6;
    const double mib = static_cast<double>(done) / (1 << 20);
    char line[128];
    std::snprintf(line, sizeof(line), "\r%5.1f%%  %8.0f MiB  %7.1f MiB/s",
                  total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / static_cast<double>(total),
                  mib, mib / secs);
    *ctx_.err << line << std::flush;
  }

 private:
  CommandContext& ctx_;
  int64_t start_;
  int64_t last_ = 0;
  bool shown_ = false;
};

int RunConvert(const ParsedArgs& args, CommandContext& ctx) {
  const std::string& in = args.positionals()[0];
  const std::string& out = args.positionals()[1];
  auto format = disk::ParseDiskFormat(args.Get("format"));
  if (!format.ok()) return ReportError(format.status(), ctx);
  disk::ConvertOptions options;
  options.format = *format;
  options.compress = args.Has("compress");
  options.azure = args.Has("azure");
  options.round_up = args.Has("round-up");
  if (options.round_up && !options.azure) {
    return ReportError(InvalidArgumentError("--round-up only applies together with --azure"), ctx);
  }
  if (args.Has("cluster-size")) {
    const std::string v = args.Get("cluster-size");
    char* end = nullptr;
    unsigned long n = std::strtoul(v.c_str(), &end, 10);
    if (end == v.c_str() || *end != '\0' || n == 0 || n > (2u << 20)) {
      return ReportError(InvalidArgumentError("--cluster-size must be a number of bytes, a power "
                                              "of two from 512 to 2097152; got \"" + v + "\""),
                         ctx);
    }
    options.qcow2_cluster_size = static_cast<uint32_t>(n);
  }
  Progress progress(ctx);
  options.progress = [&progress](uint64_t done, uint64_t total) { progress.Update(done, total); };
  const int64_t start = ctx.env->MonotonicMicros();
  Status s = disk::ConvertDisk(in, out, options);
  if (!s.ok()) {
    std::string hint;
    if (s.message().find("whole number of MiB") != std::string::npos) {
      hint = "add --round-up to pad the disk to the next MiB";
    }
    return ReportError(s, ctx, hint);
  }
  const int64_t micros = ctx.env->MonotonicMicros() - start;
  auto reader = disk::OpenDiskPath(out);
  if (!reader.ok()) return ReportError(reader.status(), ctx);
  auto info = (*reader)->Info();
  if (!info.ok()) return ReportError(info.status(), ctx);
  Json o = InfoJson(out, *info);
  o.Set("source", Json::String(in));
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%.3f", static_cast<double>(micros) / 1e6);
  o.Set("seconds", Json::NumberText(secs));
  PrintResult(o, ctx);
  return 0;
}

int RunInfo(const ParsedArgs& args, CommandContext& ctx) {
  const std::string& file = args.positionals()[0];
  auto reader = disk::OpenDiskPath(file);
  if (!reader.ok()) return ReportError(reader.status(), ctx);
  auto info = (*reader)->Info();
  if (!info.ok()) return ReportError(info.status(), ctx);
  PrintResult(InfoJson(file, *info), ctx);
  return 0;
}

int RunCheck(const ParsedArgs& args, CommandContext& ctx) {
  const std::string& file = args.positionals()[0];
  Json o = Json::MakeObject();
  o.Set("file", Json::String(file));
  Json errors = Json::MakeArray();
  Json warnings = Json::MakeArray();
  auto reader = disk::OpenDiskPath(file);
  if (!reader.ok()) {
    // A file whose metadata does not validate is a finding, not a crash of
    // the check: report it like any other inconsistency.
    StatusCode c = reader.status().code();
    if (c != StatusCode::kDataLoss && c != StatusCode::kInvalidArgument) {
      return ReportError(reader.status(), ctx);
    }
    errors.Append(Json::String(reader.status().message()));
  } else {
    o.Set("format", Json::String(std::string(disk::DiskFormatName((*reader)->format()))));
    auto result = (*reader)->Check();
    if (!result.ok()) return ReportError(result.status(), ctx);
    for (const std::string& e : result->errors) errors.Append(Json::String(e));
    for (const std::string& w : result->warnings) warnings.Append(Json::String(w));
  }
  const size_t n = errors.array_items().size();
  o.Set("consistent", Json::Bool(n == 0));
  o.Set("errors", std::move(errors));
  o.Set("warnings", std::move(warnings));
  PrintResult(o, ctx);
  if (n == 0) return 0;
  return ReportError(InvalidArgumentError(file + " is inconsistent: " + std::to_string(n) +
                                          (n == 1 ? " error" : " errors")),
                     ctx);
}

OptionSpec Option(std::string name, char short_name, std::string value_name, std::string help,
                  bool required = false) {
  OptionSpec o;
  o.name = std::move(name);
  o.short_name = short_name;
  o.value_name = std::move(value_name);
  o.help = std::move(help);
  o.required = required;
  return o;
}

}  // namespace

void RegisterDiskCommands(CommandRegistry& registry) {
  registry.AddGroup("disk", "Convert, inspect and check disk images (raw, VHD, qcow2).");
  registry.Add(CommandSpec{
      .path = "disk convert",
      .summary = "Convert a disk image to raw, VHD (fixed or dynamic) or qcow2.",
      .description =
          "Reads IN (raw, VHD fixed or dynamic, or qcow2; the format is detected) and writes\n"
          "OUT in the format given by --format. Holes and all-zero blocks are skipped, so\n"
          "empty space costs neither time nor room. OUT is written beside its final name and\n"
          "renamed into place only when complete.\n"
          "\n"
          "--azure enforces Azure's rules for an uploaded disk: a fixed VHD whose virtual size\n"
          "is a whole number of MiB. A disk of another size is refused unless --round-up is\n"
          "also given, which pads it with zeros to the next MiB.\n"
          "\n"
          "Prints the new image's details as `disk info` does, plus the elapsed seconds. On a\n"
          "terminal, conversions longer than a second show progress on stderr.",
      .args_usage = "IN OUT",
      .min_positionals = 2,
      .max_positionals = 2,
      .options =
          {
              Option("format", 'f', "FORMAT",
                     "Output format: raw, vhd (fixed), vhd-dynamic or qcow2.", true),
              Option("compress", 'c', "", "qcow2 only: deflate-compress data clusters."),
              Option("azure", 0, "", "Enforce Azure's VHD rules (fixed, whole MiB)."),
              Option("round-up", 0, "",
                     "With --azure: pad the size up to a whole MiB instead of failing."),
              Option("cluster-size", 0, "BYTES", "qcow2 cluster size (default 65536)."),
          },
      .examples = {"imagesmith disk convert disk.raw disk.qcow2 --format qcow2 --compress",
                   "imagesmith disk convert disk.raw disk.vhd --format vhd --azure --round-up"},
      .run = RunConvert,
  });
  registry.Add(CommandSpec{
      .path = "disk info",
      .summary = "Show a disk image's format, virtual size and space used.",
      .description =
          "Prints {file, format, subformat (VHD), virtualSize, fileSize, actualSize (bytes\n"
          "used on the host filesystem), dataBytes (virtual bytes the image stores),\n"
          "clusterSize (qcow2) or blockSize (dynamic VHD), compressed (qcow2), creator and\n"
          "azureCompatible (VHD)}.",
      .args_usage = "FILE",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {},
      .examples = {"imagesmith disk info disk.vhd", "imagesmith disk info -o table disk.qcow2"},
      .run = RunInfo,
  });
  registry.Add(CommandSpec{
      .path = "disk check",
      .summary = "Check a disk image's metadata for consistency.",
      .description =
          "Validates every header and table of FILE. For qcow2 it recomputes each cluster's\n"
          "reference count and compares it with the stored one, and reports tables or data\n"
          "that overlap. Prints {file, format, consistent, errors, warnings}.\n"
          "\n"
          "Exit status: 0 when consistent (warnings allowed), 1 when errors were found.",
      .args_usage = "FILE",
      .min_positionals = 1,
      .max_positionals = 1,
      .options = {},
      .examples = {"imagesmith disk check disk.qcow2"},
      .run = RunCheck,
  });
}

}  // namespace imagesmith::cli
