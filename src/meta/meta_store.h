// MetaStore: the metadata database. Every imagesmith resource (subscriptions,
// resource groups, templates, runs, galleries, ...) is a row with an Azure
// resource ID, type, location, tags and a JSON properties document.
//
// The interface speaks ResourceId and Json only; SQLite is an implementation
// detail (OpenSqliteMetaStore) so PostgreSQL can implement the same interface.
// Every change happens inside a transaction (Update).
//
// Thread-safety: a MetaStore may be used from several threads; transactions
// are serialised. Several processes may open the same database: writers
// take the database lock for the whole transaction (SQLite WAL mode).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/json.h"
#include "base/resource_id.h"
#include "base/statusor.h"

namespace imagesmith::meta {

struct Resource {
  ResourceId id;
  std::string location;  // region name, "" when the type has none
  Json tags = Json::MakeObject();
  Json properties = Json::MakeObject();
  int64_t created_us = 0;  // set by the store
  int64_t updated_us = 0;  // set by the store
  int64_t generation = 0;  // incremented on every write; for optimistic checks

  // The resource in Azure's shape: {id, name, type, location, tags, properties}.
  Json ToJson() const;
};

// One durable operation's row (api/operations.h gives it its meaning). The
// columns that claims and lists select on are fields; everything else is in
// `doc`. Copyable value type.
struct OperationRow {
  std::string id;      // a GUID, the key
  std::string type;    // "Microsoft.VirtualMachineImages/imageTemplates/run"
  std::string target;  // the resource ID the operation works on
  std::string status;  // InProgress, Succeeded, Failed, Canceled
  // The worker holding the lease ("" when queued or finished) and when the
  // lease ends (microseconds since the epoch).
  std::string owner;
  int64_t lease_expiry_us = 0;
  Json doc = Json::MakeObject();
  int64_t created_us = 0;  // set by the store
  int64_t updated_us = 0;  // set by the store
  // Set by ClaimOperation only: the owner and lease end before this claim
  // ("" and 0 for a queued operation).
  std::string previous_owner;
  int64_t previous_lease_expiry_us = 0;
};

// A record (Transaction::GetRecord): a JSON document by collection and key.
struct Record {
  std::string key;
  Json value;
  int64_t created_us = 0;
  int64_t updated_us = 0;
};

// Reads and writes inside one transaction. Borrowed; valid only inside the
// callback given to MetaStore::Update / MetaStore::Read.
class Transaction {
 public:
  virtual ~Transaction() = default;

  // NotFound naming the ID when absent.
  virtual StatusOr<Resource> Get(const ResourceId& id) = 0;
  virtual StatusOr<bool> Exists(const ResourceId& id) = 0;
  // Direct children of `parent` with full type `type` (case-insensitive),
  // ordered by name. For top-level resources the parent is the group.
  virtual StatusOr<std::vector<Resource>> ListChildren(const ResourceId& parent,
                                                       const std::string& type) = 0;
  // Every resource of `type` anywhere under `scope` (a subscription or group).
  virtual StatusOr<std::vector<Resource>> ListByType(const ResourceId& scope,
                                                     const std::string& type) = 0;
  // Inserts; AlreadyExists if the ID is taken. Fills created/updated/generation.
  virtual Status Create(Resource& r) = 0;
  // Replaces an existing resource; NotFound if it is absent. When
  // `expected_generation` is given and differs, Aborted (someone else wrote).
  virtual Status Replace(Resource& r, std::optional<int64_t> expected_generation = {}) = 0;
  // Deletes one resource (not its children); NotFound if absent.
  virtual Status Delete(const ResourceId& id) = 0;
  // Number of resources anywhere below `id` (children, grandchildren...).
  virtual StatusOr<int64_t> CountDescendants(const ResourceId& id) = 0;
  // Up to `limit` resources below `id`, ordered by ID.
  virtual StatusOr<std::vector<Resource>> ListDescendants(const ResourceId& id, int64_t limit) = 0;
  // Every subscription.
  virtual StatusOr<std::vector<Resource>> ListSubscriptions() = 0;

