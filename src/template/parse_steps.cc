// customize[] and validate.inVMValidations[]: Shell, PowerShell, File,
// WindowsRestart and WindowsUpdate steps.
#include <algorithm>
#include <regex>

#include "base/strings.h"
#include "template/reader.h"

namespace imagesmith::tmpl {

const char* StepTypeName(StepType t) {
  switch (t) {
    case StepType::kShell:
      return "Shell";
    case StepType::kPowerShell:
      return "PowerShell";
    case StepType::kFile:
      return "File";
    case StepType::kWindowsRestart:
      return "WindowsRestart";
    case StepType::kWindowsUpdate:
      return "WindowsUpdate";
  }
  return "?";
}

bool IsWindowsOnly(StepType t) {
  return t == StepType::kPowerShell || t == StepType::kWindowsRestart ||
         t == StepType::kWindowsUpdate;
}

namespace internal {
namespace {

#define SHELL_PROPS "type", "name", "inline", "scriptUri", "sha256Checksum"
#define POWERSHELL_PROPS                                                                 \
  "type", "name", "inline", "scriptUri", "sha256Checksum", "runElevated", "runAsSystem", \
      "validExitCodes"
#define FILE_PROPS "type", "name", "sourceUri", "destination", "sha256Checksum"
#define RESTART_PROPS "type", "name", "restartCommand", "restartCheckCommand", "restartTimeout"
#define UPDATE_PROPS "type", "name", "searchCriteria", "filters", "updateLimit"

void AddStepSiblings(ObjectView& v, StepType self) {
  if (self != StepType::kShell) v.AddSibling("Shell steps", {SHELL_PROPS});
  if (self != StepType::kPowerShell) v.AddSibling("PowerShell steps", {POWERSHELL_PROPS});
  if (self != StepType::kFile) v.AddSibling("File steps", {FILE_PROPS});
  if (self != StepType::kWindowsRestart) v.AddSibling("WindowsRestart steps", {RESTART_PROPS});
  if (self != StepType::kWindowsUpdate) v.AddSibling("WindowsUpdate steps", {UPDATE_PROPS});
}

// scriptUri / sourceUri: a path relative to the template, an absolute path,
// or a file://, http:// or https:// URL.
bool CheckUri(ObjectView& v, std::string_view name, const std::string& uri) {
  const Json* value = v.Get(name);
  size_t colon = uri.find("://");
  if (colon != std::string::npos) {
    std::string scheme = AsciiToLower(uri.substr(0, colon));
    if (scheme != "http" && scheme != "https" && scheme != "file") {
      v.ctx().Error(value->pos, v.PathOf(name),
                    "unsupported URI scheme \"" + scheme +
                        "\"; expected https://, http://, file:// or a path relative to the "
                        "template");
      return false;
    }
    if (uri.size() == colon + 3) {
      v.ctx().Error(value->pos, v.PathOf(name), "the URI has nothing after \"" + scheme + "://\"");
      return false;
    }
  }
  if (uri.find('\0') != std::string::npos || uri.find('\n') != std::string::npos) {
    v.ctx().Error(value->pos, v.PathOf(name), "the URI contains a control character");
    return false;
  }
  return true;
}

// Shell and PowerShell share the inline/scriptUri/sha256Checksum rules.
struct ScriptFields {
  std::vector<std::string> inline_commands;
  std::string script_uri;
  std::optional<Sha256Digest> sha256;
  bool ok = true;
};

ScriptFields ReadScript(ObjectView& v) {
  ScriptFields f;
  const Json* inl = v.Get("inline");
  const Json* uri = v.Get("scriptUri");
  int before = v.ctx().error_count();
  if (inl != nullptr && uri != nullptr) {
    v.ctx().Error(uri->pos, v.PathOf("scriptUri"),
                  "inline and scriptUri exclude each other; give the commands inline or the "
                  "script's URI, not both");
  } else if (inl == nullptr && uri == nullptr) {
    v.ctx().Error(v.pos(), v.path(),
                  "expected either inline (an array of commands) or scriptUri (the script's "
                  "URI)");
  }
  if (inl != nullptr) {
    if (auto cmds = ReadStringList(v, "inline", false, TextKind::kFreeText, false)) {
      f.inline_commands = std::move(*cmds);
    }
  }
  if (uri != nullptr) {
    if (auto u = ReadString(v, "scriptUri", false)) {
      if (CheckUri(v, "scriptUri", *u)) f.script_uri = *u;
    }
  }
  const Json* sum = v.Get("sha256Checksum");
  if (sum != nullptr) {
    f.sha256 = ReadSha256(v, "sha256Checksum");
    if (inl != nullptr && uri == nullptr && sum->is_string() && !sum->string_value().empty()) {
      v.ctx().Error(sum->pos, v.PathOf("sha256Checksum"),
                    "sha256Checksum verifies the file at scriptUri; with inline commands there "
                    "is no file to check, so remove it");
    }
  } else if (uri != nullptr && uri->is_string() &&
             (StartsWithIgnoreCase(uri->string_value(), "http://") ||
              StartsWithIgnoreCase(uri->string_value(), "https://"))) {
    v.ctx().Warning(uri->pos, v.PathOf("scriptUri"),
                    "no sha256Checksum: the downloaded script will run unverified; add its "
                    "SHA-256 (sha256sum FILE)");
  }
  f.ok = v.ctx().error_count() == before;
  return f;
}

// "5m", "2h", "1h30m", "90s": one or more number+unit pairs.
std::optional<std::chrono::seconds> ParseDuration(const std::string& s) {
  static const std::regex kDuration("^([0-9]{1,6}[smh])+$");
  if (!std::regex_match(s, kDuration)) return std::nullopt;
  int64_t total = 0;
  int64_t n = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      n = n * 10 + (c - '0');
    } else {
      total += n * (c == 's' ? 1 : c == 'm' ? 60 : 3600);
      n = 0;
    }
  }
  return std::chrono::seconds(total);
}

}  // namespace

