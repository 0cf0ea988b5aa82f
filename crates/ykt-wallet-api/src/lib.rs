//! ykt-wallet-api (being built).