  // Durable operations (a table of their own; see OperationRow).
  // Inserts; AlreadyExists if the ID is taken. Fills created/updated.
  virtual Status CreateOperation(OperationRow& op) = 0;
  // NotFound naming the operation ID when absent.
  virtual StatusOr<OperationRow> GetOperation(const std::string& id) = 0;
  // Replaces every column of an existing operation; NotFound if absent.
  virtual Status ReplaceOperation(OperationRow& op) = 0;
  // Operations newest first, at most `limit`; only those on `target` (case-
  // insensitive) when it is not empty, only those with `status` when it is
  // not empty.
  virtual StatusOr<std::vector<OperationRow>> ListOperations(const std::string& target,
                                                             const std::string& status,
                                                             int64_t limit) = 0;
  // Claims for `owner` the oldest InProgress operation of one of `types`
  // that nobody holds, whose lease ended before `now_us`, or whose owner is
  // one of `dead_owners` (workers known to have died): sets its owner and
  // lease end to `lease_until_us` with one UPDATE. nullopt when there is
  // none. The returned row has previous_owner / previous_lease_expiry_us.
  virtual StatusOr<std::optional<OperationRow>> ClaimOperation(
      const std::vector<std::string>& types, const std::string& owner, int64_t now_us,
      int64_t lease_until_us, const std::vector<std::string>& dead_owners) = 0;
  // Records: small JSON documents kept outside the resource tree, by
  // collection ("roleAssignments", "servicePrincipals", ...) and key. Keys
  // compare case-insensitively and keep the case they were written in. They
  // are not resources: no parent, not counted by CountDescendants.
  // NotFound naming the collection and key when absent.
  virtual StatusOr<Record> GetRecord(const std::string& collection, const std::string& key) = 0;
  // Every record of `collection`, ordered by key.
  virtual StatusOr<std::vector<Record>> ListRecords(const std::string& collection) = 0;
  // Inserts or replaces the record (created_us is kept on replace).
  virtual Status PutRecord(const std::string& collection, const std::string& key,
                           const Json& value) = 0;
  // NotFound when absent.
  virtual Status DeleteRecord(const std::string& collection, const std::string& key) = 0;
};

class MetaStore {
 public:
  virtual ~MetaStore() = default;

  // Runs `fn` in a write transaction; commits if it returns OK, rolls back
  // otherwise (and returns its status). Retries transparently while another
  // process holds the write lock, up to a few seconds, then Unavailable.
  virtual Status Update(const std::function<Status(Transaction&)>& fn) = 0;
  // Runs `fn` in a read transaction (a consistent snapshot).
  virtual Status Read(const std::function<Status(Transaction&)>& fn) = 0;

  // The schema version the database is at (after migrations).
  virtual int SchemaVersion() = 0;

  // Writes a consistent snapshot of the whole database to `dest_path`, a
  // new single-file database (rollback journal, no -wal file), synced to
  // disk. Uses SQLite's online backup in one step under a read transaction,
  // so writers in other processes go on meanwhile and the snapshot is one
  // point in time. An existing file at `dest_path` is replaced. Errors name
  // `dest_path`; on error no file is left there.
  virtual Status BackupTo(const std::string& dest_path) = 0;

  // A number that changes whenever the database may have changed since it
  // was last asked -- a commit through this object or through any other
  // connection or process -- and stays the same otherwise; for caches of
  // what was read (the REST server's GET answers). Cheap: no transaction.
  // Unimplemented by stores that cannot tell.
  virtual StatusOr<int64_t> ChangeCounter() {
    return Status(StatusCode::kUnimplemented, "this metadata store has no change counter");
  }
};

// Opens (creating if needed) the SQLite database at `path` in WAL mode and
// applies pending migrations. A database from a newer imagesmith (higher
// schema version) is FailedPrecondition; a damaged file is DataLoss.
//
// Every error names the database file and says what to do: a database
// locked by another process for longer than the busy timeout is
// Unavailable, a full file system ResourceExhausted, a damaged file
// DataLoss (restore from a backup or move the file aside), an I/O error
// Internal. A transaction that fails is rolled back: nothing of it is kept.
StatusOr<std::unique_ptr<MetaStore>> OpenSqliteMetaStore(Env& env, const std::string& path);

// Knobs for tests and tools; the defaults are what OpenSqliteMetaStore uses.
struct SqliteOptions {
  // How long a writer waits for another process's write lock.
  std::chrono::milliseconds busy_timeout{10000};
  // When positive, SQLite's max_page_count for this connection: the
  // database cannot grow past it (SQLITE_FULL, as on a full disk).
  int64_t max_page_count = 0;
};
StatusOr<std::unique_ptr<MetaStore>> OpenSqliteMetaStore(Env& env, const std::string& path,
                                                         const SqliteOptions& options);

// Copies the SQLite database file at `src_path` (opened read-only; it must
// be a single-file database such as BackupTo writes) to `dest_path` the way
// BackupTo does, after PRAGMA quick_check has found it whole. NotFound when
// `src_path` does not exist; DataLoss naming it when it is not a database or
// is damaged. Nothing is left at `dest_path` on error.
Status CopySqliteDatabase(const std::string& src_path, const std::string& dest_path);

}  // namespace imagesmith::meta
