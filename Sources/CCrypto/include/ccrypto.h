#ifndef SKIFF_CCRYPTO_H
#define SKIFF_CCRYPTO_H
#include <stddef.h>

/* SHA-256 through OpenSSL's libcrypto (EVP), which is dlopen()ed on first use: most skiff
   commands never hash, and not linking it saves every process the library's load and
   relocation (about 0.6 ms and 0.8 MiB resident). A missing libcrypto.so.3 exits 125 with the
   package to install. */

/* A new context with EVP_sha256() initialised; never NULL (exits on allocation failure). */
void *sk_sha256_new(void);
void sk_sha256_update(void *ctx, const void *bytes, size_t count);
/* Writes the 32-byte digest to out. */
void sk_sha256_final(void *ctx, unsigned char out[32]);
void sk_sha256_free(void *ctx);

#endif
