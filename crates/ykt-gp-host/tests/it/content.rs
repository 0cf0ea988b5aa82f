//! INSTALL, LOAD, DELETE and STORE DATA against the card manager.
