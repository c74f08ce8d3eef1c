// Argument parsing shared by the gallery and managed image commands
// (sig_commands.cc, image_commands.cc): az's --target-regions syntax, booleans, and opening the
// data directory with its store.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/data.h"
#include "store/store.h"
#include "template/model.h"

namespace imagesmith::cli {

// --target-regions "eastus=2=standard_lrs westus2": each item
// REGION[=REPLICA_COUNT][=STORAGE_ACCOUNT_TYPE], items separated by spaces
// or given as separate words; a region without a count gets `default_count`.
// InvalidArgument names the item.
StatusOr<std::vector<tmpl::TargetRegion>> ParseTargetRegionArgs(
    const std::vector<std::string>& items, int64_t default_count);

// true/false/yes/no/1/0, any case; InvalidArgument naming `flag`.
StatusOr<bool> ParseBoolArg(const std::string& flag, const std::string& text);

// A positive integer for `flag`.
StatusOr<int64_t> ParseCountArg(const std::string& flag, const std::string& text);

// The data directory plus its store (<data dir>/store).
struct GalleryData {
  Data data;
  std::unique_ptr<store::Store> store;
};
StatusOr<GalleryData> OpenGalleryData(Env& env);

}  // namespace imagesmith::cli
