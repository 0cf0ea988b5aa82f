//! ykt-wallet (being built).
