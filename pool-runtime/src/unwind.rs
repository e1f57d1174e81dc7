//! Panic payload helpers and the abort guard.

use std::any::Any;

/// The human-readable message of a panic payload.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any> (a panic payload that is not a string)".to_string()
    }
}

/// Aborts the process when dropped; disarmed with [`AbortOnUnwind::disarm`].
///
/// Armed around code that must not unwind because unwinding there could let
/// a task outlive its scope (the scope-end wait, for instance).
#[derive(Debug)]
pub(crate) struct AbortOnUnwind(pub(crate) &'static str);

impl AbortOnUnwind {
    /// The guarded code finished without unwinding.
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!(
            "poolscope: fatal: {} unwound; aborting because borrowed data could otherwise be used after its scope",
            self.0
        );
        std::process::abort();
    }
}
