// The SQLite MetaStore. One table holds every resource; the ID's lowercase
// text is the key, so lookups and prefix scans match Azure's case-insensitive
// comparison of resource IDs.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/strings.h"
#include "meta/meta_store.h"

namespace imagesmith::meta {

Json Resource::ToJson() const {
  Json j = Json::MakeObject();
  j.Set("id", Json::String(id.ToString()));
  j.Set("name", Json::String(id.name()));
  j.Set("type", Json::String(id.FullType()));
  if (!location.empty()) j.Set("location", Json::String(location));
  j.Set("tags", tags);
  if (id.kind() != ResourceId::Kind::kSubscription) {
    j.Set("resourceGroup", Json::String(id.resource_group()));
  }
  j.Set("properties", properties);
  return j;
}

namespace {

// Schema migrations, applied in order; never edit one that has shipped.
const char* const kMigrations[] = {
    // 1: resources
    R"sql(
    CREATE TABLE resources (
      id_key      TEXT PRIMARY KEY,   -- lowercase canonical resource ID
      id          TEXT NOT NULL,      -- as created (names keep their case)
      type_key    TEXT NOT NULL,      -- lowercase full type
      parent_key  TEXT NOT NULL,      -- lowercase parent ID ('' for subscriptions)
      name        TEXT NOT NULL,
      location    TEXT NOT NULL DEFAULT '',
      tags        TEXT NOT NULL DEFAULT '{}',
      properties  TEXT NOT NULL DEFAULT '{}',
      created_us  INTEGER NOT NULL,
      updated_us  INTEGER NOT NULL,
      generation  INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX resources_by_parent ON resources(parent_key, type_key, name);
    CREATE INDEX resources_by_type ON resources(type_key);
    )sql",
    // 2: durable operations (api/operations.h)
    R"sql(
    CREATE TABLE operations (
      id               TEXT PRIMARY KEY,
      type             TEXT NOT NULL,
      target_key       TEXT NOT NULL,  -- lowercase target resource ID
      target           TEXT NOT NULL,
      status           TEXT NOT NULL,  -- InProgress, Succeeded, Failed, Canceled
      owner            TEXT NOT NULL DEFAULT '',
      lease_expiry_us  INTEGER NOT NULL DEFAULT 0,
      doc              TEXT NOT NULL DEFAULT '{}',
      created_us       INTEGER NOT NULL,
      updated_us       INTEGER NOT NULL
    );
    CREATE INDEX operations_by_status ON operations(status, created_us);
    CREATE INDEX operations_by_target ON operations(target_key, created_us);
    )sql",
    // 3: records (role assignments, service principals: Transaction::GetRecord)
    R"sql(
    CREATE TABLE records (
      collection  TEXT NOT NULL,
      key_lower   TEXT NOT NULL,
      key         TEXT NOT NULL,
      value       TEXT NOT NULL,
      created_us  INTEGER NOT NULL,
      updated_us  INTEGER NOT NULL,
      PRIMARY KEY (collection, key_lower)
    );
    )sql",
};
constexpr int kSchemaVersion = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));

