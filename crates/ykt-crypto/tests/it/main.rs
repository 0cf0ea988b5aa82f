//! Integration tests of ykt-crypto: vectors, cross-checks against the OpenSSL CLI, properties.

mod purse;