std::optional<Step> ParseStep(Context& ctx, const Json& value, const std::string& path,
                              bool validator) {
  std::string what = validator ? "a validator" : "a customizer";
  static const std::vector<std::string> kCustomizerTypes = {"Shell", "PowerShell", "File",
                                                            "WindowsRestart", "WindowsUpdate"};
  static const std::vector<std::string> kValidatorTypes = {"Shell", "PowerShell", "File"};
  const auto& types = validator ? kValidatorTypes : kCustomizerTypes;

  ObjectView v(ctx, value, path, what, {"type"});
  if (!v.ok()) return std::nullopt;
  std::optional<size_t> type_index = ReadEnum(v, "type", true, types);
  if (!type_index) return std::nullopt;
  auto type = static_cast<StepType>(*type_index);

  Step step;
  step.pos = value.pos;
  int before = ctx.error_count();
  std::string kind = std::string(StepTypeName(type)) + (validator ? " validator" : " customizer");
  auto name_of = [&](ObjectView& view) {
    if (auto n = ReadString(view, "name", false, TextKind::kStructured, true)) step.name = *n;
  };
  switch (type) {
    case StepType::kShell: {
      v.SetSchema("a " + kind, {SHELL_PROPS});
      AddStepSiblings(v, type);
      name_of(v);
      ScriptFields f = ReadScript(v);
      step.spec = ShellStep{std::move(f.inline_commands), std::move(f.script_uri), f.sha256};
      v.Finish();
      break;
    }
    case StepType::kPowerShell: {
      v.SetSchema("a " + kind, {POWERSHELL_PROPS});
      AddStepSiblings(v, type);
      name_of(v);
      ScriptFields f = ReadScript(v);
      PowerShellStep ps{
          std::move(f.inline_commands), std::move(f.script_uri), f.sha256, false, false, {0}};
      ps.run_elevated = ReadBool(v, "runElevated", false).value_or(false);
      ps.run_as_system = ReadBool(v, "runAsSystem", false).value_or(false);
      if (ps.run_as_system && !ps.run_elevated) {
        ctx.Warning(v.Get("runAsSystem")->pos, v.PathOf("runAsSystem"),
                    "runAsSystem takes effect only together with runElevated: true");
      }
      ps.valid_exit_codes = {0};
      if (const Json* codes = v.Get("validExitCodes")) {
        std::string cpath = v.PathOf("validExitCodes");
        std::vector<Json> items;
        if (codes->is_array()) {
          items = codes->array_items();
        } else {
          items.push_back(*codes);  // the reference also writes a single code
        }
        ps.valid_exit_codes.clear();
        for (size_t i = 0; i < items.size(); ++i) {
          const Json& c = items[i];
          std::string ipath = codes->is_array() ? IndexPath(cpath, i) : cpath;
          if (CheckPlaceholder(ctx, c, ipath, TextKind::kStructured)) continue;
          std::optional<int64_t> n = c.AsInt64();
          if (!n && c.is_string() && IsAsciiDigits(c.string_value()) &&
              c.string_value().size() < 10) {
            n = std::stoll(c.string_value());
          }
          if (!n || *n < 0 || *n > 4294967295LL) {
            ctx.Error(c.pos, ipath, "expected an exit code (an integer from 0 to 4294967295)");
            continue;
          }
          ps.valid_exit_codes.push_back(*n);
        }
        if (items.empty()) {
          ctx.Error(codes->pos, cpath, "must not be an empty array; leave it out to accept 0");
        }
      }
      step.spec = std::move(ps);
      v.Finish();
      break;
    }
    case StepType::kFile: {
      v.SetSchema("a " + kind, {FILE_PROPS});
      AddStepSiblings(v, type);
      name_of(v);
      FileStep f;
      if (auto s = ReadString(v, "sourceUri", true)) {
        if (CheckUri(v, "sourceUri", *s)) f.source_uri = *s;
      }
      if (auto d = ReadString(v, "destination", true)) {
        bool windows_path = d->size() >= 3 && std::isalpha(static_cast<unsigned char>((*d)[0])) &&
                            (*d)[1] == ':' && ((*d)[2] == '\\' || (*d)[2] == '/');
        if ((*d)[0] != '/' && !windows_path) {
          ctx.Error(v.Get("destination")->pos, v.PathOf("destination"),
                    "expected an absolute path with the file name (e.g. /tmp/index.html), "
                    "found " +
                        QuoteForMessage(*d));
        } else if (d->back() == '/' || d->back() == '\\') {
          ctx.Error(v.Get("destination")->pos, v.PathOf("destination"),
                    "the destination must name the file, not only its folder");
        } else {
          f.destination = *d;
        }
      }
      f.sha256 = ReadSha256(v, "sha256Checksum");
      step.spec = std::move(f);
      v.Finish();
      break;
    }
    case StepType::kWindowsRestart: {
      v.SetSchema("a " + kind, {RESTART_PROPS});
      AddStepSiblings(v, type);
      name_of(v);
      WindowsRestartStep r;
      if (auto c = ReadString(v, "restartCommand", false, TextKind::kFreeText))
        r.restart_command = *c;
      if (auto c = ReadString(v, "restartCheckCommand", false, TextKind::kFreeText, true)) {
        r.restart_check_command = *c;
      }
      if (auto t = ReadString(v, "restartTimeout", false)) {
        std::string lower = AsciiToLower(*t);
        if (auto d = ParseDuration(lower)) {
          r.restart_timeout = *d;
          r.restart_timeout_text = lower;
        } else {
          ctx.Error(v.Get("restartTimeout")->pos, v.PathOf("restartTimeout"),
                    "expected a duration such as 5m or 2h (numbers each followed by s, m or h), "
                    "found " +
                        QuoteForMessage(*t));
        }
      }
      step.spec = std::move(r);
      v.Finish();
      break;
    }
    case StepType::kWindowsUpdate: {
      v.SetSchema("a " + kind, {UPDATE_PROPS});
      AddStepSiblings(v, type);
      name_of(v);
      WindowsUpdateStep u;
      if (auto s = ReadString(v, "searchCriteria", false, TextKind::kFreeText))
        u.search_criteria = *s;
      if (auto f = ReadStringList(v, "filters", false, TextKind::kFreeText, true)) {
        for (size_t i = 0; i < f->size(); ++i) {
          const std::string& filter = (*f)[i];
          if (!StartsWithIgnoreCase(filter, "include:") &&
              !StartsWithIgnoreCase(filter, "exclude:")) {
            const Json* fj = v.Get("filters");
            SourcePos p = fj->is_array() ? fj->array_items()[i].pos : fj->pos;
            // The specification puts no pattern on filters, and Azure passes
            // them to the Windows Update provisioner as they are.
            ctx.Warning(p, IndexPath(v.PathOf("filters"), i),
                        "filters usually start with include: or exclude: (e.g. "
                        "\"exclude:$_.Title -like '*Preview*'\"); " +
                            QuoteForMessage(filter) + " is passed on as written");
          }
        }
        u.filters = std::move(*f);
      }
      if (auto l = ReadInt(v, "updateLimit", false, 1, 100000)) u.update_limit = *l;
      step.spec = std::move(u);
      v.Finish();
      break;
    }
  }
  if (ctx.error_count() != before) return std::nullopt;
  return step;
}

}  // namespace internal
}  // namespace imagesmith::tmpl