// Prepared statements kept per connection of a SqliteMetaStore, so a
// transaction does not parse its SQL again every time: parsing was a third of
// the CPU time of a REST GET (bench/api). Only connections registered with
// EnableStmtCache use it; DropStmtCache finalizes them before the connection
// closes. A statement in use (a nested Stmt with the same SQL) is prepared
// afresh rather than shared.
struct CachedStmt {
  sqlite3_stmt* stmt = nullptr;
  bool in_use = false;
};
std::mutex& StmtCacheMu() {
  static std::mutex mu;
  return mu;
}
// db -> SQL text -> statement; guarded by StmtCacheMu(). Node-based, so
// pointers to entries stay valid until DropStmtCache.
std::unordered_map<sqlite3*, std::unordered_map<std::string, CachedStmt>>& StmtCaches() {
  static auto* caches =
      new std::unordered_map<sqlite3*, std::unordered_map<std::string, CachedStmt>>;
  return *caches;
}
constexpr size_t kMaxCachedStmts = 256;  // per connection; dynamic SQL beyond it is not kept
void EnableStmtCache(sqlite3* db) {
  std::lock_guard<std::mutex> lock(StmtCacheMu());
  StmtCaches()[db];
}
void DropStmtCache(sqlite3* db) {
  std::lock_guard<std::mutex> lock(StmtCacheMu());
  auto it = StmtCaches().find(db);
  if (it == StmtCaches().end()) return;
  for (auto& [sql, cached] : it->second) sqlite3_finalize(cached.stmt);
  StmtCaches().erase(it);
}

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    std::lock_guard<std::mutex> lock(StmtCacheMu());
    auto cache = StmtCaches().find(db);
    if (cache != StmtCaches().end()) {
      auto hit = cache->second.find(sql);
      if (hit != cache->second.end() && !hit->second.in_use) {
        hit->second.in_use = true;
        cached_ = &hit->second;
        stmt_ = hit->second.stmt;
        rc_ = SQLITE_OK;
        return;
      }
    }
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc_ == SQLITE_OK && stmt_ != nullptr && cache != StmtCaches().end() &&
        cache->second.size() < kMaxCachedStmts && cache->second.count(sql) == 0) {
      CachedStmt& entry = cache->second[sql];
      entry.stmt = stmt_;
      entry.in_use = true;
      cached_ = &entry;
    }
  }
  ~Stmt() {
    if (cached_ == nullptr) {
      sqlite3_finalize(stmt_);
      return;
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    std::lock_guard<std::mutex> lock(StmtCacheMu());
    cached_->in_use = false;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  Stmt& Bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(stmt_); }
  std::string Text(int col) const {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(t),
                                      static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
  CachedStmt* cached_ = nullptr;  // set when stmt_ belongs to the cache
};

// The error for SQLite's last failure on `db`, naming the database file and
// saying what to do about it. Every message starts "metadata database PATH".
Status SqliteError(sqlite3* db, const std::string& path, const std::string& what) {
  int code = sqlite3_errcode(db);
  std::string message = "metadata database " + path + ": " + what + ": " + sqlite3_errmsg(db);
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(message +
                              " (another imagesmith process held the database locked for longer "
                              "than imagesmith waits; retry when it has finished)");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(message +
                           "; the file is damaged: restore the data directory from a backup "
                           "(`imagesmith backup restore DIR` into an empty directory) or move " +
                           path + " aside to start with an empty database");
    case SQLITE_FULL:
      return ResourceExhaustedError(message + "; the file system holding " + path +
                                    " is full: free space and retry (the change was not made)");
    case SQLITE_IOERR:
      return InternalError(message + " (an I/O error: check the disk holding " + path +
                           "; the change was not made)");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      return PermissionDeniedError(message);
    default:
      return InternalError(message);
  }
}

std::string Key(const ResourceId& id) { return AsciiToLower(id.ToString()); }

std::string ParentKey(const ResourceId& id) {
  return id.kind() == ResourceId::Kind::kSubscription ? "" : Key(id.Parent());
}

constexpr const char* kColumns =
    "id, location, tags, properties, created_us, updated_us, generation";

constexpr const char* kOperationColumns =
    "id, type, target, status, owner, lease_expiry_us, doc, created_us, updated_us";

StatusOr<OperationRow> RowToOperation(Stmt& s, const std::string& path) {
  auto doc = ParseJson(s.Text(6));
  if (!doc.ok()) {
    return DataLossError("metadata database " + path + ": damaged operation " + s.Text(0) +
                         "; restore the data directory from a backup (`imagesmith backup "
                         "restore DIR` into an empty directory)");
  }
  OperationRow op;
  op.id = s.Text(0);
  op.type = s.Text(1);
  op.target = s.Text(2);
  op.status = s.Text(3);
  op.owner = s.Text(4);
  op.lease_expiry_us = s.Int(5);
  op.doc = std::move(*doc);
  op.created_us = s.Int(7);
  op.updated_us = s.Int(8);
  return op;
}

StatusOr<Resource> RowToResource(Stmt& s, const std::string& path) {
  auto id = ResourceId::Parse(s.Text(0));
  auto tags = ParseJson(s.Text(2));
  auto props = ParseJson(s.Text(3));
  if (!id.ok() || !tags.ok() || !props.ok()) {
    return DataLossError("metadata database " + path + ": damaged row for " + s.Text(0) +
                         "; restore the data directory from a backup (`imagesmith backup "
                         "restore DIR` into an empty directory)");
  }
  return Resource{*id, s.Text(1), *tags, *props, s.Int(4), s.Int(5), s.Int(6)};
}

