#include "cli/command.h"

#include <algorithm>
#include <iostream>
#include <set>

#include "base/strings.h"

namespace imagesmith::cli {

namespace {

const std::vector<OptionSpec>& kGlobalOptions = CommandRegistry::GlobalOptions();

bool ParseFormat(const std::string& s, OutputFormat& out) {
  if (s == "json") {
    out = OutputFormat::kJson;
  } else if (s == "jsonc") {
    out = OutputFormat::kJsonCompact;
  } else if (s == "table") {
    out = OutputFormat::kTable;
  } else if (s == "tsv") {
    out = OutputFormat::kTsv;
  } else if (s == "none") {
    out = OutputFormat::kNone;
  } else {
    return false;
  }
  return true;
}

int UsageError(CommandContext& ctx, const std::string& message, const std::string& help_cmd) {
  *ctx.err << "ERROR: " << message << "\n";
  *ctx.err << "Run 'imagesmith " << help_cmd << (help_cmd.empty() ? "" : " ")
           << "--help' to see the usage.\n";
  return 2;
}

}  // namespace

std::string ParsedArgs::Get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return fallback;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::GetAll(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

const std::vector<OptionSpec>& CommandRegistry::GlobalOptions() {
  static const std::vector<OptionSpec>* options = new std::vector<OptionSpec>{
      {"output",
       'o',
       "FORMAT",
       "Output format: json (default), jsonc, table, tsv, none.",
       false,
       false,
       {"json", "jsonc", "table", "tsv", "none"}},
      {"help", 'h', "", "Show this help and exit."},
      {"verbose", 0, "", "Show more detail, including progress for long work."},
  };
  return *options;
}

void CommandRegistry::Add(CommandSpec spec) { commands_.push_back(std::move(spec)); }

void CommandRegistry::AddGroup(const std::string& path, const std::string& summary) {
  groups_[path] = summary;
}

void CommandRegistry::PrintGroupHelp(const std::string& group, std::ostream& os) const {
  os << "imagesmith: build, validate, version and roll out VM images on your own machines.\n\n";
  os << "Usage: imagesmith " << (group.empty() ? "" : group + " ") << "<command> [options]\n\n";
  if (!group.empty() && groups_.count(group)) os << groups_.at(group) << "\n\n";
  // Direct children of `group`: subgroups and commands.
  std::map<std::string, std::string> children;
  std::string prefix = group.empty() ? "" : group + " ";
  for (const auto& [path, summary] : groups_) {
    if (StartsWith(path, prefix) && path.size() > prefix.size() &&
        path.find(' ', prefix.size()) == std::string::npos) {
      children[path.substr(prefix.size())] = summary;
    }
  }
  for (const CommandSpec& c : commands_) {
    if (StartsWith(c.path, prefix) && c.path.find(' ', prefix.size()) == std::string::npos) {
      children[c.path.substr(prefix.size())] = c.summary;
    }
  }
  os << "Commands:\n";
  size_t width = 0;
  for (const auto& [name, _] : children) width = std::max(width, name.size());
  for (const auto& [name, summary] : children) {
    os << "  " << name << std::string(width - name.size() + 3, ' ') << summary << "\n";
  }
  os << "\nGlobal options:\n";
  for (const OptionSpec& o : kGlobalOptions) {
    std::string flag = (o.short_name ? std::string("-") + o.short_name + ", " : "    ") + "--" +
                       o.name + (o.value_name.empty() ? "" : " " + o.value_name);
    os << "  " << flag << std::string(flag.size() < 24 ? 24 - flag.size() : 1, ' ') << o.help
       << "\n";
  }
  if (group.empty()) os << "      --version           Show the version and exit.\n";
  os << "\nRun 'imagesmith " << prefix << "<command> --help' for more.\n";
}

void CommandRegistry::PrintCommandHelp(const CommandSpec& spec, std::ostream& os) const {
  os << "Usage: imagesmith " << spec.path;
  if (!spec.options.empty()) os << " [options]";
  if (!spec.args_usage.empty()) os << " " << spec.args_usage;
  os << "\n\n" << spec.summary << "\n";
  if (!spec.description.empty()) os << "\n" << spec.description << "\n";
  auto print_opts = [&](const char* title, const auto& opts) {
    os << "\n" << title << ":\n";
    for (const OptionSpec& o : opts) {
      std::string flag = (o.short_name ? std::string("-") + o.short_name + ", " : "    ") + "--" +
                         o.name + (o.value_name.empty() ? "" : " " + o.value_name);
      os << "  " << flag << std::string(flag.size() < 30 ? 30 - flag.size() : 1, ' ') << o.help
         << (o.required ? " (required)" : "") << "\n";
    }
  };
  if (!spec.options.empty()) print_opts("Options", spec.options);
  print_opts("Global options", kGlobalOptions);
  if (!spec.examples.empty()) {
    os << "\nExamples:\n";
    for (const std::string& e : spec.examples) os << "  " << e << "\n";
  }
}

int CommandRegistry::Dispatch(const std::vector<std::string>& args, CommandContext& ctx) const {
  // Find the longest command path that the leading non-option words spell.
  std::vector<std::string> words;
  for (const std::string& a : args) {
    if (!a.empty() && a[0] == '-') break;
    words.push_back(a);
  }
  const CommandSpec* spec = nullptr;
  size_t used = 0;
  for (size_t n = words.size(); n > 0 && spec == nullptr; --n) {
    std::vector<std::string> head(words.begin(), words.begin() + static_cast<long>(n));
    std::string path = Join(head, " ");
    for (const CommandSpec& c : commands_) {
      if (c.path == path) {
        spec = &c;
        used = n;
        break;
      }
    }
  }
  bool wants_help = std::any_of(args.begin(), args.end(),
                                [](const std::string& a) { return a == "--help" || a == "-h"; });
  if (spec == nullptr) {
    // A group, or nothing at all.
    std::string group;
    size_t n = words.size();
    for (; n > 0; --n) {
      std::vector<std::string> head(words.begin(), words.begin() + static_cast<long>(n));
      if (groups_.count(Join(head, " "))) {
        group = Join(head, " ");
        break;
      }
    }
    if (n < words.size()) {
      std::vector<std::string> names;
      std::string prefix = group.empty() ? "" : group + " ";
      for (const CommandSpec& c : commands_) {
        if (StartsWith(c.path, prefix))
          names.push_back(Split(c.path.substr(prefix.size()), ' ')[0]);
      }
      for (const auto& [g, _] : groups_) {
        if (StartsWith(g, prefix)) names.push_back(Split(g.substr(prefix.size()), ' ')[0]);
      }
      std::string suggestion = ClosestMatch(words[n], names);
      std::string msg = "'" + words[n] + "' is not an imagesmith " +
                        (group.empty() ? "command" : "'" + group + "' command") + ".";
      if (!suggestion.empty()) msg += " Did you mean '" + prefix + suggestion + "'?";
      return UsageError(ctx, msg, group);
    }
    if (wants_help || group.empty()) {
      PrintGroupHelp(group, *ctx.out);
      return 0;
    }
    PrintGroupHelp(group, *ctx.err);
    return 2;
  }
  if (wants_help) {
    PrintCommandHelp(*spec, *ctx.out);
    return 0;
  }

  ParsedArgs parsed;
  std::vector<OptionSpec> all = spec->options;
  all.insert(all.end(), kGlobalOptions.begin(), kGlobalOptions.end());
  auto find_long = [&](const std::string& name) -> const OptionSpec* {
    for (const OptionSpec& o : all) {
      if (o.name == name) return &o;
    }
    return nullptr;
  };
  auto find_short = [&](char c) -> const OptionSpec* {
    for (const OptionSpec& o : all) {
      if (o.short_name == c) return &o;
    }
    return nullptr;
  };
  bool only_positionals = false;
  for (size_t i = used; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (only_positionals || a.empty() || a[0] != '-' || a == "-") {
      parsed.positionals_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    const OptionSpec* opt = nullptr;
    std::string inline_value;
    bool has_inline = false;
    if (StartsWith(a, "--")) {
      std::string name = a.substr(2);
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_inline = true;
      }
      opt = find_long(name);
      if (opt == nullptr) {
        std::vector<std::string> names;
        for (const OptionSpec& o : all) names.push_back(o.name);
        std::string s = ClosestMatch(name, names);
        return UsageError(ctx,
                          "unrecognized option '--" + name + "'." +
                              (s.empty() ? "" : " Did you mean '--" + s + "'?"),
                          spec->path);
      }
    } else {
      if (a.size() != 2) {
        return UsageError(ctx, "unrecognized option '" + a + "'.", spec->path);
      }
      opt = find_short(a[1]);
      if (opt == nullptr) return UsageError(ctx, "unrecognized option '" + a + "'.", spec->path);
    }
    auto& slot = parsed.values_[opt->name];
    if (opt->value_name.empty()) {
      if (has_inline) {
        return UsageError(ctx, "option '--" + opt->name + "' takes no value.", spec->path);
      }
      slot.push_back("true");
      continue;
    }
    if (has_inline) {
      slot.push_back(inline_value);
    } else {
      if (i + 1 >= args.size()) {
        return UsageError(ctx,
                          "option '--" + opt->name + "' needs a value (" + opt->value_name + ").",
                          spec->path);
      }
      slot.push_back(args[++i]);
      // A repeatable option takes every following word up to the next option.
      while (opt->repeatable && i + 1 < args.size() && !args[i + 1].empty() &&
             args[i + 1][0] != '-') {
        slot.push_back(args[++i]);
      }
    }
    if (!opt->repeatable && slot.size() > 1 && opt->name != "output") {
      return UsageError(ctx, "option '--" + opt->name + "' given more than once.", spec->path);
    }
  }
  for (const OptionSpec& o : spec->options) {
    if (o.required && !parsed.Has(o.name)) {
      return UsageError(ctx, "the following arguments are required: --" + o.name, spec->path);
    }
  }
  if (parsed.positionals_.size() < spec->min_positionals) {
    return UsageError(ctx, "missing argument: expected " + spec->args_usage + ".", spec->path);
  }
  if (parsed.positionals_.size() > spec->max_positionals) {
    return UsageError(ctx,
                      "unexpected argument '" + parsed.positionals_[spec->max_positionals] + "'.",
                      spec->path);
  }
  if (parsed.Has("output") && !ParseFormat(parsed.Get("output"), ctx.format)) {
    return UsageError(ctx,
                      "invalid output format '" + parsed.Get("output") +
                          "'; expected one of json, jsonc, table, tsv, none.",
                      spec->path);
  }
  ctx.verbose = parsed.Has("verbose");
  return spec->run(parsed, ctx);
}

int ReportError(const Status& status, CommandContext& ctx, const std::string& hint) {
  *ctx.err << "ERROR: " << status.message() << "\n";
  if (!hint.empty()) *ctx.err << hint << "\n";
  return ExitCodeFor(status.code());
}

StatusOr<Json> ParseTagArgs(const std::vector<std::string>& items) {
  Json tags = Json::MakeObject();
  for (const std::string& item : items) {
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    if (key.empty() || key.size() > 512 || key.find_first_of("<>%&\\?/") != std::string::npos) {
      return InvalidArgumentError("--tags: " + QuoteForMessage(item) +
                                  ": names are 1-512 characters without < > % & \\ ? /");
    }
    std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (value.size() > 256) {
      return InvalidArgumentError("--tags: " + QuoteForMessage(key) +
                                  ": values are at most 256 characters");
    }
    tags.Set(key, Json::String(value));
  }
  if (tags.object_items().size() > 50) {
    return InvalidArgumentError("--tags: at most 50 tags are allowed");
  }
  return tags;
}

}  // namespace imagesmith::cli
