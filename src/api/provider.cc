#include "api/provider.h"

#include <cctype>

#include "api/arm_error.h"

namespace imagesmith::api {
namespace {

const char* VerbName(Verb verb) {
  switch (verb) {
    case Verb::kPut:
      return "PUT";
    case Verb::kPatch:
      return "PATCH";
    case Verb::kGet:
      return "GET";
    case Verb::kList:
      return "GET (list)";
    case Verb::kDelete:
      return "DELETE";
    case Verb::kAction:
      return "POST";
  }
  return "?";
}

Status NotAllowed(const Provider& p, const Request& r) {
  return ArmStatus(StatusCode::kUnimplemented, "MethodNotAllowed",
                   std::string(VerbName(r.verb)) + " is not supported for resources of type '" +
                       std::string(p.Type()) + "'");
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

StatusOr<Response> Provider::Put(Services&, const Request& r) { return NotAllowed(*this, r); }
StatusOr<Response> Provider::Patch(Services&, const Request& r) { return NotAllowed(*this, r); }
StatusOr<Response> Provider::Get(Services&, const Request& r) { return NotAllowed(*this, r); }
StatusOr<Response> Provider::List(Services&, const Request& r) { return NotAllowed(*this, r); }
StatusOr<Response> Provider::Delete(Services&, const Request& r) { return NotAllowed(*this, r); }
StatusOr<Response> Provider::Action(Services&, const Request& r) { return NotAllowed(*this, r); }

void Registry::Add(std::unique_ptr<Provider> provider) {
  std::string key = Lower(provider->Type());
  by_type_.emplace(std::move(key), std::move(provider));
}

Provider* Registry::Find(std::string_view full_type) const {
  auto it = by_type_.find(Lower(full_type));
  return it == by_type_.end() ? nullptr : it->second.get();
}

std::vector<const Provider*> Registry::providers() const {
  std::vector<const Provider*> out;
  for (const auto& [type, p] : by_type_) out.push_back(p.get());
  return out;
}

StatusOr<Response> Registry::Dispatch(Services& services, const Request& request) const {
  std::string type = request.verb == Verb::kList       ? request.list_type
                     : !request.extension_type.empty() ? request.extension_type
                                                       : request.id.FullType();
  Provider* p = Find(type);
  if (p == nullptr) {
    return ArmStatus(StatusCode::kNotFound, "InvalidResourceType",
                     "the resource type '" + type + "' is not provided by imagesmith");
  }
  switch (request.verb) {
    case Verb::kPut:
      return p->Put(services, request);
    case Verb::kPatch:
      return p->Patch(services, request);
    case Verb::kGet:
      return p->Get(services, request);
    case Verb::kList:
      return p->List(services, request);
    case Verb::kDelete:
      return p->Delete(services, request);
    case Verb::kAction:
      return p->Action(services, request);
  }
  return InternalError("unknown verb");
}

}  // namespace imagesmith::api
