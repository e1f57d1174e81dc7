//! Panic payload helpers, panic locations, and the abort guard.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::error::PanicLocation;

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

std::thread_local! {
    /// Where the latest panic on this thread happened, as the hook saw it.
    /// A std thread-local even under loom: it is a diagnostic that orders
    /// nothing between threads.
    static LAST_PANIC: RefCell<Option<PanicLocation>> = const { RefCell::new(None) };
    /// How many panics the hook saw on this thread: `catch` compares it
    /// before and after, so a location is only ever the caught panic's own.
    static PANICS_SEEN: Cell<u64> = const { Cell::new(0) };
    /// The name of the `#[pool_task]` function a panic unwound out of, with
    /// the `PANICS_SEEN` count it belongs to (see `TaskName`).
    static PANICKED_TASK: Cell<(u64, Option<&'static str>)> = const { Cell::new((0, None)) };
}

/// Puts a hook in front of the process's panic hook that notes each panic's
/// location for [`catch`], then runs the previous hook unchanged (so the
/// user's hook, or the default message on stderr, behaves as before).
/// Installed once, when the first pool is built.
pub(crate) fn install_location_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let Some(location) = info.location() {
                let location = PanicLocation {
                    file: location.file().to_string(),
                    line: location.line(),
                    column: location.column(),
                };
                // A panic inside a thread-local destructor finds the slot
                // gone; it then simply has no location.
                let _ = LAST_PANIC.try_with(|last| *last.borrow_mut() = Some(location));
                let _ = PANICS_SEEN.try_with(|seen| seen.set(seen.get().wrapping_add(1)));
            }
            previous(info);
        }));
    });
}

/// A caught panic: its payload and, when the hook saw it, its location; and
/// the name of the `#[pool_task]` function it unwound out of, if any.
pub(crate) struct Caught {
    pub(crate) payload: Box<dyn Any + Send>,
    pub(crate) location: Option<PanicLocation>,
    pub(crate) task: Option<&'static str>,
}

/// Marks the code of a named task (a `#[pool_task]` function) while alive:
/// a panic unwinding out of it carries the name to the catch that reports
/// it. Nested ones: the outermost name wins, being dropped last.
pub(crate) struct TaskName(pub(crate) &'static str);

impl Drop for TaskName {
    #[inline]
    fn drop(&mut self) {
        if std::thread::panicking() {
            let seen = PANICS_SEEN.try_with(Cell::get).unwrap_or(0);
            let _ = PANICKED_TASK.try_with(|task| task.set((seen, Some(self.0))));
        }
    }
}

/// Runs `f`, catching a panic with its location: the location the hook
/// noted, if the hook saw a panic while `f` ran (otherwise none, rather than
/// a stale one).
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Caught> {
    let seen_before = PANICS_SEEN.try_with(Cell::get).unwrap_or(0);
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let seen_now = PANICS_SEEN.try_with(Cell::get).unwrap_or(0);
        let location = if seen_now != seen_before {
            LAST_PANIC
                .try_with(|last| last.borrow_mut().take())
                .ok()
                .flatten()
        } else {
            None
        };
        let task = match PANICKED_TASK.try_with(|task| task.replace((0, None))) {
            Ok((seen, name)) if seen == seen_now && seen != seen_before => name,
            _ => None,
        };
        Caught {
            payload,
            location,
            task,
        }
    })
}

/// Drops a caught panic's payload. A payload whose own destructor panics
/// (a pathological payload) is leaked instead, together with that second
/// panic's payload, since dropping either could go on panicking.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
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
