// A structure-aware mutator for JSON fuzz inputs (libFuzzer's custom mutator).
//
// Byte-level mutation rarely turns a valid template into another valid
// document with one property of the wrong type: it breaks the JSON first.
// This mutator parses the input, picks one value and changes its *type* or
// its shape (a string where an array was, an array around a string, a number
// in place of an object, a known property added with an odd value, keys
// re-cased, elements duplicated), then prints the document again. That is how
// a template fuzzer finds code that assumes a property's type, such as
// replicationRegions given as a string.
//
// Pure functions; `seed` makes every choice, so a run can be replayed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace imagesmith::fuzz {

// Returns the mutated document, or "" when `input` is not JSON (the caller
// then falls back to byte-level mutation). `known_names` are property names
// to add to objects (the schema's); `odd_strings` are string values to try.
std::string MutateJsonStructure(const std::string& input, uint32_t seed,
                                const std::vector<std::string>& known_names,
                                const std::vector<std::string>& odd_strings);

}  // namespace imagesmith::fuzz
