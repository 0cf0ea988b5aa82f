//! National (SM2/SM3/SM4) and 3DES/AES crypto glue over RustCrypto: PBOC MACs, CMAC, key diversification, e-purse session keys; no I/O
#![no_std]
