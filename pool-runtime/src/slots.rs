//! Where a batch keeps its tasks' inputs, their states and their results.
//!
//! Three arrays, indexed by task: the inputs, in the `Vec` the submitter
//! built (moved in, not copied; each input is moved out when its task
//! starts); one state byte per task; and the results, written by the
//! workers into a buffer allocated but never touched by the submitter. For
//! a large batch both of the latter come fresh from the system, so the
//! pages are faulted in by the workers as they write, in parallel, rather
//! than by the submitter before anything runs. When every task succeeded,
//! `get()` hands the result buffer over as the `Vec` of results: one pass,
//! no copy.
//!
//! A batch over a range of integers (`map_async(f, 0..n)`) keeps no inputs
//! at all: each task computes its own from its index as it starts
//! ([`Counted`]), so a batch of ten million tasks writes no ten-million
//! entry vector on the submitting thread first.
//!
//! A batch of one task keeps its input and result inline, so that a task
//! submitted on its own is a single allocation.
//!
//! ## Ownership
//!
//! A slot belongs to one thread at a time: the submitter until the batch
//! is queued, the worker that claimed its index (through the batch's
//! cursor) until it stores the slot's final state with `Release`, then the
//! handle (or whoever releases the batch), which loads the state with
//! `Acquire` before touching the result.

use std::any::TypeId;
use std::cell::UnsafeCell;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::Range;
use std::ptr;

use crate::primitive::{AtomicBool, AtomicU8, Ordering};

/// The task has not started; its input is in place.
pub(crate) const INPUT: u8 = 0;
/// The task returned; its result is in place.
pub(crate) const OK: u8 = 1;
pub(crate) const PANICKED: u8 = 2;
pub(crate) const CANCELLED: u8 = 3;
pub(crate) const BROKEN: u8 = 4;
/// The result was taken by the handle.
pub(crate) const TAKEN: u8 = 5;
/// The task's result is in place, and its batch counts it as a failure (an
/// `Err` under fail-fast): streams hand it out as a value, `get()` reports
/// it as the batch's failure.
pub(crate) const FAILED: u8 = 6;

/// Batches up to this many tasks keep their states inline.
const INLINE_STATES: usize = 16;

enum States {
    Inline([AtomicU8; INLINE_STATES]),
    Heap(Box<[AtomicU8]>),
}

enum InputStore<I> {
    One(ManuallyDrop<I>),
    Many(ManuallyDrop<Vec<I>>),
    Counted(Counted<I>),
}

///
/// The buffer is kept as raw parts, not as a `Vec`, and the single slot in
/// an `UnsafeCell`: workers write their slots while others read theirs, and
/// a `Vec` would be reached through references that cover every slot (a
/// `&mut Vec` for its pointer, a `&[_]` for indexing), which then race with
/// the other slots' writes (miri reports the retags as data races). Only
/// the raw pointer is copied out under a shared reference to the store.
enum OutputStore<T> {
    One(UnsafeCell<MaybeUninit<T>>),
    /// A `Vec<MaybeUninit<T>>` of the batch's length, as its pointer and
    /// capacity; freed by `release` (or handed out by `take_all_outputs`).
    Many {
        at: ptr::NonNull<MaybeUninit<T>>,
        capacity: usize,
    },
}

/// The inputs of a new batch.
pub(crate) enum Inputs<I> {
    /// One task's input, stored without a separate allocation.
    One(I),
    /// One input per task, in submission order.
    Many(Vec<I>),
    /// Inputs computed from the task's index (a range of integers).
    Counted(Counted<I>),
}

impl<I> Inputs<I> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Inputs::One(_) => 1,
            Inputs::Many(inputs) => inputs.len(),
            Inputs::Counted(counted) => counted.len,
        }
    }

    /// The inputs `items` yields: counted if `items` is a range of
    /// integers, collected on the calling thread otherwise.
    pub(crate) fn of<It: Iterator<Item = I>>(items: It) -> Inputs<I> {
        match Counted::of_range(&items) {
            Some(counted) => Inputs::Counted(counted),
            None => Inputs::Many(items.collect()),
        }
    }
}

