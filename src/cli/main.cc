// imagesmith: the command-line entry point. It wires the real Env and the
// command families together and leaves everything else to the layers.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/docgen.h"
#include "cli/git_commit.h"
#include "cli/version.h"

int main(int argc, char** argv) {
  using namespace imagesmith::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--version") {
    std::cout << "imagesmith " << kVersion << " (git commit " << kGitCommit << ")\n";
    return 0;
  }
  CommandRegistry registry;
  RegisterAccountCommands(registry);
  RegisterGroupCommands(registry);
  RegisterTemplateCommands(registry);
#ifdef IMAGESMITH_HAVE_STORE
  RegisterStoreCommands(registry);
#endif
#ifdef IMAGESMITH_HAVE_BACKUP
  RegisterBackupCommands(registry);
#endif
#ifdef IMAGESMITH_HAVE_DISK
  RegisterDiskCommands(registry);
#endif
#ifdef IMAGESMITH_HAVE_CATALOG
  RegisterCatalogCommands(registry);
#endif
#ifdef IMAGESMITH_HAVE_BUILD
  RegisterImageTemplateCommands(registry);
  RegisterOperationCommands(registry);
  RegisterCacheCommands(registry);
#endif
#ifdef IMAGESMITH_HAVE_GALLERY
  RegisterSigCommands(registry);
  RegisterImageCommands(registry);
  RegisterSfCommands(registry);
#endif
#if defined(IMAGESMITH_HAVE_BUILD) && defined(IMAGESMITH_HAVE_GALLERY)
  RegisterExportCommands(registry);        // after the image and sig groups exist
  RegisterImageBuilderCommands(registry);  // az image builder, under the image group
#endif
#ifdef IMAGESMITH_HAVE_BATCH
  RegisterBatchCommands(registry);
#endif
  RegisterAuthCommands(registry);  // after the account group exists
  RegisterIdentityCommands(registry);
  RegisterCycleCloudCommands(registry);
#ifdef IMAGESMITH_HAVE_SERVER
  RegisterServeCommands(registry);
#endif
  RegisterCompletionCommands(registry);
  CommandContext ctx;
  ctx.env = imagesmith::Env::Default();
  ctx.out = &std::cout;
  ctx.err = &std::cerr;
  ctx.stderr_is_tty = ::isatty(STDERR_FILENO) == 1;
  if (int code = RunHiddenCommand(registry, args, ctx, kVersion); code >= 0) return code;
  return registry.Dispatch(args, ctx);
}
