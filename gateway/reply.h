/* The answers the gateway writes itself: status lines, reason phrases and
 * the contract's JSON error bodies. Pure formatting into a buffer. */
#ifndef RINGGATE_REPLY_H
#define RINGGATE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* "Not Found" for 404 ...; "Unknown" for a status we do not name. */
const char *http_reason(int status);

/* The contract's machine-readable error code for a status: "bad_request",
 * "not_found", "bad_gateway" ... */
const char *reply_error_code(int status);

/* Writes a whole error response: status line, Content-Type:
 * application/json, Content-Length, Connection (close unless keep_alive),
 * `extra_headers` (each line ending CRLF, may be NULL), and the body
 * {"error":"<code>","message":"<message>"} (message JSON-escaped).
 * Returns the length, or 0 when it does not fit in cap. */
size_t reply_error(char *out, size_t cap, int status, const char *message, bool keep_alive,
                   const char *extra_headers);

/* Same, with the error code given (NULL: the status's) and extra members
 * appended to the JSON object (",\"name\":value..." already encoded). */
size_t reply_error_json(char *out, size_t cap, int status, const char *code, const char *message,
                        const char *extra_members, bool keep_alive, const char *extra_headers);

/* `in` as the inside of a JSON string, NUL-terminated; (size_t)-1 when it
 * does not fit in cap. */
size_t json_string_escape(char *out, size_t cap, const char *in);

#endif