class SqliteTransaction final : public Transaction {
 public:
  SqliteTransaction(sqlite3* db, const std::string& path, Env& env, bool writable)
      : db_(db), path_(path), env_(env), writable_(writable) {}

  StatusOr<Resource> Get(const ResourceId& id) override {
    std::string sql = std::string("SELECT ") + kColumns + " FROM resources WHERE id_key = ?";
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, Key(id));
    int rc = s.Step();
    if (rc == SQLITE_DONE) return NotFoundError(id.ToString() + " was not found");
    if (rc != SQLITE_ROW) return SqliteError(db_, path_, "read " + id.ToString());
    return RowToResource(s, path_);
  }

  StatusOr<bool> Exists(const ResourceId& id) override {
    Stmt s(db_, "SELECT 1 FROM resources WHERE id_key = ?");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, Key(id));
    int rc = s.Step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      return SqliteError(db_, path_, "read " + id.ToString());
    return rc == SQLITE_ROW;
  }

  StatusOr<std::vector<Resource>> ListChildren(const ResourceId& parent,
                                               const std::string& type) override {
    std::string sql = std::string("SELECT ") + kColumns +
                      " FROM resources WHERE parent_key = ? AND type_key = ? ORDER BY name";
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, Key(parent)).Bind(2, AsciiToLower(type));
    return Collect(s);
  }

  StatusOr<std::vector<Resource>> ListByType(const ResourceId& scope,
                                             const std::string& type) override {
    std::string sql = std::string("SELECT ") + kColumns +
                      " FROM resources WHERE type_key = ? AND substr(id_key, 1, ?) = ? "
                      "ORDER BY id_key";
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    std::string prefix = Key(scope) + "/";
    s.Bind(1, AsciiToLower(type)).Bind(2, static_cast<int64_t>(prefix.size())).Bind(3, prefix);
    return Collect(s);
  }

  Status Create(Resource& r) override {
    RETURN_IF_ERROR(CheckWritable());
    ASSIGN_OR_RETURN(bool exists, Exists(r.id));
    if (exists) return AlreadyExistsError(r.id.ToString() + " already exists");
    r.created_us = r.updated_us = env_.NowMicros();
    r.generation = 1;
    Stmt s(db_,
           "INSERT INTO resources (id_key, id, type_key, parent_key, name, location, tags, "
           "properties, created_us, updated_us, generation) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, Key(r.id))
        .Bind(2, r.id.ToString())
        .Bind(3, AsciiToLower(r.id.FullType()))
        .Bind(4, ParentKey(r.id))
        .Bind(5, r.id.name())
        .Bind(6, r.location)
        .Bind(7, r.tags.Dump(-1))
        .Bind(8, r.properties.Dump(-1))
        .Bind(9, r.created_us)
        .Bind(10, r.updated_us)
        .Bind(11, r.generation);
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, path_, "create " + r.id.ToString());
    return Status::Ok();
  }

  Status Replace(Resource& r, std::optional<int64_t> expected_generation) override {
    RETURN_IF_ERROR(CheckWritable());
    ASSIGN_OR_RETURN(Resource current, Get(r.id));
    if (expected_generation && *expected_generation != current.generation) {
      return AbortedError(r.id.ToString() +
                          " was changed by someone else; read it again and retry");
    }
    r.created_us = current.created_us;
    r.updated_us = env_.NowMicros();
    r.generation = current.generation + 1;
    Stmt s(db_,
           "UPDATE resources SET location = ?, tags = ?, properties = ?, updated_us = ?, "
           "generation = ? WHERE id_key = ?");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, r.location)
        .Bind(2, r.tags.Dump(-1))
        .Bind(3, r.properties.Dump(-1))
        .Bind(4, r.updated_us)
        .Bind(5, r.generation)
        .Bind(6, Key(r.id));
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, path_, "update " + r.id.ToString());
    return Status::Ok();
  }

  Status Delete(const ResourceId& id) override {
    RETURN_IF_ERROR(CheckWritable());
    Stmt s(db_, "DELETE FROM resources WHERE id_key = ?");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, Key(id));
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, path_, "delete " + id.ToString());
    if (sqlite3_changes(db_) == 0) return NotFoundError(id.ToString() + " was not found");
    return Status::Ok();
  }

  StatusOr<int64_t> CountDescendants(const ResourceId& id) override {
    Stmt s(db_, "SELECT count(*) FROM resources WHERE substr(id_key, 1, ?) = ?");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    std::string prefix = Key(id) + "/";
    s.Bind(1, static_cast<int64_t>(prefix.size())).Bind(2, prefix);
    if (s.Step() != SQLITE_ROW) return SqliteError(db_, path_, "count under " + id.ToString());
    return s.Int(0);
  }

  StatusOr<std::vector<Resource>> ListDescendants(const ResourceId& id, int64_t limit) override {
    std::string sql = std::string("SELECT ") + kColumns +
                      " FROM resources WHERE substr(id_key, 1, ?) = ? ORDER BY id_key LIMIT ?";
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    std::string prefix = Key(id) + "/";
    s.Bind(1, static_cast<int64_t>(prefix.size())).Bind(2, prefix).Bind(3, limit);
    return Collect(s);
  }

  StatusOr<Record> GetRecord(const std::string& collection, const std::string& key) override {
    Stmt s(db_,
           "SELECT key, value, created_us, updated_us FROM records WHERE collection = ? AND "
           "key_lower = ?");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, collection).Bind(2, AsciiToLower(key));
    int rc = s.Step();
    if (rc == SQLITE_DONE) return NotFoundError(collection + " record " + key + " was not found");
    if (rc != SQLITE_ROW) return SqliteError(db_, path_, "read " + collection + " " + key);
    return RowToRecord(s);
  }

  StatusOr<std::vector<Record>> ListRecords(const std::string& collection) override {
    Stmt s(db_,
           "SELECT key, value, created_us, updated_us FROM records WHERE collection = ? ORDER BY "
           "key_lower");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, collection);
    std::vector<Record> out;
    while (true) {
      int rc = s.Step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return SqliteError(db_, path_, "list " + collection);
      ASSIGN_OR_RETURN(Record r, RowToRecord(s));
      out.push_back(std::move(r));
    }
  }

  Status PutRecord(const std::string& collection, const std::string& key,
                   const Json& value) override {
    RETURN_IF_ERROR(CheckWritable());
    int64_t now = env_.NowMicros();
    Stmt s(db_,
           "INSERT INTO records (collection, key_lower, key, value, created_us, updated_us) "
           "VALUES (?,?,?,?,?,?) ON CONFLICT (collection, key_lower) DO UPDATE SET "
           "key = excluded.key, value = excluded.value, updated_us = excluded.updated_us");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, collection)
        .Bind(2, AsciiToLower(key))
        .Bind(3, key)
        .Bind(4, value.Dump(-1))
        .Bind(5, now)
        .Bind(6, now);
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, path_, "write " + collection + " " + key);
    return Status::Ok();
  }

  Status DeleteRecord(const std::string& collection, const std::string& key) override {
    RETURN_IF_ERROR(CheckWritable());
    Stmt s(db_, "DELETE FROM records WHERE collection = ? AND key_lower = ?");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, collection).Bind(2, AsciiToLower(key));
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, path_, "delete " + collection + " " + key);
    if (sqlite3_changes(db_) == 0) {
      return NotFoundError(collection + " record " + key + " was not found");
    }
    return Status::Ok();
  }

  StatusOr<std::vector<Resource>> ListSubscriptions() override {
    std::string sql =
        std::string("SELECT ") + kColumns + " FROM resources WHERE parent_key = '' ORDER BY id_key";
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    return Collect(s);
  }

  Status CreateOperation(OperationRow& op) override {
    RETURN_IF_ERROR(CheckWritable());
    op.created_us = op.updated_us = env_.NowMicros();
    Stmt s(db_,
           "INSERT INTO operations (id, type, target_key, target, status, owner, "
           "lease_expiry_us, doc, created_us, updated_us) VALUES (?,?,?,?,?,?,?,?,?,?)");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, op.id)
        .Bind(2, op.type)
        .Bind(3, AsciiToLower(op.target))
        .Bind(4, op.target)
        .Bind(5, op.status)
        .Bind(6, op.owner)
        .Bind(7, op.lease_expiry_us)
        .Bind(8, op.doc.Dump(-1))
        .Bind(9, op.created_us)
        .Bind(10, op.updated_us);
    int rc = s.Step();
    if (rc == SQLITE_CONSTRAINT || (sqlite3_extended_errcode(db_) & 0xff) == SQLITE_CONSTRAINT) {
      return AlreadyExistsError("operation " + op.id + " already exists");
    }
    if (rc != SQLITE_DONE) return SqliteError(db_, path_, "create operation " + op.id);
    return Status::Ok();
  }

  StatusOr<OperationRow> GetOperation(const std::string& id) override {
    std::string sql = std::string("SELECT ") + kOperationColumns + " FROM operations WHERE id = ?";
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, AsciiToLower(id));
    int rc = s.Step();
    if (rc == SQLITE_DONE) return NotFoundError("operation '" + id + "' was not found");
    if (rc != SQLITE_ROW) return SqliteError(db_, path_, "read operation " + id);
    return RowToOperation(s, path_);
  }

  Status ReplaceOperation(OperationRow& op) override {
    RETURN_IF_ERROR(CheckWritable());
    op.updated_us = env_.NowMicros();
    Stmt s(db_,
           "UPDATE operations SET status = ?, owner = ?, lease_expiry_us = ?, doc = ?, "
           "updated_us = ? WHERE id = ?");
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    s.Bind(1, op.status)
        .Bind(2, op.owner)
        .Bind(3, op.lease_expiry_us)
        .Bind(4, op.doc.Dump(-1))
        .Bind(5, op.updated_us)
        .Bind(6, op.id);
    if (s.Step() != SQLITE_DONE) return SqliteError(db_, path_, "update operation " + op.id);
    if (sqlite3_changes(db_) == 0) return NotFoundError("operation '" + op.id + "' was not found");
    return Status::Ok();
  }

  StatusOr<std::vector<OperationRow>> ListOperations(const std::string& target,
                                                     const std::string& status,
                                                     int64_t limit) override {
    std::string sql = std::string("SELECT ") + kOperationColumns +
                      " FROM operations WHERE (? = '' OR target_key = ?) AND (? = '' OR status = "
                      "?) ORDER BY created_us DESC, id LIMIT ?";
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return SqliteError(db_, path_, "prepare");
    std::string key = AsciiToLower(target);
    s.Bind(1, key).Bind(2, key).Bind(3, status).Bind(4, status).Bind(5, limit);
    std::vector<OperationRow> out;
    while (true) {
      int rc = s.Step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return SqliteError(db_, path_, "list operations");
      ASSIGN_OR_RETURN(OperationRow op, RowToOperation(s, path_));
      out.push_back(std::move(op));
    }
  }

  StatusOr<std::optional<OperationRow>> ClaimOperation(
      const std::vector<std::string>& types, const std::string& owner, int64_t now_us,
      int64_t lease_until_us, const std::vector<std::string>& dead_owners) override {
    RETURN_IF_ERROR(CheckWritable());
    if (types.empty()) return std::optional<OperationRow>();
    // Types and dead owners go in as JSON arrays (json_each), so one
    // prepared statement serves any number of them.
    Json type_list = Json::MakeArray();
    for (const std::string& t : types) type_list.Append(Json::String(t));
    Json dead_list = Json::MakeArray();
    for (const std::string& d : dead_owners) dead_list.Append(Json::String(d));
    std::string sql = std::string("SELECT ") + kOperationColumns +
                      " FROM operations WHERE status = 'InProgress' AND type IN (SELECT value "
                      "FROM json_each(?)) AND (owner = '' OR lease_expiry_us < ? OR owner IN "
                      "(SELECT value FROM json_each(?))) ORDER BY created_us, id LIMIT 1";
    Stmt q(db_, sql.c_str());
    if (!q.ok()) return SqliteError(db_, path_, "prepare");
    q.Bind(1, type_list.Dump(-1)).Bind(2, now_us).Bind(3, dead_list.Dump(-1));
    int rc = q.Step();
    if (rc == SQLITE_DONE) return std::optional<OperationRow>();
    if (rc != SQLITE_ROW) return SqliteError(db_, path_, "find an operation to claim");
    ASSIGN_OR_RETURN(OperationRow op, RowToOperation(q, path_));
    op.previous_owner = op.owner;
    op.previous_lease_expiry_us = op.lease_expiry_us;
    op.owner = owner;
    op.lease_expiry_us = lease_until_us;
    op.updated_us = env_.NowMicros();
    // The write transaction holds the database's write lock, so nobody can
    // claim the row between the SELECT and this UPDATE; the WHERE repeats
    // the owner as a guard all the same.
    Stmt u(db_,
           "UPDATE operations SET owner = ?, lease_expiry_us = ?, updated_us = ? WHERE id = ? AND "
           "owner = ? AND status = 'InProgress'");
    if (!u.ok()) return SqliteError(db_, path_, "prepare");
    u.Bind(1, owner).Bind(2, lease_until_us).Bind(3, op.updated_us).Bind(4, op.id);
    u.Bind(5, op.previous_owner);
    if (u.Step() != SQLITE_DONE) return SqliteError(db_, path_, "claim operation " + op.id);
    if (sqlite3_changes(db_) != 1)
      return InternalError("operation " + op.id + " changed while claimed");
    return std::optional<OperationRow>(std::move(op));
  }

 private:
  Status CheckWritable() const {
    if (!writable_) return InternalError("write inside a read-only metadata transaction");
    return Status::Ok();
  }

  StatusOr<Record> RowToRecord(Stmt& s) {
    auto value = ParseJson(s.Text(1));
    if (!value.ok()) {
      return DataLossError("metadata database " + path_ + ": damaged record " + s.Text(0) +
                           "; restore the data directory from a backup");
    }
    return Record{s.Text(0), *value, s.Int(2), s.Int(3)};
  }

  StatusOr<std::vector<Resource>> Collect(Stmt& s) {
    std::vector<Resource> out;
    while (true) {
      int rc = s.Step();
      if (rc == SQLITE_DONE) return out;
      if (rc != SQLITE_ROW) return SqliteError(db_, path_, "list");
      ASSIGN_OR_RETURN(Resource r, RowToResource(s, path_));
      out.push_back(std::move(r));
    }
  }

  sqlite3* db_;
  const std::string& path_;
  Env& env_;
  bool writable_;
};

