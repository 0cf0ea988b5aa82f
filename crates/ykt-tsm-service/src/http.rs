//! The HTTP server and client (being built).