/// The inputs of a batch over `start..start + len`, an integer range: task
/// `i`'s input is `start + i`, made when it starts.
pub(crate) struct Counted<I> {
    /// The first input, as the bits of a `u64` (wrapping arithmetic on them
    /// is the range type's own, for signed types too).
    start: u64,
    len: usize,
    make: fn(u64) -> I,
}

macro_rules! counted_ranges {
    ($($int:ident),*) => {
        impl<I> Counted<I> {
            /// `Some` if `items` is a `Range` of one of the integer types
            /// (whose items are then `I`).
            fn of_range<It: Iterator<Item = I>>(items: &It) -> Option<Counted<I>> {
                let id = typeid::of::<It>();
                $(
                    if id == TypeId::of::<Range<$int>>() {
                        // SAFETY: equal type ids: `It` is `Range<$int>`
                        // (which has no lifetime it could differ in), so
                        // the reference is to one.
                        let range = unsafe { &*(items as *const It as *const Range<$int>) };
                        let len = (range.end as i128 - range.start as i128).max(0);
                        return Some(Counted {
                            start: range.start as u64,
                            len: usize::try_from(len).ok()?,
                            make: |bits| {
                                let value = bits as $int;
                                // SAFETY: `make` is only built here, where
                                // `It` is `Range<$int>`, whose items, `I`,
                                // are `$int`: this copies a `$int` as one.
                                unsafe { std::mem::transmute_copy::<$int, I>(&value) }
                            },
                        });
                    }
                )*
                None
            }
        }
    };
}

counted_ranges!(usize, u64, u32, i64, i32);

impl<I> Counted<I> {
    fn get(&self, index: usize) -> I {
        (self.make)(self.start.wrapping_add(index as u64))
    }
}

/// A batch's inputs, states and results (see the module docs).
pub(crate) struct Slots<I, T> {
    len: usize,
    states: States,
    inputs: UnsafeCell<InputStore<I>>,
    outputs: UnsafeCell<OutputStore<T>>,
    /// The result buffer went to the handle whole.
    outputs_taken: AtomicBool,
    released: AtomicBool,
}

impl<I, T> Slots<I, T> {
    pub(crate) fn new(inputs: Inputs<I>) -> Slots<I, T> {
        let len = inputs.len();
        let states = if len <= INLINE_STATES {
            States::Inline(std::array::from_fn(|_| AtomicU8::new(INPUT)))
        } else {
            States::Heap(zeroed_states(len))
        };
        let many_outputs = || {
            let mut outputs = ManuallyDrop::new(Vec::<MaybeUninit<T>>::with_capacity(len));
            OutputStore::Many {
                // SAFETY: a `Vec`'s pointer is never null.
                at: unsafe { ptr::NonNull::new_unchecked(outputs.as_mut_ptr()) },
                capacity: outputs.capacity(),
            }
        };
        let (inputs, outputs) = match inputs {
            Inputs::One(input) => (
                InputStore::One(ManuallyDrop::new(input)),
                OutputStore::One(UnsafeCell::new(MaybeUninit::uninit())),
            ),
            Inputs::Many(inputs) => (InputStore::Many(ManuallyDrop::new(inputs)), many_outputs()),
            Inputs::Counted(counted) => (InputStore::Counted(counted), many_outputs()),
        };
        Slots {
            len,
            states,
            inputs: UnsafeCell::new(inputs),
            outputs: UnsafeCell::new(outputs),
            outputs_taken: AtomicBool::new(false),
            released: AtomicBool::new(false),
        }
    }