// Runs a PRAGMA that answers one text row per problem ("ok" when none).
Status CheckIntegrity(sqlite3* db, const std::string& path) {
  Stmt s(db, "PRAGMA quick_check");
  if (!s.ok()) return SqliteError(db, path, "checking");
  std::string problems;
  while (true) {
    int rc = s.Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return SqliteError(db, path, "checking");
    std::string row = s.Text(0);
    if (row != "ok" && problems.size() < 500) problems += (problems.empty() ? "" : "; ") + row;
  }
  if (!problems.empty()) {
    return DataLossError("metadata database " + path + " is damaged: " + problems);
  }
  return Status::Ok();
}

Status FsyncPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening " + path, errno);
  int r = fsync(fd);
  int err = errno;
  close(fd);
  if (r != 0) return ErrnoError("syncing " + path, err);
  return Status::Ok();
}

// Copies every page of `src` into a new database at `dest_path` in one
// backup step (one read transaction on `src`: one point in time), then
// turns the copy into a single rollback-journal file, checks and syncs it.
Status BackupDatabase(sqlite3* src, const std::string& dest_path) {
  unlink(dest_path.c_str());
  sqlite3* dst = nullptr;
  auto fail = [&](const Status& s) {
    if (dst != nullptr) sqlite3_close_v2(dst);
    unlink(dest_path.c_str());
    unlink((dest_path + "-journal").c_str());
    unlink((dest_path + "-wal").c_str());
    unlink((dest_path + "-shm").c_str());
    return s;
  };
  if (sqlite3_open_v2(dest_path.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                      nullptr) != SQLITE_OK) {
    return fail(dst != nullptr ? SqliteError(dst, dest_path, "creating")
                               : ResourceExhaustedError("metadata database: out of memory"));
  }
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
  if (b == nullptr) return fail(SqliteError(dst, dest_path, "starting the backup"));
  int rc;
  // BUSY/LOCKED: a writer in this process holds the source; wait a little.
  for (int tries = 0;; ++tries) {
    rc = sqlite3_backup_step(b, -1);
    if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries >= 100) break;
    sqlite3_sleep(100);
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    Status s = SqliteError(dst, dest_path, "copying the database");
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      s = UnavailableError("metadata database: copying to " + dest_path +
                           ": the database stayed locked for 10 s; retry");
    }
    return fail(s);
  }
  char* err = nullptr;
  if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return fail(SqliteError(dst, dest_path, "setting the journal mode"));
  }
  Status check = CheckIntegrity(dst, dest_path);
  if (!check.ok()) return fail(check);
  if (sqlite3_close_v2(dst) != SQLITE_OK) {
    dst = nullptr;
    return fail(InternalError("metadata database: closing " + dest_path));
  }
  dst = nullptr;
  Status synced = FsyncPath(dest_path);
  if (!synced.ok()) return fail(synced);
  return Status::Ok();
}

