/* What this binary is: version and the TLS library it was built with. */
#ifndef RINGGATE_VERSION_H
#define RINGGATE_VERSION_H

const char *ringgate_version(void);

/* "BoringSSL" or "OpenSSL 3.0.x ..." */
const char *ringgate_tls_library(void);

#endif
