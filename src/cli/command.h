// The CLI's command framework: az-style nested commands ("sig image-version
// create"), long and short options, global options (-o/--output, --help,
// --version, --verbose), generated help, and the single place where a Status
// becomes an error message and an exit code.
//
// Each layer's commands live in their own file (template_commands.cc,
// disk_commands.cc, ...) and register CommandSpecs with a CommandRegistry.
// Not thread-safe; the CLI runs one command per process.
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/status.h"
#include "base/statusor.h"

namespace imagesmith::cli {

enum class OutputFormat { kJson, kJsonCompact, kTable, kTsv, kNone };

// Where a command writes and how. Borrowed by the command for its run.
struct CommandContext {
  Env* env = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  OutputFormat format = OutputFormat::kJson;
  bool verbose = false;
  bool stderr_is_tty = false;  // show progress only on a terminal
};

struct OptionSpec {
  std::string name;        // long name without dashes: "output"
  char short_name = 0;     // 'o', or 0
  std::string value_name;  // "FORMAT"; empty means a flag without a value
  std::string help;
  bool repeatable = false;  // may be given several times; values accumulate
  bool required = false;
  std::vector<std::string> choices{};  // the values it accepts, when they are a fixed set
};

class ParsedArgs {
 public:
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  // The last value given for `name`, or `fallback`.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  // Every value given for `name`, in order; a repeatable option also accepts
  // several values after one flag ("--regions a b c").
  std::vector<std::string> GetAll(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  friend class CommandRegistry;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positionals_;
};

struct CommandSpec {
  std::string path;         // words after "imagesmith": "disk convert"
  std::string summary;      // one line for listings
  std::string description;  // paragraphs for --help
  std::string args_usage;   // positional part of the usage line: "IN OUT"
  size_t min_positionals = 0;
  size_t max_positionals = 0;
  std::vector<OptionSpec> options;
  std::vector<std::string> examples;  // shown in --help
  // Returns the process exit code. Errors should go through ReportError.
  std::function<int(const ParsedArgs&, CommandContext&)> run;
};

class CommandRegistry {
 public:
  void Add(CommandSpec spec);
  // Describes a command group ("sig image-version") for help listings.
  void AddGroup(const std::string& path, const std::string& summary);

  // Parses argv (without the program name), handles global options and help,
  // and runs the matching command. Returns the exit code: usage errors are 2.
  int Dispatch(const std::vector<std::string>& args, CommandContext& ctx) const;

  // What the registry holds, for the generators of shell completion and man
  // pages (cli/docgen.h), so they follow the commands and never drift.
  const std::vector<CommandSpec>& commands() const { return commands_; }
  const std::map<std::string, std::string>& groups() const { return groups_; }  // path -> summary
  // Options every command takes (-o, -h, --verbose).
  static const std::vector<OptionSpec>& GlobalOptions();

 private:
  void PrintGroupHelp(const std::string& group, std::ostream& os) const;
  void PrintCommandHelp(const CommandSpec& spec, std::ostream& os) const;

  std::vector<CommandSpec> commands_;
  std::map<std::string, std::string> groups_;
};

// Prints `status` as "ERROR: <message>" (plus a hint when given) on stderr
// and returns the exit code for its code.
int ReportError(const Status& status, CommandContext& ctx, const std::string& hint = "");

// Prints a result in the selected output format: JSON (pretty, default),
// a table for people (-o table), tab-separated values (-o tsv) or nothing.
void PrintResult(const Json& result, CommandContext& ctx);

// Registration functions, one per command family.
void RegisterTemplateCommands(CommandRegistry& registry);
// --tags a=b c=d (az's syntax, for every command that takes tags): names
// 1-512 characters without < > % & \ ? /, values up to 256, at most 50
// tags; "a" alone is a tag with an empty value. InvalidArgument names --tags.
StatusOr<Json> ParseTagArgs(const std::vector<std::string>& items);

void RegisterAccountCommands(CommandRegistry& registry);
void RegisterGroupCommands(CommandRegistry& registry);
void RegisterDiskCommands(CommandRegistry& registry);           // cli/disk_commands.cc
void RegisterImageTemplateCommands(CommandRegistry& registry);  // cli/image_template_commands.cc
void RegisterImageBuilderCommands(CommandRegistry& registry);   // cli/image_builder_commands.cc
void RegisterOperationCommands(CommandRegistry& registry);      // cli/operation_commands.cc
void RegisterCatalogCommands(CommandRegistry& registry);        // cli/catalog_commands.cc
void RegisterCacheCommands(CommandRegistry& registry);          // cli/cache_commands.cc
void RegisterStoreCommands(CommandRegistry& registry);          // cli/store_commands.cc
void RegisterSigCommands(CommandRegistry& registry);            // cli/sig_commands.cc
void RegisterImageCommands(CommandRegistry& registry);          // cli/image_commands.cc
void RegisterExportCommands(CommandRegistry& registry);         // cli/export_commands.cc
void RegisterBackupCommands(CommandRegistry& registry);         // cli/backup_commands.cc
void RegisterAuthCommands(CommandRegistry& registry);           // cli/auth_commands.cc
void RegisterIdentityCommands(CommandRegistry& registry);       // cli/identity_commands.cc
void RegisterServeCommands(CommandRegistry& registry);          // cli/serve_commands.cc
void RegisterSfCommands(CommandRegistry& registry);             // cli/sf_commands.cc
void RegisterCycleCloudCommands(CommandRegistry& registry);     // cli/cyclecloud_commands.cc
void RegisterBatchCommands(CommandRegistry& registry);          // cli/batch_commands.cc

}  // namespace imagesmith::cli
