#include "cyclecloud/template_file.h"

#include <cctype>

#include "base/strings.h"

namespace imagesmith::cyclecloud {

const Attribute* Section::Find(std::string_view key) const {
  const Attribute* found = nullptr;
  for (const Attribute& a : attributes) {
    if (EqualsIgnoreCase(a.key, key)) found = &a;
  }
  return found;
}

const std::vector<std::string>& SectionTypes() {
  static const std::vector<std::string> types = {
      "cluster",        "environment",   "noderef", "parameters",        "parameter",
      "node",           "nodearray",     "volume",  "network-interface", "cluster-init",
      "input-endpoint", "configuration", "list"};
  return types;
}

namespace {

// Which section types may hold a section of `type` ("" = top level).
bool ParentAllowed(std::string_view type, std::string_view parent) {
  if (type == "cluster" || type == "environment" || type == "noderef") return parent.empty();
  if (type == "parameters") return parent.empty() || parent == "parameters" || parent == "cluster";
  if (type == "parameter") return parent == "parameters" || parent == "cluster";
  if (type == "node" || type == "nodearray") return parent == "cluster";
  if (type == "configuration") {
    return parent == "node" || parent == "nodearray" || parent == "cluster";
  }
  if (type == "volume" || type == "network-interface" || type == "cluster-init" ||
      type == "input-endpoint") {
    return parent == "node" || parent == "nodearray";
  }
  if (type == "list") return parent == "parameter";
  return false;
}

class FileParser {
 public:
  FileParser(std::string_view text, std::string path) : text_(text), path_(std::move(path)) {}

  StatusOr<TemplateFile> Parse() {
    TemplateFile file;
    file.path = path_;
    std::vector<Section*> stack;  // stack[i] is the open section of rank i+1
    if (text_.starts_with("\xEF\xBB\xBF")) Skip(3);
    while (pos_ < text_.size()) {
      SkipBlanks();
      if (pos_ >= text_.size()) break;
      char c = text_[pos_];
      if (c == '\n' || c == '\r') {
        NewLine();
        continue;
      }
      if (c == '#') {
        SkipToEol();
        continue;
      }
      if (c == '[') {
        Location at = Here();
        ASSIGN_OR_RETURN(Section header, ParseHeader());
        const Section* parent =
            header.rank >= 2 && static_cast<int>(stack.size()) >= header.rank - 1
                ? stack[static_cast<size_t>(header.rank - 2)]
                : nullptr;
        if (header.rank >= 2 && parent == nullptr) {
          return ErrorAt(at, "section [" + header.type + "] of rank " +
                                 std::to_string(header.rank) + " is not inside a section of rank " +
                                 std::to_string(header.rank - 1));
        }
        std::string parent_type = parent ? parent->type : "";
        if (!ParentAllowed(header.type, parent_type)) {
          return ErrorAt(at, "a [" + header.type + "] section cannot be " +
                                 (parent ? "inside a [" + parent_type + "] section"
                                         : std::string("at rank 1")) +
                                 " (rank " + std::to_string(header.rank) + ")");
        }
        stack.resize(static_cast<size_t>(header.rank - 1));
        std::vector<Section>& siblings = parent ? stack.back()->children : file.sections;
        siblings.push_back(std::move(header));
        stack.push_back(&siblings.back());
        continue;
      }
      if (stack.empty()) {
        return ErrorAt(Here(), "an attribute must be inside a section ([cluster NAME], ...)");
      }
      ASSIGN_OR_RETURN(Attribute attr, ParseAttribute());
      stack.back()->attributes.push_back(std::move(attr));
    }
    return file;
  }

 private:
  Location Here() const { return Location{path_, line_, static_cast<int>(pos_ - line_start_) + 1}; }

