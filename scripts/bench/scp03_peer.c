/* The OpenSSL peer of the secure-channel benchmark (scripts/bench-scp03): the same work as one
 * exchange of crates/ykt-scp/examples/scp03_rate.rs at security level 33, through OpenSSL's EVP
 * interface, for AES-128 and SM4.
 *
 *   scp03_peer aes128|sm4 EXCHANGES DATA_LEN [keyed]
 *
 * Per exchange (GP Amendment D §6.2.4-§6.2.7, the crate's `channel` module):
 *   host:  ICV = ECB(S-ENC, counter); data' = CBC(S-ENC, ICV, data || 80 00..);
 *          C-MAC = CMAC(S-MAC, chain || 84 INS P1 P2 Lc || data'); chain = C-MAC
 *   card:  the same CMAC, compared; ICV again; CBC-decrypt data'; padding checked
 *   card:  ICV = ECB(S-ENC, 80 || counter); resp' = CBC(S-ENC, ICV, resp || 80 00..);
 *          R-MAC = CMAC(S-RMAC, chain || resp' || 90 00)
 *   host:  the same CMAC, compared; ICV again; CBC-decrypt resp'; padding checked
 * By default every call sets its key up again, as the measured side does; with `keyed`, each key
 * has its own contexts, set up once, and calls change only the IV (OpenSSL's best case). The
 * session keys are fixed (the handshake is not timed on either side).
 * Prints: openssl[-keyed] <cipher> <exchanges> <len> <s> <exchanges/s>.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what) {
    fprintf(stderr, "scp03_peer: %s\n", what);
    exit(1);
}

static EVP_CIPHER *ecb, *cbc;
static EVP_MAC *cmac;
static EVP_CIPHER_CTX *cctx;
static EVP_MAC_CTX *mctx;
static OSSL_PARAM mparams[2];
static int keyed;
/* keyed mode: one context per (cipher, direction) and per MAC key, keyed once. */
static EVP_CIPHER_CTX *kctx[2][2];
static EVP_MAC_CTX *kmac[2];
static const unsigned char *kmac_key[2];

static void cipher(int enc, const EVP_CIPHER *c, const unsigned char *key, const unsigned char *iv,
                   const unsigned char *in, int len, unsigned char *out) {
    int n = 0;
    EVP_CIPHER_CTX *ctx = cctx;
    if (keyed) {
        ctx = kctx[c == cbc][enc];
        if (!EVP_CipherInit_ex2(ctx, NULL, NULL, iv, enc, NULL)) die("cipher reinit");
    } else {
        if (!EVP_CipherInit_ex2(ctx, c, key, iv, enc, NULL)) die("cipher init");
        EVP_CIPHER_CTX_set_padding(ctx, 0);
    }
    if (!EVP_CipherUpdate(ctx, out, &n, in, len) || n != len) die("cipher");
}

static void mac(const unsigned char *key, const unsigned char *in, size_t len, unsigned char *out) {
    size_t n = 0;
    EVP_MAC_CTX *ctx = mctx;
    if (keyed) {
        ctx = kmac[key == kmac_key[1]];
        if (!EVP_MAC_init(ctx, NULL, 0, NULL)) die("cmac reinit");
    } else if (!EVP_MAC_init(ctx, key, 16, mparams)) {
        die("cmac init");
    }
    if (!EVP_MAC_update(ctx, in, len) || !EVP_MAC_final(ctx, out, &n, 16) || n != 16) die("cmac");
}

static int pad(const unsigned char *in, int len, unsigned char *out) {
    int padded = (len / 16 + 1) * 16;
    memcpy(out, in, len);
    out[len] = 0x80;
    memset(out + len + 1, 0, padded - len - 1);
    return padded;
}