    /// The slots as raw parts, resolved once for a run of claimed tasks so
    /// that each task of the run reads its state, input and result slot
    /// without matching on how the batch stores them.
    pub(crate) fn view(&self) -> View<'_, I, T> {
        let states: &[AtomicU8] = match &self.states {
            States::Inline(states) => &states[..self.len.min(INLINE_STATES)],
            States::Heap(states) => states,
        };
        // SAFETY: only the layout of the stores is read here (pointers, and
        // the counted range's plain fields); what the pointers reach is
        // accessed under `View`'s own contracts.
        let (inputs, outputs) = unsafe {
            let inputs = match &*self.inputs.get() {
                InputStore::One(input) => InputsView::At(&**input as *const I),
                InputStore::Many(inputs) => InputsView::At(inputs.as_ptr()),
                InputStore::Counted(counted) => InputsView::Counted(counted),
            };
            let outputs = match &*self.outputs.get() {
                OutputStore::One(slot) => slot.get(),
                OutputStore::Many { at, .. } => at.as_ptr(),
            };
            (inputs, outputs)
        };
        View {
            states,
            inputs,
            outputs,
        }
    }

    /// The state of task `index`.
    pub(crate) fn state(&self, index: usize) -> &AtomicU8 {
        match &self.states {
            States::Inline(states) => &states[index],
            States::Heap(states) => &states[index],
        }
    }

    /// Moves task `index`'s input out.
    ///
    /// # Safety
    ///
    /// The caller owns slot `index` (it claimed the index), whose state is
    /// `INPUT`, and takes its input only once; the slots are not released.
    pub(crate) unsafe fn take_input(&self, index: usize) -> I {
        // SAFETY: the caller owns the slot; the input is in place and read
        // once, after which the slot's state leaves `INPUT`.
        unsafe {
            match &*self.inputs.get() {
                InputStore::One(input) => ptr::read(&**input),
                InputStore::Many(inputs) => ptr::read(inputs.as_ptr().add(index)),
                InputStore::Counted(counted) => counted.get(index),
            }
        }
    }

    /// A reference to task `index`'s result.
    ///
    /// # Safety
    ///
    /// The result is in place (state `OK` or `FAILED`, loaded with
    /// `Acquire`) and not taken; nobody writes the slot meanwhile.
    pub(crate) unsafe fn output(&self, index: usize) -> &T {
        // SAFETY: in place (caller's promise).
        unsafe {
            match &*self.outputs.get() {
                OutputStore::One(slot) => (*slot.get()).assume_init_ref(),
                OutputStore::Many { at, .. } => (*at.as_ptr().add(index)).assume_init_ref(),
            }
        }
    }

    /// Moves task `index`'s result out and marks it taken.
    ///
    /// # Safety
    ///
    /// As for [`Slots::output`]; the caller takes it only once.
    pub(crate) unsafe fn take_output(&self, index: usize) -> T {
        self.state(index).store(TAKEN, Ordering::Relaxed);
        // SAFETY: in place (caller's promise), read once.
        unsafe { ptr::read(self.output(index)) }
    }

    /// Every result, as the `Vec` the workers wrote them into.
    ///
    /// # Safety
    ///
    /// Every task's result is in place (every state `OK`, loaded with
    /// `Acquire`) and none was taken; called once, by the handle.
    pub(crate) unsafe fn take_all_outputs(&self) -> Vec<T> {
        self.outputs_taken.store(true, Ordering::Relaxed);
        // SAFETY: every element is initialized (caller's promise), and the
        // flag keeps `release` from dropping them again.
        unsafe {
            match &mut *self.outputs.get() {
                OutputStore::One(slot) => vec![slot.get_mut().assume_init_read()],
                OutputStore::Many { at, capacity } => {
                    // The buffer goes to the `Vec`; an empty store is left,
                    // so `release` frees nothing.
                    let (at, capacity) = (*at, std::mem::replace(capacity, 0));
                    // `MaybeUninit<T>` has `T`'s layout, the buffer came
                    // from a `Vec` of this capacity, and its `len` elements
                    // are initialized.
                    Vec::from_raw_parts(at.as_ptr() as *mut T, self.len, capacity)
                }
            }
        }
    }

    /// Drops every input never taken and every result never taken, through
    /// the given functions (which keep a destructor's panic), then frees the
    /// buffers. Runs once; later calls do nothing.
    ///
    /// # Safety
    ///
    /// No task of the batch can run any more (each slot's state is final)
    /// and no handle can read a result any more.
    pub(crate) unsafe fn release(
        &self,
        mut drop_input: impl FnMut(I),
        mut drop_output: impl FnMut(T),
    ) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let outputs_taken = self.outputs_taken.load(Ordering::Relaxed);
        // Nothing to find in the states when neither an input nor a result
        // left behind needs dropping (`wait()` on a batch of `()` tasks, or
        // results taken whole by `get()`).
        let drops_outputs = std::mem::needs_drop::<T>() && !outputs_taken;
        if std::mem::needs_drop::<I>() || drops_outputs {
            for index in 0..self.len {
                match self.state(index).load(Ordering::Acquire) {
                    // SAFETY: the task never started: its input is in
                    // place, and nobody else can take it any more.
                    INPUT => drop_input(unsafe { self.take_input(index) }),
                    OK | FAILED if drops_outputs => {
                        // SAFETY: the result is in place and nobody can read
                        // it any more.
                        drop_output(unsafe { ptr::read(self.output(index)) })
                    }
                    _ => {}
                }
            }
        }
        // The buffers, emptied above, without dropping elements again.
        // SAFETY: release runs once, so the buffers are freed once.
        unsafe {
            if let InputStore::Many(inputs) = &mut *self.inputs.get() {
                inputs.set_len(0);
                ManuallyDrop::drop(inputs);
            }
            if let OutputStore::Many { at, capacity } = &mut *self.outputs.get() {
                // Freed as the empty `Vec` it came from (capacity 0 once
                // `take_all_outputs` gave the buffer away).
                if *capacity > 0 {
                    drop(Vec::from_raw_parts(
                        at.as_ptr(),
                        0,
                        std::mem::replace(capacity, 0),
                    ));
                }
            }
        }
    }
}

