//! Audit events: every key use is reported to a caller-given sink, which the TSM chains into
//! its audit log. An event names the key and the operation, never material.

use std::sync::Mutex;

use crate::types::KeyId;

/// The operation an [`AuditEvent`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// A key was generated.
    Generate,
    /// A key was imported from clear material.
    Import,
    /// A key was imported wrapped (unwrapped inside the KMS).
    UnwrapImport,
    /// A key was derived and stored.
    Diversify,
    /// A key was destroyed.
    Destroy,
    /// A key was exported wrapped under another key.
    Wrap,
    /// Data was encrypted.
    Encrypt,
    /// A MAC was computed.
    Mac,
    /// A MAC was verified.
    VerifyMac,
    /// A signature was made.
    Sign,
    /// A signature was verified.
    Verify,
}

/// One key use. Holds identities, names and the caller's purpose; never material.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// The backend that did it (`software`, `pkcs11`).
    pub backend: &'static str,
    /// The operation.
    pub operation: Operation,
    /// The key used (for a derived key, the stored master it was derived from).
    pub key: KeyId,
    /// The names of the derivation steps applied to `key`, in order.
    pub derivations: Vec<&'static str>,
    /// The other key of the operation: the wrapping key of a wrap or unwrap, the master of a
    /// stored derivation.
    pub other_key: Option<KeyId>,
    /// The algorithm or mode, by name.
    pub algorithm: &'static str,
    /// The caller's purpose (for example `"PUT KEY SSD A000000151535041"`).
    pub purpose: String,
    /// Whether the operation succeeded.
    pub succeeded: bool,
}

/// Where audit events go. Called synchronously after every key use, successful or not.
pub trait AuditSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: &AuditEvent);
}

/// A sink that drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiscardAudit;

impl AuditSink for DiscardAudit {
    fn record(&self, _event: &AuditEvent) {}
}

/// A sink that keeps every event in memory (for tests and for a caller that drains them
/// into its own log).
#[derive(Debug, Default)]
pub struct MemoryAudit {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAudit {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the events recorded so far.
    pub fn take(&self) -> Vec<AuditEvent> {
        match self.events.lock() {
            Ok(mut events) => std::mem::take(&mut *events),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl AuditSink for MemoryAudit {
    fn record(&self, event: &AuditEvent) {
        match self.events.lock() {
            Ok(mut events) => events.push(event.clone()),
            Err(poisoned) => poisoned.into_inner().push(event.clone()),
        }
    }
}