// One writer at a time per database file within this process. Connections
// of one process (serve has one per thread) that wait for each other here
// queue on a mutex and wake the moment the writer commits; without it they
// meet in SQLite's busy handler, which polls with sleeps of up to 100 ms and
// gave PUTs at 16 connections a p99 of 250 ms (bench/api). Writers in other
// processes are still waited for by busy_timeout, and so is a writer of this
// process that holds the gate longer than busy_timeout: the waiter then goes
// on to BEGIN IMMEDIATE and SQLite's busy handler, as without the gate.
std::shared_ptr<std::timed_mutex> WriterGate(const std::string& path) {
  static std::mutex gates_mu;
  static auto* gates = new std::map<std::string, std::weak_ptr<std::timed_mutex>>();
  char resolved[PATH_MAX];
  std::string key = ::realpath(path.c_str(), resolved) != nullptr ? resolved : path;
  std::lock_guard<std::mutex> lock(gates_mu);
  std::shared_ptr<std::timed_mutex> gate = (*gates)[key].lock();
  if (gate == nullptr) {
    gate = std::make_shared<std::timed_mutex>();
    (*gates)[key] = gate;
  }
  return gate;
}

class SqliteMetaStore final : public MetaStore {
 public:
  SqliteMetaStore(sqlite3* db, std::string path, Env& env, std::chrono::milliseconds busy_timeout)
      : db_(db),
        path_(std::move(path)),
        env_(env),
        busy_timeout_(busy_timeout),
        writer_gate_(WriterGate(path_)) {
    EnableStmtCache(db_);
  }
  ~SqliteMetaStore() override {
    DropStmtCache(db_);
    sqlite3_close_v2(db_);
  }

