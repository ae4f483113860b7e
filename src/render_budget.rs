//! The memory one template render may take: a counting global allocator
//! with a per-thread budget, armed only while a render runs
//! ([`Armed`], held by `Templates::render_value`). Fuel bounds a template's
//! steps and a cap its output, but one step can build a huge string
//! (`a ~ a ~ a` of a 60 MB `'x' * N`); past [`RENDER_MEMORY`] the process
//! stops at once, naming the template. An allocator cannot hand minijinja
//! an error, and the alternative is the machine swapping. Nothing is
//! half-written on a node: a render precedes its node's write round trip.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::marker::PhantomData;

/// Bytes one render may hold at once beyond what its thread held before.
/// The built-ins of a 10,000-worker cluster need a few MiB.
pub const RENDER_MEMORY: usize = 32 * 1024 * 1024;

/// The process's allocator: the system's, counted while a render is armed.
pub struct Budgeted;

/// The longest template name kept for the message (longer ones are cut).
const NAME_MAX: usize = 256;

thread_local! {
    /// Bytes the armed render may still allocate (negative: over).
    static LEFT: Cell<isize> = const { Cell::new(0) };
    /// A render is armed on this thread.
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// The armed render's template name, copied (no pointer to outlive).
    static NAME: Cell<([u8; NAME_MAX], usize)> = const { Cell::new(([0; NAME_MAX], 0)) };
}

/// While alive, this thread's allocations count against [`RENDER_MEMORY`].
/// Not `Send`: it arms the thread it was made on. Nested guards restore
/// the outer render's state when they drop.
pub(crate) struct Armed {
    outer: (bool, isize, [u8; NAME_MAX], usize),
    _not_send: PhantomData<*const ()>,
}

impl Armed {
    pub(crate) fn new(name: &str) -> Armed {
        let mut buf = [0u8; NAME_MAX];
        let len = name.len().min(NAME_MAX);
        buf[..len].copy_from_slice(&name.as_bytes()[..len]);
        let was = ARMED.try_with(|a| a.replace(true)).unwrap_or(false);
        let left = LEFT
            .try_with(|l| l.replace(RENDER_MEMORY as isize))
            .unwrap_or(0);
        let (old_name, old_len) = NAME
            .try_with(|n| n.replace((buf, len)))
            .unwrap_or(([0; NAME_MAX], 0));
        Armed {
            outer: (was, left, old_name, old_len),
            _not_send: PhantomData,
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        let (was, left, name, len) = self.outer;
        let _ = NAME.try_with(|n| n.set((name, len)));
        let _ = LEFT.try_with(|l| l.set(left));
        let _ = ARMED.try_with(|a| a.set(was));
    }
}

fn armed() -> bool {
    ARMED.try_with(|a| a.get()).unwrap_or(false)
}

/// Count `delta` bytes (positive: allocated) against an armed render.
fn count(delta: isize) {
    if !armed() {
        return;
    }
    let left = LEFT
        .try_with(|l| {
            let v = l.get().saturating_sub(delta);
            l.set(v);
            v
        })
        .unwrap_or(0);
    if left < 0 {
        over();
    }
}

/// Say which template and stop, without allocating.
#[cold]
fn over() -> ! {
    let (buf, len) = NAME.try_with(|n| n.get()).unwrap_or(([0; NAME_MAX], 0));
    let name: &[u8] = if len == 0 { b"?" } else { &buf[..len] };
    let parts: [&[u8]; 3] = [
        b"error: template ",
        name,
        b": needs more than 32 MiB of memory to render; stopped (a runaway string or list?)\n  help: fix the template (an override in your templates/ directory?) or remove the override\n",
    ];
    for p in parts {
        // SAFETY: writing a valid buffer to stderr; the result is moot.
        unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
    }
    // SAFETY: ends the process at once, as an allocation failure would.
    unsafe { libc::_exit(1) }
}

// SAFETY: every call is forwarded to `System` unchanged; the counting
// touches only const-initialised thread-locals without destructors.
unsafe impl GlobalAlloc for Budgeted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_render_counts_what_it_holds_not_what_it_freed() {
        let _a = Armed::new("t");
        for _ in 0..100 {
            // 100 x 16 MiB allocated and freed: never 32 MiB at once.
            let v = vec![0u8; 16 << 20];
            std::hint::black_box(&v);
        }
        let left = LEFT.with(|l| l.get());
        assert!(left > (RENDER_MEMORY as isize) / 2, "{left}");
    }

    #[test]
    fn a_nested_guard_gives_the_outer_render_back() {
        let outer = Armed::new("outer");
        {
            let _inner = Armed::new("inner");
            assert_eq!(NAME.with(|n| n.get().1), 5);
        }
        assert!(armed());
        assert!(NAME.with(|n| &n.get().0[..5] == b"outer"));
        drop(outer);
        assert!(!armed());
    }

    #[test]
    fn disarmed_threads_are_not_counted() {
        let v = vec![0u8; 128 << 20];
        std::hint::black_box(&v);
        assert!(!armed());
    }
}
