#include "server/identity.h"

#include <memory>
#include <string>

#include "auth/oauth.h"
#include "auth/token.h"

namespace imagesmith::server {
namespace {

using Key = std::shared_ptr<const StatusOr<auth::SigningKey>>;

Key LoadKey(const api::Local& local) {
  return std::make_shared<const StatusOr<auth::SigningKey>>(
      auth::SigningKey::LoadOrCreate(local.services.data_dir));
}

}  // namespace

TokenVerifier MakeTokenVerifier(api::Local& local) {
  Key key = LoadKey(local);
  return [key](api::Services& services, std::string_view token) -> StatusOr<auth::Principal> {
    if (!key->ok()) return key->status();
    int64_t now_s = services.env->NowMicros() / 1'000'000;
    auth::Principal principal;
    Status s = services.meta->Read([&](meta::Transaction& txn) -> Status {
      ASSIGN_OR_RETURN(principal, auth::VerifyToken(txn, **key, token, now_s));
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return principal;
  };
}

TokenIssuer MakeTokenIssuer(api::Local& local) {
  Key key = LoadKey(local);
  return [key](api::Services& services, std::string_view tenant, std::string_view form_body) {
    TokenAnswer answer;
    if (!key->ok()) {
      answer.http_status = 500;
      answer.body = Json::MakeObject();
      answer.body.Set("error", Json::String("server_error"));
      answer.body.Set("error_description", Json::String(key->status().message()));
      return answer;
    }
    auth::OAuthResponse r =
        auth::HandleClientCredentials(*services.env, *services.meta, **key, tenant, form_body);
    answer.http_status = r.http_status;
    answer.body = std::move(r.body);
    return answer;
  };
}

}  // namespace imagesmith::server