static int unpad_len(const unsigned char *buf, int len) {
    int i = len - 1;
    while (i >= 0 && buf[i] == 0) i--;
    if (i < 0 || buf[i] != 0x80) die("bad padding");
    return i;
}

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "keyed") == 0))
        die("usage: scp03_peer aes128|sm4 EXCHANGES DATA_LEN [keyed]");
    keyed = argc == 5;
    int sm4 = strcmp(argv[1], "sm4") == 0;
    long count = atol(argv[2]);
    int len = atoi(argv[3]);
    if (len < 1 || len > 220) die("DATA_LEN must be 1..220");
    ecb = EVP_CIPHER_fetch(NULL, sm4 ? "SM4-ECB" : "AES-128-ECB", NULL);
    cbc = EVP_CIPHER_fetch(NULL, sm4 ? "SM4-CBC" : "AES-128-CBC", NULL);
    cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    if (!ecb || !cbc || !cmac) die("algorithm not available");
    cctx = EVP_CIPHER_CTX_new();
    mctx = EVP_MAC_CTX_new(cmac);
    mparams[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
                                                  sm4 ? "SM4-CBC" : "AES-128-CBC", 0);
    mparams[1] = OSSL_PARAM_construct_end();

    unsigned char s_enc[16], s_mac[16], s_rmac[16], chain[16] = {0};
    for (int i = 0; i < 16; i++) {
        s_enc[i] = 0x40 + i;
        s_mac[i] = 0x50 + i;
        s_rmac[i] = 0x60 + i;
    }
    unsigned char data[256], resp[256], padded[272], enc[272], dec[272], icv[16], ctr[16];
    unsigned char input[320], m1[16], m2[16];
    for (int i = 0; i < len; i++) {
        data[i] = (unsigned char)i;
        resp[i] = (unsigned char)(i * 7);
    }
    if (keyed) {
        for (int k = 0; k < 2; k++)
            for (int d = 0; d < 2; d++) {
                kctx[k][d] = EVP_CIPHER_CTX_new();
                if (!kctx[k][d] || !EVP_CipherInit_ex2(kctx[k][d], k ? cbc : ecb, s_enc, k ? chain : NULL, d, NULL))
                    die("keyed cipher setup");
                EVP_CIPHER_CTX_set_padding(kctx[k][d], 0);
            }
        kmac_key[0] = s_mac;
        kmac_key[1] = s_rmac;
        for (int k = 0; k < 2; k++) {
            kmac[k] = EVP_MAC_CTX_new(cmac);
            if (!kmac[k] || !EVP_MAC_init(kmac[k], kmac_key[k], 16, mparams)) die("keyed cmac setup");
        }
    }
    unsigned long counter = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0: warm-up of 1,000 exchanges */
        long n = pass == 0 ? 1000 : count;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long e = 0; e < n; e++) {
            counter++;
            memset(ctr, 0, 16);
            for (int b = 0; b < 8; b++) ctr[15 - b] = (unsigned char)(counter >> (8 * b));
            /* host wrap */
            cipher(1, ecb, s_enc, NULL, ctr, 16, icv);
            int plen = pad(data, len, padded);
            cipher(1, cbc, s_enc, icv, padded, plen, enc);
            unsigned char hdr[5] = {0x84, 0xE2, 0x90, 0x00, (unsigned char)(plen + 8)};
            memcpy(input, chain, 16);
            memcpy(input + 16, hdr, 5);
            memcpy(input + 21, enc, plen);
            mac(s_mac, input, 21 + plen, m1);
            /* card unwrap */
            mac(s_mac, input, 21 + plen, m2);
            if (CRYPTO_memcmp(m1, m2, 8)) die("C-MAC mismatch");
            memcpy(chain, m2, 16);
            cipher(1, ecb, s_enc, NULL, ctr, 16, icv);
            cipher(0, cbc, s_enc, icv, enc, plen, dec);
            if (unpad_len(dec, plen) != len) die("C-DEC length");
            /* card wrap_response */
            ctr[0] = 0x80;
            cipher(1, ecb, s_enc, NULL, ctr, 16, icv);
            int rlen = pad(resp, len, padded);
            cipher(1, cbc, s_enc, icv, padded, rlen, enc);
            memcpy(input, chain, 16);
            memcpy(input + 16, enc, rlen);
            input[16 + rlen] = 0x90;
            input[17 + rlen] = 0x00;
            mac(s_rmac, input, 18 + rlen, m1);
            /* host unwrap */
            mac(s_rmac, input, 18 + rlen, m2);
            if (CRYPTO_memcmp(m1, m2, 8)) die("R-MAC mismatch");
            cipher(1, ecb, s_enc, NULL, ctr, 16, icv);
            cipher(0, cbc, s_enc, icv, enc, rlen, dec);
            if (unpad_len(dec, rlen) != len || memcmp(dec, resp, len)) die("R-ENC");
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (pass == 1) {
            double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
            printf("openssl%s %s %ld %d %.6f %.0f\n", keyed ? "-keyed" : "", argv[1], count, len, s,
                   count / s);
        }
    }
    EVP_MAC_CTX_free(mctx);
    EVP_CIPHER_CTX_free(cctx);
    EVP_MAC_free(cmac);
    EVP_CIPHER_free(ecb);
    EVP_CIPHER_free(cbc);
    return 0;
}
