//! ykt-envelope (being built).
