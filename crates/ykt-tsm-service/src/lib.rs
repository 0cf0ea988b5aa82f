//! ykt-tsm-service (being built).
