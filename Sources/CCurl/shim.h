#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H

// curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic, which Swift cannot
// call. Each wrapper below fixes the type of the third argument so the compiler (and libcurl,
// which reads it with va_arg) agree on it. libcurl reads "long" options as long, not int:
// passing an int through the variadic call is undefined behaviour on LP64, so never shortcut.

// The gcc type-checking macros would rewrite curl_easy_setopt into a statement expression;
// the wrappers already give the argument its exact type.
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

// MARK: - easy handle options

static inline CURLcode ccurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

// Used for both CURLOPT_WRITEFUNCTION and CURLOPT_HEADERFUNCTION: they share one signature.
static inline CURLcode ccurl_easy_setopt_write_callback(CURL *handle, CURLoption option, curl_write_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode ccurl_easy_setopt_xferinfo_callback(
    CURL *handle, CURLoption option, curl_xferinfo_callback value
) {
    return curl_easy_setopt(handle, option, value);
}

// MARK: - easy handle info

static inline CURLcode ccurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode ccurl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode ccurl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode ccurl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

// MARK: - multi handle options

static inline CURLMcode ccurl_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

// MARK: - macro constants Swift does not import

// Expression macros (an OR of two macros) are not imported by Swift.
static const long CCURL_GLOBAL_ALL = CURL_GLOBAL_ALL;

// Returning anything other than the number of bytes handed in aborts the transfer with
// CURLE_WRITE_ERROR; this is the documented value for "abort" (7.87.0+).
static const size_t CCURL_WRITEFUNC_ERROR = CURL_WRITEFUNC_ERROR;

#endif
