// Compute Gallery and managed image naming rules, resource types, IDs and
// the small enums their properties use (osType, osState, hyperVGeneration,
// storageAccountType), each parsed in one place with Azure's spelling.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/resource_id.h"
#include "base/statusor.h"

namespace imagesmith::gallery {

inline constexpr const char* kComputeNamespace = "Microsoft.Compute";
inline constexpr const char* kGalleryType = "Microsoft.Compute/galleries";
inline constexpr const char* kImageDefinitionType = "Microsoft.Compute/galleries/images";
inline constexpr const char* kImageVersionType = "Microsoft.Compute/galleries/images/versions";
inline constexpr const char* kManagedImageType = "Microsoft.Compute/images";

// Gallery names: 1-80 letters, digits, '_' and '.', not beginning or ending
// with '_' or '.'. InvalidArgument states the rule and the name.
Status ValidateGalleryName(std::string_view name);
// Image definition names: 1-80 letters, digits, '-', '_' and '.', beginning
// and ending with a letter or digit.
Status ValidateImageDefinitionName(std::string_view name);
// Managed image names: 1-80 letters, digits, '_', '-' and '.', beginning
// with a letter or digit and ending with a letter, digit or '_'.
Status ValidateManagedImageName(std::string_view name);
// publisher / offer / sku of a definition's identifier: 1-128 (publisher)
// or 1-64 (offer, sku) letters, digits, '-', '_' and '.'. `field` names the
// value in messages ("publisher").
Status ValidateIdentifierPart(std::string_view field, std::string_view value);

// Resource IDs.
ResourceId GalleryId(const ResourceId& group, const std::string& gallery);
ResourceId DefinitionId(const ResourceId& group, const std::string& gallery,
                        const std::string& definition);
ResourceId ManagedImageId(const ResourceId& group, const std::string& name);

// Accepts `id` when it is of `full_type`; otherwise InvalidArgument naming
// `field`, the ID and the expected shape.
Status CheckIdType(const ResourceId& id, std::string_view full_type, std::string_view field);

// Canonical spellings, parsed case-insensitively. InvalidArgument names
// `field`, the value and the allowed values.
StatusOr<std::string> ParseOsType(std::string_view field, std::string_view text);  // Linux, Windows
StatusOr<std::string> ParseOsState(std::string_view field,
                                   std::string_view text);  // Generalized, Specialized
StatusOr<std::string> ParseHyperVGeneration(std::string_view field,
                                            std::string_view text);  // V1, V2
// Standard_LRS, Standard_ZRS, Premium_LRS.
StatusOr<std::string> ParseStorageAccountType(std::string_view field, std::string_view text);

// An ISO 8601 date ("2027-01-31") or date-time ("2027-01-31T12:00:00Z",
// "...+02:00") as microseconds since the Unix epoch. InvalidArgument names
// `field` and shows the accepted forms.
StatusOr<int64_t> ParseDateTime(std::string_view field, std::string_view text);
// Azure's output form: "2027-01-31T12:00:00+00:00".
std::string FormatDateTime(int64_t micros);

}  // namespace imagesmith::gallery
