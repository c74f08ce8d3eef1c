#include "base/resource_id.h"

#include "base/strings.h"

namespace imagesmith {

namespace {

constexpr std::string_view kShape =
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}/providers/{Namespace}/"
    "{type}/{name}";

bool IsNamespaceChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.';
}

// A resource name segment may not contain control characters or characters
// ARM forbids in every resource name.
Status ValidateSegmentName(std::string_view name, std::string_view what) {
  if (name.size() > 260) {
    return InvalidArgumentError(std::string(what) + " is " + std::to_string(name.size()) +
                                " characters long; the limit is 260");
  }
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || c == '<' || c == '>' || c == '%' || c == '&' || c == '\\' || c == '?' ||
        c == '#') {
      return InvalidArgumentError(std::string(what) + " " + QuoteForMessage(name) +
                                  " contains a character not allowed in resource names "
                                  "(control characters and < > % & \\ ? #)");
    }
  }
  return Status::Ok();
}

}  // namespace

bool IsGuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

Status ValidateResourceGroupName(std::string_view name) {
  if (name.empty() || name.size() > 90) {
    return InvalidArgumentError("resource group name " + QuoteForMessage(name) +
                                " must be 1-90 characters long");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == '(' || c == ')' ||
              (static_cast<unsigned char>(c) >= 0x80);  // Unicode letters are allowed
    if (!ok) {
      return InvalidArgumentError("resource group name " + QuoteForMessage(name) +
                                  " may contain only letters, digits, '_', '-', '.', '(' and ')'");
    }
  }
  if (name.back() == '.') {
    return InvalidArgumentError("resource group name " + QuoteForMessage(name) +
                                " must not end with '.'");
  }
  return Status::Ok();
}

StatusOr<ResourceId> ResourceId::Parse(std::string_view text) {
  auto fail = [&](const std::string& why) {
    return InvalidArgumentError("not a valid resource ID: " + why + "; expected " +
                                std::string(kShape));
  };
  if (text.empty()) return fail("it is empty");
  if (text[0] != '/') return fail("it must start with '/'");
  if (text.size() > 2048) return fail("it is longer than 2048 characters");
  std::vector<std::string> seg = Split(text.substr(1), '/');
  for (size_t i = 0; i < seg.size(); ++i) {
    if (seg[i].empty()) {
      return fail(i + 1 == seg.size() ? "it ends with '/'" : "it contains an empty segment ('//')");
    }
  }
  ResourceId id;
  if (!EqualsIgnoreCase(seg[0], "subscriptions")) {
    return fail("the first segment is " + QuoteForMessage(seg[0]) + ", not 'subscriptions'");
  }
  if (seg.size() < 2) return fail("the subscription ID is missing");
  if (!IsGuid(seg[1])) {
    return fail("the subscription ID " + QuoteForMessage(seg[1]) +
                " is not a GUID (run 'imagesmith account show' to see yours)");
  }
  id.subscription_ = AsciiToLower(seg[1]);
  if (seg.size() == 2) return id;
  if (!EqualsIgnoreCase(seg[2], "resourceGroups")) {
    return fail("expected 'resourceGroups' after the subscription, found " +
                QuoteForMessage(seg[2]));
  }
  if (seg.size() < 4) return fail("the resource group name is missing");
  Status rg = ValidateResourceGroupName(seg[3]);
  if (!rg.ok()) return fail(rg.message());
  id.resource_group_ = seg[3];
  id.kind_ = Kind::kResourceGroup;
  if (seg.size() == 4) return id;
  if (!EqualsIgnoreCase(seg[4], "providers")) {
    return fail("expected 'providers' after the resource group, found " + QuoteForMessage(seg[4]));
  }
  if (seg.size() < 6) return fail("the provider namespace is missing");
  const std::string& ns = seg[5];
  bool ns_ok = ns.find('.') != std::string::npos && ns.front() != '.' && ns.back() != '.';
  for (char c : ns) ns_ok = ns_ok && IsNamespaceChar(c);
  if (!ns_ok) {
    return fail("the provider namespace " + QuoteForMessage(ns) +
                " is not of the form Company.Service (e.g. Microsoft.Compute)");
  }
  id.namespace_ = ns;
  if (seg.size() < 8) {
    return fail(seg.size() == 6
                    ? "the resource type and name are missing after " + ns
                    : "the resource name is missing after type " + QuoteForMessage(seg[6]));
  }
  for (size_t i = 6; i < seg.size(); i += 2) {
    if (i + 1 >= seg.size()) {
      return fail("the name is missing after type " + QuoteForMessage(seg[i]));
    }
    Status s = ValidateSegmentName(seg[i + 1], "the " + seg[i] + " name");
    if (!s.ok()) return fail(s.message());
    id.types_.push_back({seg[i], seg[i + 1]});
  }
  id.kind_ = Kind::kResource;
  return id;
}

