#include "ccrypto.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

static void *libcrypto(void) {
    static void *handle;
    if (!handle) {
        handle = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            fprintf(stderr, "skiff: cannot load libcrypto.so.3 (%s); install it: apt-get install libssl3\n", dlerror());
            exit(125);
        }
    }
    return handle;
}

static void *symbol(const char *name) {
    void *f = dlsym(libcrypto(), name);
    if (!f) {
        fprintf(stderr, "skiff: libcrypto.so.3 has no %s; install libssl3 >= 3.0\n", name);
        exit(125);
    }
    return f;
}

#define RESOLVE(var, name)                         \
    static __typeof__(name) *var;                  \
    if (!var) *(void **)&var = symbol(#name);

void *sk_sha256_new(void) {
    RESOLVE(ctx_new, EVP_MD_CTX_new)
    RESOLVE(sha256, EVP_sha256)
    RESOLVE(init, EVP_DigestInit_ex)
    EVP_MD_CTX *ctx = ctx_new();
    if (!ctx || init(ctx, sha256(), NULL) != 1) {
        fprintf(stderr, "skiff: EVP_DigestInit_ex(sha256) failed: out of memory?\n");
        exit(125);
    }
    return ctx;
}

void sk_sha256_update(void *ctx, const void *bytes, size_t count) {
    RESOLVE(update, EVP_DigestUpdate)
    if (count > 0) update((EVP_MD_CTX *)ctx, bytes, count);
}

void sk_sha256_final(void *ctx, unsigned char out[32]) {
    RESOLVE(final, EVP_DigestFinal_ex)
    unsigned int len = 0;
    final((EVP_MD_CTX *)ctx, out, &len);
}

void sk_sha256_free(void *ctx) {
    RESOLVE(ctx_free, EVP_MD_CTX_free)
    ctx_free((EVP_MD_CTX *)ctx);
}
