// Small string helpers shared by every layer. All functions are pure and
// thread-safe. Case-insensitive comparisons fold ASCII only, as Azure does for
// property names, enum values and resource IDs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace imagesmith {

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
std::string AsciiToLower(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);
// Splits on every `sep`; empty pieces are kept ("a//b" gives "a", "", "b").
std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view TrimWhitespace(std::string_view s);
bool IsAsciiDigits(std::string_view s);

// Optimal-string-alignment edit distance (insertions, deletions,
// substitutions and adjacent transpositions), case-insensitive.
int EditDistanceIgnoreCase(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a plausible
// typo (distance at most max(1, len/3)), or "" if none is.
std::string ClosestMatch(std::string_view word, const std::vector<std::string>& candidates);

// Quotes `s` for a message: "foo" with control characters escaped and very
// long values shortened in the middle, so user input cannot garble output.
std::string QuoteForMessage(std::string_view s, size_t max_len = 120);

}  // namespace imagesmith
