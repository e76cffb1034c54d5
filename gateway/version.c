/* Version strings for -V and ringgate_build_info. */
#include "version.h"

#include <openssl/crypto.h>

const char *ringgate_version(void)
{
    return RINGGATE_VERSION;
}

const char *ringgate_tls_library(void)
{
#ifdef OPENSSL_IS_BORINGSSL
    return "BoringSSL";
#else
    return OpenSSL_version(OPENSSL_VERSION);
#endif
}
