/* The OpenSSL peer of the TAC verification benchmark (scripts/bench-tac): the same work as
 * `ykt_terminal::tac::verify_tac` per record, through OpenSSL's EVP interface.
 *
 *   tac_peer 3des|sm4 FILE
 *
 * FILE holds 38-byte rows written by crates/ykt-terminal/examples/tac_rate.rs: diversifier (8) ||
 * TAC input (22) || pad (4) || TAC (4). Per row, as the back office does (e-purse.md §3.2, §5.5):
 *   3DES: DTK = 3DES-ECB(MK, DIV || NOT DIV); K_TAC = DTK_L xor DTK_R; TAC = first 4 bytes of the
 *         last block of DES-CBC(K_TAC, IV 0, input || 80 00); compare.
 *   SM4:  DTK = SM4-ECB(MK, DIV || NOT DIV); TAC = first 4 bytes of the last block of
 *         SM4-CBC(DTK, IV 0, input || 80 00..); compare (the brief's §5.7 rules, as Sm4Rules::BRIEF).
 * The master key's schedule is expanded once; each card's key is set up per record.
 * Single DES comes from OpenSSL 3's legacy provider. Prints: openssl <alg> <records> <s> <rec/s>.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROW 38

static const unsigned char MASTER[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                         0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF};

static void die(const char *what) {
    fprintf(stderr, "tac_peer: %s\n", what);
    exit(1);
}

static int run(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *c, const unsigned char *key,
               const unsigned char *iv, const unsigned char *in, int len, unsigned char *out) {
    int n = 0;
    if (!EVP_EncryptInit_ex2(ctx, c, key, iv, NULL)) return 0;
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    if (!EVP_EncryptUpdate(ctx, out, &n, in, len)) return 0;
    return n == len;
}

int main(int argc, char **argv) {
    if (argc != 3) die("usage: tac_peer 3des|sm4 FILE");
    int sm4 = strcmp(argv[1], "sm4") == 0;
    if (!sm4 && strcmp(argv[1], "3des") != 0) die("algorithm must be 3des or sm4");
    FILE *f = fopen(argv[2], "rb");
    if (!f) die("cannot open the record file");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size <= 0 || size % ROW) die("record file has a wrong size");
    unsigned char *rows = malloc(size);
    if (!rows || fread(rows, 1, size, f) != (size_t)size) die("cannot read the record file");
    fclose(f);
    long count = size / ROW;

    if (!OSSL_PROVIDER_load(NULL, "legacy") || !OSSL_PROVIDER_load(NULL, "default"))
        die("cannot load the OpenSSL legacy and default providers");
    EVP_CIPHER *ecb = EVP_CIPHER_fetch(NULL, sm4 ? "SM4-ECB" : "DES-EDE-ECB", NULL);
    EVP_CIPHER *cbc = EVP_CIPHER_fetch(NULL, sm4 ? "SM4-CBC" : "DES-CBC", NULL);
    if (!ecb || !cbc) die("cipher not available");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    /* The master key's schedule is set up once and reused (ECB keeps no state between whole
     * blocks), as the measured side's TacVerifier does. */
    EVP_CIPHER_CTX *mctx = EVP_CIPHER_CTX_new();
    if (!ctx || !mctx || !EVP_EncryptInit_ex2(mctx, ecb, MASTER, NULL, NULL)) die("EVP setup");
    EVP_CIPHER_CTX_set_padding(mctx, 0);
    unsigned char zero[16] = {0};

    for (int pass = 0; pass < 2; pass++) { /* pass 0: warm-up over 1,000 rows */
        long n = pass == 0 ? (count < 1000 ? count : 1000) : count;
        long good = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < n; i++) {
            const unsigned char *r = rows + i * ROW;
            unsigned char div[16], dtk[16], buf[32], out[32], ktac[8];
            memcpy(div, r, 8);
            for (int j = 0; j < 8; j++) div[8 + j] = (unsigned char)~r[j];
            int dn = 0;
            if (!EVP_EncryptUpdate(mctx, dtk, &dn, div, 16) || dn != 16) die("diversification failed");
            int len = sm4 ? 32 : 24;
            memset(buf, 0, sizeof buf);
            memcpy(buf, r + 8, 22);
            buf[22] = 0x80;
            const unsigned char *key = dtk;
            if (!sm4) {
                for (int j = 0; j < 8; j++) ktac[j] = dtk[j] ^ dtk[8 + j];
                key = ktac;
            }
            if (!run(ctx, cbc, key, zero, buf, len, out)) die("MAC failed");
            int block = sm4 ? 16 : 8;
            if (CRYPTO_memcmp(out + len - block, r + 34, 4) == 0) good++;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (good != n) die("a TAC did not verify: the peer does not match the formulas");
        if (pass == 1) {
            double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
            printf("openssl %s %ld %.6f %.0f\n", argv[1], count, s, count / s);
        }
    }
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_CTX_free(mctx);
    EVP_CIPHER_free(ecb);
    EVP_CIPHER_free(cbc);
    free(rows);
    return 0;
}
