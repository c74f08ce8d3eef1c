// imagesmith serve: the REST API (doc/server.md). A front end like the other
// commands: it opens the api layer, starts the HTTP server on it, and waits
// for SIGTERM or SIGINT.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
#include "api/download.h"
#endif
#include "api/local.h"
#include "api/operations.h"
#if IMAGESMITH_HAVE_BATCH
#include "api/batch_pool_watch.h"
#endif
#include "api/worker_presence.h"
#include "base/strings.h"
#include "cli/command.h"
#include "server/access_log.h"
#include "server/handler.h"
#include "server/identity.h"
#include "server/operation_metrics.h"
#include "server/server.h"
#include "server/services_pool.h"
#include "server/store_metrics.h"

namespace imagesmith::cli {
namespace {

StatusOr<int> IntFlag(const ParsedArgs& args, const std::string& name, int fallback, int min,
                      int max) {
  if (!args.Has(name)) return fallback;
  std::string v = args.Get(name);
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || n < min || n > max) {
    return InvalidArgumentError("--" + name + ": '" + v + "' is not a number from " +
                                std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<int>(n);
}

int RunServe(const ParsedArgs& args, CommandContext& ctx) {
  server::ServerOptions options;
  options.listen = args.Get("listen", "127.0.0.1:8443");
  options.tls_cert_file = args.Get("tls-cert");
  options.tls_key_file = args.Get("tls-key");
  auto threads = IntFlag(args, "threads", 4, 1, 256);
  if (!threads.ok()) return ReportError(threads.status(), ctx);
  options.threads = *threads;
  auto body_mib = IntFlag(args, "max-body-mib", 4, 1, 1024);
  if (!body_mib.ok()) return ReportError(body_mib.status(), ctx);
  options.limits.max_body_bytes = static_cast<size_t>(*body_mib) * 1024 * 1024;
  auto request_timeout = IntFlag(args, "request-timeout", 30, 1, 3600);
  if (!request_timeout.ok()) return ReportError(request_timeout.status(), ctx);
  options.request_timeout_ms = *request_timeout * 1000;
  auto workers = IntFlag(args, "workers", 1, 0, 64);
  if (!workers.ok()) return ReportError(workers.status(), ctx);
  auto shutdown_timeout = IntFlag(args, "shutdown-timeout", 30, 0, 3600);
  if (!shutdown_timeout.ok()) return ReportError(shutdown_timeout.status(), ctx);
  auto idle_timeout = IntFlag(args, "idle-timeout", 60, 1, 86400);
  if (!idle_timeout.ok()) return ReportError(idle_timeout.status(), ctx);
  options.idle_timeout_ms = *idle_timeout * 1000;

  int log_fd = STDERR_FILENO;
  std::string log_path = args.Get("access-log", "-");
  if (log_path == "off") {
    log_fd = -1;
  } else if (log_path != "-") {
    log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0) return ReportError(ErrnoError("--access-log " + log_path, errno), ctx);
  }

  auto local = api::OpenLocal(*ctx.env);
  if (!local.ok()) return ReportError(local.status(), ctx);

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only sigwait below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  api::Operations& operations = *(*local)->operations;
  server::Metrics metrics;
  metrics.AddCollector(server::StoreCollector((*local)->services.data_dir));
  metrics.AddCollector(server::OperationsCollector(operations));
  server::AccessLog access_log(log_fd);
  server::HandlerOptions handler_options;
  handler_options.verify_token = server::MakeTokenVerifier(**local);
  handler_options.issue_token = server::MakeTokenIssuer(**local);
  handler_options.openapi_json = server::kOpenApiJson;
  handler_options.serve_console = true;
  handler_options.operation_status = [&operations](const std::string& subscription,
                                                   const std::string& id) -> StatusOr<Json> {
    ASSIGN_OR_RETURN(api::Operation op, operations.Get(id));
    if (AsciiToLower(op.target.subscription()) != AsciiToLower(subscription)) {
      return NotFoundError("no operation '" + id + "' in subscription " + subscription);
    }
    return op.ToJson();
  };
#ifdef IMAGESMITH_HAVE_GALLERY_PUBLISH
  handler_options.download =
      [](api::Services& services, const api::Caller& caller, const ResourceId& id,
         const std::map<std::string, std::string>& params) -> StatusOr<server::DownloadTarget> {
    ASSIGN_OR_RETURN(api::DownloadFile f, api::PrepareDownload(services, caller, id, params));
    return server::DownloadTarget{f.path, f.file_name};
  };
#endif
  // One database connection per server thread (server/services_pool.h).
  std::vector<std::unique_ptr<meta::MetaStore>> stores;
  for (int i = 0; i < options.threads; ++i) {
    auto store = meta::OpenSqliteMetaStore(*ctx.env, (*local)->services.data_dir + "/meta.db");
    if (!store.ok()) return ReportError(store.status(), ctx);
    stores.push_back(std::move(*store));
  }
  server::ServicesPool pool((*local)->services, std::move(stores));
  server::ArmHandler handler(*(*local)->registry, pool, metrics, access_log,
                             std::move(handler_options));
  auto http = server::HttpServer::Start(options, handler, metrics);
  if (!http.ok()) return ReportError(http.status(), ctx);

  // Operation workers: claim queued operations (a run started with the
  // REST API, or by 'image-template run --no-wait') and abandoned ones.
  std::atomic<bool> stop_workers{false};
  std::vector<std::thread> worker_threads;
  std::mutex workers_mu;
  std::condition_variable workers_cv;
  int workers_running = *workers;  // guarded by workers_mu
  for (int i = 0; i < *workers; ++i) {
    worker_threads.emplace_back([&] {
      Status s = operations.Work(stop_workers, /*exit_when_idle=*/false);
      if (!s.ok()) *ctx.err << "imagesmith serve: operation worker: " << s.message() << std::endl;
      std::lock_guard<std::mutex> lock(workers_mu);
      --workers_running;
      workers_cv.notify_all();
    });
  }

  // The automatic OS upgrade controller of Service Fabric node types
  // (doc/servicefabric.md): every minute ($IMAGESMITH_SF_CHECK_SECONDS),
  // checkOSUpgrades on every managed cluster; the rollouts it starts are
  // operations the workers above run.
  std::thread sf_controller;
  if (*workers > 0) {
    int64_t every_s = 60;
    if (const char* v = std::getenv("IMAGESMITH_SF_CHECK_SECONDS"); v != nullptr && *v != '\0') {
      every_s = std::max<int64_t>(1, std::atoll(v));
    }
    sf_controller = std::thread([&local, &stop_workers, &ctx, every_s] {
      api::Local& l = **local;
      while (!stop_workers.load()) {
        api::Request list;
        list.verb = api::Verb::kList;
        list.id = ResourceId::ForSubscription(l.services.subscription);
        list.list_type = "Microsoft.ServiceFabric/managedClusters";
        auto clusters = l.Call(list);
        const Json* items = clusters.ok() ? clusters->body.Find("value") : nullptr;
        for (const Json& c : items != nullptr ? items->array_items() : std::vector<Json>{}) {
          auto id = ResourceId::Parse(c.Find("id") != nullptr ? c.Find("id")->string_value() : "");
          if (!id.ok()) continue;
          api::Request check;
          check.verb = api::Verb::kAction;
          check.id = *id;
          check.action = "checkOSUpgrades";
          check.wait = false;
          auto r = l.Call(check);
          if (!r.ok()) {
            *ctx.err << "imagesmith serve: checkOSUpgrades " << id->ToString() << ": "
                     << r.status().message() << std::endl;
          }
        }
        for (int64_t i = 0; i < every_s * 4 && !stop_workers.load(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
      }
    });
  }
  // Announced while it takes work, so --no-wait commands on this data
  // directory leave their operations to it (api/worker_presence.h).
  std::unique_ptr<api::WorkerPresence> presence;
  if (*workers > 0) {
    auto p = api::WorkerPresence::Announce((*local)->services.data_dir, operations.worker_id());
    if (!p.ok()) return ReportError(p.status(), ctx);
    presence = std::move(*p);
  }
  // The pool watch (doc/batch.md, "The pool watch"): every 5 s
  // ($IMAGESMITH_BATCH_WATCH_SECONDS) it looks at the nodes of every quiet
  // Batch pool and queues its controller when one was lost.
  std::thread pool_watch;
#if IMAGESMITH_HAVE_BATCH
  if (*workers > 0) {
    pool_watch = std::thread([&local, &stop_workers, &ctx] {
      api::PoolWatch watch((*local)->services);
      const int64_t every_ms = api::PoolWatch::IntervalMicros() / 1000;
      while (!stop_workers.load()) {
        auto queued = watch.Sweep();
        if (!queued.ok()) {
          *ctx.err << "imagesmith serve: pool watch: " << queued.status().message() << std::endl;
        } else {
          for (const std::string& line : *queued) {
            *ctx.err << "imagesmith serve: pool watch: " << line << std::endl;
          }
        }
        for (int64_t waited = 0; waited < every_ms && !stop_workers.load(); waited += 100) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    });
  }
#endif

  Json ready = Json::MakeObject();
  ready.Set("listen", Json::String((*http)->address()));
  ready.Set("url", Json::String(std::string((*http)->tls() ? "https" : "http") + "://" +
                                (*http)->address()));
  ready.Set("tls", Json::Bool((*http)->tls()));
  ready.Set("pid", Json::Int(::getpid()));
  *ctx.out << ready.Dump(-1) << std::endl;

  int sig = 0;
  sigwait(&stop, &sig);
  *ctx.err << "imagesmith serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
           << ": finishing requests in flight" << std::endl;
  // The operation workers stop at once, in parallel with the requests in
  // flight: they claim nothing new and cancel what they run; a resumable
  // operation is handed back (another worker takes it without waiting for
  // the lease), any other fails with WorkerStopped (Operations::Stop).
  presence.reset();
  stop_workers.store(true);
  operations.Stop();
  (*http)->Shutdown();
  bool workers_done = true;
  if (!worker_threads.empty()) {
    *ctx.err << "imagesmith serve: stopping the operation workers (up to " << *shutdown_timeout
             << " s)" << std::endl;
    std::unique_lock<std::mutex> lock(workers_mu);
    workers_done = workers_cv.wait_for(lock, std::chrono::seconds(*shutdown_timeout),
                                       [&] { return workers_running == 0; });
  }
  if (!workers_done) {
    // A handler that does not stop in time: release what this process holds
    // and exit without waiting for it (its threads die with the process).
    auto released = operations.ReleaseHeld();
    *ctx.err << "imagesmith serve: the operation workers did not stop within " << *shutdown_timeout
             << " s; released "
             << (released.ok() ? std::to_string(*released) : released.status().message())
             << " operation(s) for other workers; stopped" << std::endl;
    if (log_fd > STDERR_FILENO) ::close(log_fd);
    ctx.out->flush();
    std::_Exit(0);
  }
  for (std::thread& t : worker_threads) t.join();
  if (sf_controller.joinable()) sf_controller.join();
  if (pool_watch.joinable()) pool_watch.join();
  if (log_fd > STDERR_FILENO) ::close(log_fd);
  *ctx.err << "imagesmith serve: stopped" << std::endl;
  return 0;
}

}  // namespace

void RegisterServeCommands(CommandRegistry& registry) {
  registry.Add(CommandSpec{
      .path = "serve",
      .summary = "Serve the REST API (Azure Resource Manager's shape) over HTTP or HTTPS.",
      .description =
          "Runs an HTTP/1.1 server on the data directory: ARM's resource paths and verbs,\n"
          "/healthz, /metrics (Prometheus), /openapi.json, the token endpoint and the web\n"
          "console at / (doc/console.md). Every ARM\n"
          "request needs 'Authorization: Bearer TOKEN'. Prints the bound address as one JSON\n"
          "line on stdout once it accepts connections; logs one JSON line per request on\n"
          "stderr (or --access-log FILE). It also runs --workers operation workers (template\n"
          "runs started through the API) and, with workers, watches the nodes of quiet Batch\n"
          "pools and replaces lost ones (doc/batch.md). SIGTERM or SIGINT stops it\n"
          "gracefully: requests in flight finish; running operations are stopped and handed\n"
          "back to other workers (or failed with WorkerStopped when they cannot be resumed);\n"
          "then it exits 0. See doc/server.md.",
      .args_usage = "",
      .min_positionals = 0,
      .max_positionals = 0,
      .options =
          {
              {"listen", 0, "HOST:PORT",
               "Address to listen on (default 127.0.0.1:8443; port 0 "
               "picks a free port)."},
              {"tls-cert", 0, "FILE", "PEM certificate chain; serve HTTPS (needs --tls-key)."},
              {"tls-key", 0, "FILE", "PEM private key of --tls-cert."},
              {"threads", 0, "N", "HTTP worker threads (default 4)."},
              {"workers", 0, "N",
               "Operation workers: template runs and other long work "
               "(default 1; 0 leaves them to other processes)."},
              {"access-log", 0, "FILE",
               "Access log: a file to append to, '-' for stderr "
               "(default) or 'off'."},
              {"max-body-mib", 0, "N", "Largest request body in MiB (default 4; larger is 413)."},
              {"request-timeout", 0, "SECONDS",
               "Time a client has to send a whole request (default 30; then 408)."},
              {"idle-timeout", 0, "SECONDS",
               "Idle keep-alive connections are closed after this (default 60)."},
              {"shutdown-timeout", 0, "SECONDS",
               "On SIGTERM, how long operation workers get to stop their work before "
               "the server releases it and exits (default 30)."},
          },
      .examples = {"imagesmith serve", "imagesmith serve --listen 127.0.0.1:0",
                   "imagesmith serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem"},
      .run = RunServe,
  });
}

}  // namespace imagesmith::cli
