/* TLS over memory: the glue between the ring (which moves ciphertext) and
 * BoringSSL or OpenSSL 3 (which turns it into plaintext). Nothing here touches
 * a socket: the caller feeds the ciphertext it receives in with tls_feed, and
 * after every call sends whatever tls_pending_output holds (handshake
 * flights, alerts, tickets, close_notify, encrypted data).
 *
 * A context (struct tls_context) is built once per listener or upstream from
 * the configuration, then shared by every worker thread. A connection (struct
 * tls_conn) belongs to one worker thread. A server connection runs
 * tls_handshake to TLS_DONE before tls_read and tls_write. */
#ifndef RINGGATE_TLS_H
#define RINGGATE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Protocol versions, as on the wire. */
#define TLS_VERSION_1_2 0x0303
#define TLS_VERSION_1_3 0x0304

#define TLS_SESSION_CACHE_DEFAULT 20480         /* sessions in a server's cache */
#define TLS_TICKET_ROTATION_DEFAULT (12 * 3600) /* seconds */

/* Past this much unsent ciphertext, tls_write accepts nothing more. */
#define TLS_OUTPUT_HIGH_WATER (64 * 1024)

struct tls_context;
struct tls_conn;
struct tls_session; /* a client's resumable session */

struct tls_certificate_files {
    const char *cert_file; /* PEM: leaf first, then its chain */
    const char *key_file;  /* PEM, unencrypted */
};

struct tls_context_params {
    /* The certificate for a connection is picked by SNI among their DNS
     * names (subjectAltName, or the subject CN when there is none; exact
     * names before "*.example.com" wildcards). The first one answers
     * everything else. */
    const struct tls_certificate_files *certificates;
    size_t certificate_count;
    uint16_t min_version;      /* TLS_VERSION_1_2 (0 means this) or _1_3 */
    const char *const *alpn;   /* protocols by preference, e.g. "http/1.1"; */
    size_t alpn_count;         /* a client offering none of them is refused */
    size_t session_cache_size; /* 0: TLS_SESSION_CACHE_DEFAULT */
    unsigned ticket_rotation;  /* seconds between ticket keys, and the
                                * lifetime of a session; 0: default */
    bool disable_session_cache;
    bool disable_tickets;
};

struct tls_client_params {
    const char *ca_file;  /* PEM bundle; NULL: the system's trust store */
    bool verify;          /* chain, and host name when one is given */
    uint16_t min_version; /* 0: TLS_VERSION_1_2 */
    uint16_t max_version; /* 0: TLS_VERSION_1_3 */
    const char *const *alpn;
    size_t alpn_count;
};

/* Results of tls_handshake; tls_read and tls_write return the last three. */
enum tls_status {
    TLS_DONE = 0,
    TLS_WANT_INPUT = 1,      /* feed more ciphertext */
    TLS_ERROR = -1,          /* fatal; tls_conn_error() says why. Send the
                              * pending output (an alert), then close. */
    TLS_CLOSED = -2,         /* the peer sent close_notify */
    TLS_PLAINTEXT_HTTP = -3, /* a server got an HTTP request, not TLS:
                              * count it and close (nothing to send) */
};

/* Both return NULL and a message in err (to which the caller adds the
 * configuration's FILE:LINE:COL) when something is wrong: unreadable file,
 * no certificate or key in it, key that does not match, certificate expired
 * or not yet valid, bad ALPN name. */
struct tls_context *tls_context_new(const struct tls_context_params *p, char *err, size_t err_size);
struct tls_context *tls_client_context_new(const struct tls_client_params *p, char *err,
                                           size_t err_size);
void tls_context_free(struct tls_context *ctx);

/* Session ticket keys: a new one every ticket_rotation seconds, the previous
 * kept to decrypt (and renew) the tickets it issued. Rotating by hand starts
 * a new key now; copying lets a reloaded configuration resume the sessions
 * the old one issued. */
void tls_context_rotate_ticket_keys(struct tls_context *ctx);
void tls_context_copy_ticket_keys(struct tls_context *to, struct tls_context *from);

/* A connection keeps its context alive: tls_context_free may come first.
 * Servers take a server context, clients a client one (else NULL). */
struct tls_conn *tls_conn_new(struct tls_context *ctx);
/* sni: host name to send and (with verify) to check the certificate against;
 * an IP address is checked but not sent; NULL sends and checks nothing. */
struct tls_conn *tls_conn_new_client(struct tls_context *ctx, const char *sni);
void tls_conn_free(struct tls_conn *conn);

/* Copies ciphertext received from the peer; -1 when out of memory. */
int tls_feed(struct tls_conn *conn, const void *data, size_t len);
size_t tls_input_len(const struct tls_conn *conn);

enum tls_status tls_handshake(struct tls_conn *conn);

/* Plaintext bytes (> 0), 0 when more ciphertext is needed, or TLS_CLOSED,
 * TLS_ERROR. Messages after the handshake (TLS 1.3 tickets, key updates)
 * are handled inside. */
ssize_t tls_read(struct tls_conn *conn, void *buf, size_t cap);

/* Bytes of plaintext accepted (encrypted into the output), 0 when the
 * output already holds TLS_OUTPUT_HIGH_WATER bytes (send first), or
 * TLS_CLOSED, TLS_ERROR. A BoringSSL server's TLS 1.3 tickets leave with
 * its first write. */
ssize_t tls_write(struct tls_conn *conn, const void *data, size_t len);

/* Queues close_notify; -1 when the connection is not in a state to. */
int tls_shutdown(struct tls_conn *conn);

/* Ciphertext to send, without copying: the bytes stay where they are until
 * tls_consume_output (or tls_conn_free), whatever else is called meanwhile,
 * so they can sit in the ring. tls_pending_output gives the first piece and
 * returns the total; tls_output_iov fills up to max pieces, returns count. */
size_t tls_pending_output(const struct tls_conn *conn, const void **data, size_t *len);
int tls_output_iov(const struct tls_conn *conn, struct iovec *iov, int max);
void tls_consume_output(struct tls_conn *conn, size_t n);

/* What the handshake settled. */
bool tls_conn_is_server(const struct tls_conn *conn);
uint16_t tls_conn_version(const struct tls_conn *conn);         /* TLS_VERSION_* */
const char *tls_conn_version_name(const struct tls_conn *conn); /* "TLSv1.3" */
const char *tls_conn_cipher(const struct tls_conn *conn);
const char *tls_conn_alpn(const struct tls_conn *conn, size_t *len); /* NULL: none */
const char *tls_conn_server_name(const struct tls_conn *conn);       /* NULL: none */
int tls_conn_certificate(const struct tls_conn *conn);               /* index served; server */
bool tls_conn_resumed(const struct tls_conn *conn);
const char *tls_conn_error(const struct tls_conn *conn); /* after a failure */

/* A client's newest resumable session (NULL if none yet: TLS 1.3 tickets
 * arrive after the handshake, through tls_read), to offer on the next
 * connection to the same server, before its handshake. Take the newest after
 * each connection: a TLS 1.3 session is for one resumption. */
struct tls_session *tls_conn_session(struct tls_conn *conn);
bool tls_conn_set_session(struct tls_conn *conn, struct tls_session *session);
void tls_session_free(struct tls_session *session);

#endif
