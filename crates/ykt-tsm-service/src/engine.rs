//! Flows as persisted, resumable state machines (being built).
