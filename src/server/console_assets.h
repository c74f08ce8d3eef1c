// The web console's files (console/, doc/console.md), built by esbuild at
// build time and embedded in the binary by embed_console.cmake, so
// `imagesmith serve` needs nothing beside itself and fetches nothing at run
// time. Each file is embedded as built and gzip-compressed.
//
// Thread-safe: read-only data.
#pragma once

#include <string_view>

namespace imagesmith::server {

struct ConsoleAsset {
  std::string_view name;          // "index.html", "app.js", "app.css"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view data;          // the file
  std::string_view gzip;          // the same, gzip-compressed
};

// The asset named `name`; nullptr when there is none.
const ConsoleAsset* FindConsoleAsset(std::string_view name);

}  // namespace imagesmith::server