ResourceId ResourceId::ForSubscription(std::string subscription) {
  ResourceId id;
  id.subscription_ = std::move(subscription);
  return id;
}

ResourceId ResourceId::ForResourceGroup(std::string subscription, std::string resource_group) {
  ResourceId id = ForSubscription(std::move(subscription));
  id.kind_ = Kind::kResourceGroup;
  id.resource_group_ = std::move(resource_group);
  return id;
}

ResourceId ResourceId::ForResource(std::string subscription, std::string resource_group,
                                   std::string provider_namespace, std::string type,
                                   std::string name) {
  ResourceId id = ForResourceGroup(std::move(subscription), std::move(resource_group));
  id.kind_ = Kind::kResource;
  id.namespace_ = std::move(provider_namespace);
  id.types_.push_back({std::move(type), std::move(name)});
  return id;
}

std::string ResourceId::FullType() const {
  switch (kind_) {
    case Kind::kSubscription:
      return "Microsoft.Resources/subscriptions";
    case Kind::kResourceGroup:
      return "Microsoft.Resources/resourceGroups";
    case Kind::kResource:
      break;
  }
  std::string t = namespace_;
  for (const TypeAndName& tn : types_) t += "/" + tn.type;
  return t;
}

bool ResourceId::IsType(std::string_view full_type) const {
  return EqualsIgnoreCase(FullType(), full_type);
}

const std::string& ResourceId::name() const {
  switch (kind_) {
    case Kind::kSubscription:
      return subscription_;
    case Kind::kResourceGroup:
      return resource_group_;
    case Kind::kResource:
      break;
  }
  return types_.back().name;
}

ResourceId ResourceId::Child(std::string type, std::string name) const {
  ResourceId id = *this;
  id.types_.push_back({std::move(type), std::move(name)});
  return id;
}

ResourceId ResourceId::Parent() const {
  ResourceId id = *this;
  switch (kind_) {
    case Kind::kSubscription:
      return id;
    case Kind::kResourceGroup:
      id.kind_ = Kind::kSubscription;
      id.resource_group_.clear();
      return id;
    case Kind::kResource:
      id.types_.pop_back();
      if (id.types_.empty()) {
        id.kind_ = Kind::kResourceGroup;
        id.namespace_.clear();
      }
      return id;
  }
  return id;
}

std::string ResourceId::ToString() const {
  std::string s = "/subscriptions/" + subscription_;
  if (kind_ == Kind::kSubscription) return s;
  s += "/resourceGroups/" + resource_group_;
  if (kind_ == Kind::kResourceGroup) return s;
  s += "/providers/" + namespace_;
  for (const TypeAndName& tn : types_) s += "/" + tn.type + "/" + tn.name;
  return s;
}

bool operator==(const ResourceId& a, const ResourceId& b) {
  return EqualsIgnoreCase(a.ToString(), b.ToString());
}

bool operator<(const ResourceId& a, const ResourceId& b) {
  return AsciiToLower(a.ToString()) < AsciiToLower(b.ToString());
}

}  // namespace imagesmith