/// A batch's slots as raw parts (see [`Slots::view`]).
pub(crate) struct View<'a, I, T> {
    states: &'a [AtomicU8],
    inputs: InputsView<'a, I>,
    outputs: *mut MaybeUninit<T>,
}

enum InputsView<'a, I> {
    /// Input `i` is at `.add(i)`.
    At(*const I),
    Counted(&'a Counted<I>),
}

impl<I, T> View<'_, I, T> {
    /// The state of task `index`.
    #[inline]
    pub(crate) fn state(&self, index: usize) -> &AtomicU8 {
        &self.states[index]
    }

    /// As [`Slots::take_input`].
    ///
    /// # Safety
    ///
    /// As for [`Slots::take_input`].
    #[inline]
    pub(crate) unsafe fn take_input(&self, index: usize) -> I {
        match &self.inputs {
            // SAFETY: the caller owns slot `index`, whose input is in place
            // (`Slots::take_input`'s contract); one read, after which the
            // state leaves `INPUT`.
            InputsView::At(inputs) => unsafe { ptr::read(inputs.add(index)) },
            InputsView::Counted(counted) => counted.get(index),
        }
    }

    /// Writes task `index`'s result.
    ///
    /// # Safety
    ///
    /// The caller owns slot `index`, whose result is not written yet; the
    /// slots are not released.
    #[inline]
    pub(crate) unsafe fn write_output(&self, index: usize, output: T) {
        // SAFETY: the caller owns slot `index`, each slot's result is a
        // separate element, written once; `outputs` points at `len` result
        // slots (or the one).
        unsafe { (*self.outputs.add(index)).write(output) };
    }
}

/// `len` states, all `INPUT` (zero), from zeroed memory: for a large batch
/// the system hands out pages that are faulted in only when written.
#[cfg(not(loom))]
fn zeroed_states(len: usize) -> Box<[AtomicU8]> {
    let bytes: Box<[u8]> = vec![INPUT; len].into_boxed_slice();
    let raw = Box::into_raw(bytes);
    // SAFETY: `AtomicU8` has the size, alignment and bit validity of `u8`,
    // so a boxed slice of one is a boxed slice of the other.
    unsafe { Box::from_raw(raw as *mut [AtomicU8]) }
}

/// Loom's atomics are not bytes: build them one by one.
#[cfg(loom)]
fn zeroed_states(len: usize) -> Box<[AtomicU8]> {
    (0..len).map(|_| AtomicU8::new(INPUT)).collect()
}
