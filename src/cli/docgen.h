// Shell completion and man pages, generated from a CommandRegistry so that
// they always match the commands the binary has (doc/install.md).
//
// Completion is dynamic: the bash and zsh scripts call the binary back as
// `imagesmith __complete SHELL WORD...` and show what it prints, so a new
// command or option completes without touching the scripts. Man pages are
// written at build time by `imagesmith __man DIR` (cmake) and installed.
// The "internal" group (commands imagesmith runs itself) is left out of both.
//
// Everything here only reads the registry; safe from several threads.
#pragma once

#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "cli/command.h"

namespace imagesmith::cli {

// One completion candidate: the word, and a one-line description (may be
// empty) that zsh shows beside it.
struct Completion {
  std::string word;
  std::string help;
};

// Candidates for the last of `words` (the words after "imagesmith"; the last
// one is the word being completed and may be empty). Subcommands at group
// level; at a command, its options (and the global ones) not given yet, or
// the choices of the option whose value is being completed. Empty when the
// word is a free value (a file, a name): the scripts then complete files.
std::vector<Completion> Complete(const CommandRegistry& registry,
                                 const std::vector<std::string>& words);

// The scripts to source or install: bash (bash-completion's completions
// directory) and zsh (a file named _imagesmith on $fpath).
std::string BashCompletionScript();
std::string ZshCompletionScript();

// The man pages, as (file name, roff text): imagesmith.1, and one page per
// top-level group or command ("imagesmith-sig.1" covers every command under
// "sig", "imagesmith-build.1" the build command). `version` goes in the
// header.
std::vector<std::pair<std::string, std::string>> ManPages(const CommandRegistry& registry,
                                                          const std::string& version);

// Writes ManPages into `dir` (created if missing). Fails with the file and
// the errno text.
Status WriteManPages(Env& env, const CommandRegistry& registry, const std::string& version,
                     const std::string& dir);

// Handles the hidden commands: `__complete SHELL WORD...` prints the
// candidates for SHELL (bash: one word a line; zsh: "word:help" lines), and
// `__man DIR` writes the man pages. Returns the exit code, or -1 when
// `args` is not one of them.
int RunHiddenCommand(const CommandRegistry& registry, const std::vector<std::string>& args,
                     CommandContext& ctx, const std::string& version);

// Registers `completion bash|zsh`, which print the scripts.
void RegisterCompletionCommands(CommandRegistry& registry);

}  // namespace imagesmith::cli
