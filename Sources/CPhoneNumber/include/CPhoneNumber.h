#ifndef RELAY_CPHONENUMBER_H
#define RELAY_CPHONENUMBER_H

// A C face on Google's libphonenumber (Debian libphonenumber-dev, C++), exposing only what the
// relay needs, so Swift never sees C++ types.

#ifdef __cplusplus
extern "C" {
#endif

/// Parses `raw` (international form, or national form in `default_region`, an ISO 3166 code such
/// as "US") and writes its E.164 form, NUL-terminated, into `out`.
/// Returns the length written, or -1 when the text is not a possible phone number or `out` is too
/// small. libphonenumber does not document its thread safety: callers serialise calls.
int relay_phone_to_e164(const char *raw, const char *default_region, char *out, int capacity);

#ifdef __cplusplus
}
#endif

#endif
