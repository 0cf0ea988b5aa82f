//! ykt-tsm-kms (being built).