  void Skip(size_t n) { pos_ += n; }
  void SkipBlanks() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  void NewLine() {
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
    line_start_ = pos_;
  }
  void SkipToEol() {
    while (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
  }
  bool AtEol() const { return pos_ >= text_.size() || text_[pos_] == '\n' || text_[pos_] == '\r'; }

  // After a header or a value: only blanks or a comment may follow.
  Status ExpectLineEnd(const char* after) {
    SkipBlanks();
    if (AtEol()) return Status::Ok();
    if (text_[pos_] == '#') {
      SkipToEol();
      return Status::Ok();
    }
    return ErrorAt(Here(), std::string("unexpected text after ") + after);
  }

  StatusOr<Section> ParseHeader() {
    Section s;
    s.at = Here();
    int open = 0;
    while (pos_ < text_.size() && text_[pos_] == '[') {
      ++open;
      ++pos_;
    }
    size_t content_start = pos_;
    Location content_at = Here();
    while (!AtEol() && text_[pos_] != ']') ++pos_;
    if (AtEol()) return ErrorAt(s.at, "section header has no closing ']'");
    std::string_view content = TrimWhitespace(text_.substr(content_start, pos_ - content_start));
    int close = 0;
    Location close_at = Here();
    while (pos_ < text_.size() && text_[pos_] == ']') {
      ++close;
      ++pos_;
    }
    if (close != open) {
      return ErrorAt(close_at, "section header opens with " + std::to_string(open) +
                                   " '[' but closes with " + std::to_string(close) + " ']'");
    }
    if (content.empty()) return ErrorAt(content_at, "section header has no type");
    size_t space = content.find_first_of(" \t");
    std::string type = AsciiToLower(content.substr(0, space));
    if (space != std::string_view::npos) {
      s.name = std::string(TrimWhitespace(content.substr(space)));
    }
    bool known = false;
    for (const std::string& t : SectionTypes()) known = known || t == type;
    if (!known) {
      std::string near = ClosestMatch(type, SectionTypes());
      return ErrorAt(content_at, "unknown section type '" + type + "'" +
                                     (near.empty() ? "" : "; did you mean '" + near + "'?"));
    }
    s.type = std::move(type);
    s.rank = open;
    RETURN_IF_ERROR(ExpectLineEnd("the section header"));
    return s;
  }

  StatusOr<Attribute> ParseAttribute() {
    Attribute a;
    a.key_at = Here();
    size_t key_start = pos_;
    while (!AtEol() && text_[pos_] != '=' &&
           !(text_[pos_] == ':' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '=')) {
      ++pos_;
    }
    if (AtEol()) {
      return ErrorAt(a.key_at, "expected 'Key = value', 'Key := expression' or a [section] header");
    }
    std::string_view key = TrimWhitespace(text_.substr(key_start, pos_ - key_start));
    if (key.empty()) return ErrorAt(a.key_at, "attribute has no key before '='");
    for (size_t i = 0; i < key.size(); ++i) {
      char c = key[i];
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
            c == ':')) {
        Location at = a.key_at;
        at.column += static_cast<int>(i);
        return ErrorAt(at, "bad character '" + std::string(1, c) + "' in key '" + std::string(key) +
                               "' (keys are letters, digits, '_', '-', ':' and '.')");
      }
    }
    a.key = std::string(key);
    if (text_[pos_] == ':') {
      a.expression = true;
      pos_ += 2;
    } else {
      pos_ += 1;
    }
    SkipBlanks();
    // `Key = =EXPR` is the older spelling of `Key := EXPR`
    // (cyclecloud-slurm: `DefaultValue = =undefined`).
    if (!a.expression && pos_ < text_.size() && text_[pos_] == '=') {
      a.expression = true;
      ++pos_;
      SkipBlanks();
    }
    a.value_at = Here();
    if (text_.substr(pos_).starts_with("'''") || text_.substr(pos_).starts_with("\"\"\"")) {
      std::string delimiter(text_.substr(pos_, 3));
      a.triple_quoted = true;
      pos_ += 3;
      a.value_at = Here();
      size_t start = pos_;
      size_t end = text_.find(delimiter, pos_);
      if (end == std::string_view::npos) {
        return ErrorAt(a.key_at, delimiter + " value of '" + a.key + "' is never closed");
      }
      while (pos_ < end) {
        if (text_[pos_] == '\n' || text_[pos_] == '\r') {
          NewLine();
        } else {
          ++pos_;
        }
      }
      a.raw = std::string(text_.substr(start, end - start));
      pos_ = end + 3;
      RETURN_IF_ERROR(ExpectLineEnd("the closing quotes"));
      return a;
    }
    // Scan to the end of the value: quotes and ${...} may hide '#' and
    // line ends.
    size_t start = pos_;
    size_t end = pos_;
    int depth = 0;  // inside ${...} (or, for :=, any bracket)
    char quote = 0;
    Location open_at = Here();
    while (true) {
      if (pos_ >= text_.size()) {
        if (quote) return ErrorAt(open_at, "string in value of '" + a.key + "' is never closed");
        if (depth > 0) return ErrorAt(open_at, "'${' in value of '" + a.key + "' is never closed");
        end = pos_;
        break;
      }
      char c = text_[pos_];
      if (c == '\n' || c == '\r') {
        if (quote == 0 && depth == 0) {
          end = pos_;
          break;
        }
        NewLine();
        continue;
      }
      if (quote) {
        if (c == '\\' && pos_ + 1 < text_.size() && text_[pos_ + 1] != '\n') {
          pos_ += 2;
          continue;
        }
        if (c == quote) quote = 0;
        ++pos_;
        continue;
      }
      bool in_code = a.expression || depth > 0;
      if (c == '"' && (in_code || pos_ == start)) {
        quote = c;
        open_at = Here();
        ++pos_;
        continue;
      }
      if (c == '$' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '{') {
        if (depth == 0) open_at = Here();
        depth++;
        pos_ += 2;
        continue;
      }
      if (depth > 0 && c == '{') ++depth;
      if (depth > 0 && c == '}') --depth;
      if (c == '#' && depth == 0 &&
          (pos_ == start || text_[pos_ - 1] == ' ' || text_[pos_ - 1] == '\t')) {
        end = pos_;
        SkipToEol();
        break;
      }
      ++pos_;
    }
    std::string_view raw = text_.substr(start, end - start);
    while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t')) raw.remove_suffix(1);
    a.raw = std::string(raw);
    return a;
  }

  std::string_view text_;
  std::string path_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
};

}  // namespace

StatusOr<TemplateFile> ParseTemplateFile(std::string_view text, std::string path) {
  return FileParser(text, std::move(path)).Parse();
}

}  // namespace imagesmith::cyclecloud