  Status Migrate() {
    std::unique_lock<std::timed_mutex> gate(*writer_gate_, busy_timeout_);
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status s = MigrateLocked();
    RETURN_IF_ERROR(Exec(s.ok() ? "COMMIT" : "ROLLBACK"));
    return s;
  }

  Status Update(const std::function<Status(Transaction&)>& fn) override { return RunTxn(fn, true); }
  Status Read(const std::function<Status(Transaction&)>& fn) override { return RunTxn(fn, false); }
  int SchemaVersion() override {
    std::lock_guard<std::mutex> lock(mu_);
    return UserVersion();
  }
  Status BackupTo(const std::string& dest_path) override {
    std::lock_guard<std::mutex> lock(mu_);
    return BackupDatabase(db_, dest_path);
  }
  // SQLite's data_version changes when another connection commits; this
  // connection's own commits are counted in local_commits_.
  StatusOr<int64_t> ChangeCounter() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt st(db_, "PRAGMA data_version");
    if (!st.ok() || st.Step() != SQLITE_ROW) {
      return SqliteError(db_, path_, "PRAGMA data_version");
    }
    return (st.Int(0) << 32) + local_commits_;
  }

 private:
  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      sqlite3_free(err);
      return SqliteError(db_, path_, sql);
    }
    return Status::Ok();
  }

  // One statement without results, prepared once (the statement cache):
  // BEGIN, COMMIT and ROLLBACK of every transaction.
  Status ExecOne(const char* sql) {
    Stmt st(db_, sql);
    int rc = st.ok() ? st.Step() : SQLITE_ERROR;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return SqliteError(db_, path_, sql);
    return Status::Ok();
  }

  int UserVersion() {
    Stmt s(db_, "PRAGMA user_version");
    return s.Step() == SQLITE_ROW ? static_cast<int>(s.Int(0)) : -1;
  }

  Status MigrateLocked() {
    int version = UserVersion();
    if (version < 0) return SqliteError(db_, path_, "read schema version");
    if (version > kSchemaVersion) {
      return FailedPreconditionError("the metadata database has schema version " +
                                     std::to_string(version) +
                                     ", newer than this imagesmith understands (" +
                                     std::to_string(kSchemaVersion) + "); use a newer imagesmith");
    }
    for (int v = version; v < kSchemaVersion; ++v) {
      RETURN_IF_ERROR(Exec(kMigrations[v]));
      std::string set = "PRAGMA user_version = " + std::to_string(v + 1);
      RETURN_IF_ERROR(Exec(set.c_str()));
    }
    return Status::Ok();
  }

  Status RunTxn(const std::function<Status(Transaction&)>& fn, bool write) {
    std::unique_lock<std::timed_mutex> gate;
    if (write) gate = std::unique_lock<std::timed_mutex>(*writer_gate_, busy_timeout_);
    std::lock_guard<std::mutex> lock(mu_);
    // busy_timeout makes BEGIN IMMEDIATE wait for another process's writer.
    RETURN_IF_ERROR(ExecOne(write ? "BEGIN IMMEDIATE" : "BEGIN"));
    SqliteTransaction txn(db_, path_, env_, write);
    Status s = fn(txn);
    if (!s.ok()) {
      (void)ExecOne("ROLLBACK");
      return s;
    }
    Status c = ExecOne("COMMIT");
    if (!c.ok()) (void)ExecOne("ROLLBACK");
    if (write) ++local_commits_;  // even a failed COMMIT may have written
    return c;
  }

  std::mutex mu_;
  sqlite3* db_;                // guarded by mu_
  int64_t local_commits_ = 0;  // guarded by mu_
  const std::string path_;
  Env& env_;
  const std::chrono::milliseconds busy_timeout_;
  const std::shared_ptr<std::timed_mutex> writer_gate_;
};

}  // namespace

