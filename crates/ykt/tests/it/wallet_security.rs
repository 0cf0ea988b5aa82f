//! The wallet's security as a user's machine sees it: no secret in any output or file, the process not dumpable, purge.