StatusOr<std::unique_ptr<MetaStore>> OpenSqliteMetaStore(Env& env, const std::string& path) {
  return OpenSqliteMetaStore(env, path, SqliteOptions{});
}

StatusOr<std::unique_ptr<MetaStore>> OpenSqliteMetaStore(Env& env, const std::string& path,
                                                         const SqliteOptions& options) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = db != nullptr ? SqliteError(db, path, "opening")
                             : ResourceExhaustedError("metadata database: out of memory");
    sqlite3_close_v2(db);
    return s;
  }
  auto store = std::make_unique<SqliteMetaStore>(db, path, env, options.busy_timeout);
  sqlite3_busy_timeout(db, static_cast<int>(options.busy_timeout.count()));
  std::vector<std::string> pragmas = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                                      "PRAGMA foreign_keys=ON"};
  if (options.max_page_count > 0) {
    pragmas.push_back("PRAGMA max_page_count=" + std::to_string(options.max_page_count));
  }
  for (const std::string& pragma : pragmas) {
    char* err = nullptr;
    if (sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      sqlite3_free(err);
      return SqliteError(db, path, pragma);
    }
  }
  RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<MetaStore>(std::move(store));
}

Status CopySqliteDatabase(const std::string& src_path, const std::string& dest_path) {
  struct stat st;
  if (stat(src_path.c_str(), &st) != 0) {
    return ErrnoError("metadata database " + src_path, errno);
  }
  sqlite3* src = nullptr;
  int rc = sqlite3_open_v2(src_path.c_str(), &src, SQLITE_OPEN_READONLY, nullptr);
  Status s;
  if (rc != SQLITE_OK) {
    s = src != nullptr ? SqliteError(src, src_path, "opening")
                       : ResourceExhaustedError("metadata database: out of memory");
  }
  if (s.ok()) s = CheckIntegrity(src, src_path);
  if (s.ok()) s = BackupDatabase(src, dest_path);
  sqlite3_close_v2(src);
  if (s.code() == StatusCode::kDataLoss && s.message().find(src_path) == std::string::npos) {
    s = DataLossError(s.message() + " (" + src_path + ")");
  }
  return s;
}

}  // namespace imagesmith::meta
