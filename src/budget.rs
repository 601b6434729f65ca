//! Work with a budget of memory and time: a closure run on a worker thread that is stopped when
//! it allocates more than its memory budget or runs past its time budget.
//!
//! A template in a user's manifest can make a value grow exponentially (a string doubled in a
//! loop, a list repeated and joined) inside single steps of the template engine, which neither its
//! step count (fuel) nor a limit on the result's length can stop in time. The budget is kept by
//! [`BudgetAllocator`], the process's global allocator (installed by the `invk-run` binary and by
//! the test binaries): it counts what the worker thread allocates, and at the first allocation
//! past the memory budget, or past the deadline (checked every 256 allocations), it reports the
//! overrun to the waiting caller and parks the worker for good, before that allocation is made.
//! The caller gets [`Stopped`] and goes on; the parked thread keeps what it had allocated (at
//! most the memory budget) until the process ends. A closure that runs past its deadline without
//! allocating is given up by the caller at the deadline and left running.
//!
//! Without [`BudgetAllocator`] as the global allocator, memory is not counted and only the time
//! budget holds.

#![allow(unsafe_code)] // The global allocator is an `unsafe` trait.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How much a closure run by [`run`] may allocate and how long it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes allocated and not yet freed, at most.
    pub memory: usize,
    /// Wall time, at most.
    pub time: Duration,
}

/// Why a closure run by [`run`] gave no result: it went over its budget, or panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It allocated more than [`Budget::memory`].
    Memory,
    /// It ran longer than [`Budget::time`].
    Time,
    /// It panicked, with this message (not printed: the caller reports it).
    Panic(String),
}

/// The global allocator that keeps the memory and time budgets of [`run`]: the system allocator,
/// counting on the threads that run a closure under a budget.
#[derive(Debug, Default)]
pub struct BudgetAllocator;

impl BudgetAllocator {
    /// Asks the C allocator under it to keep one memory pool (arena) for all threads, instead of
    /// one per thread that ever allocated: a run's few threads (the runtime's, the report's
    /// worker, blocking file work) then reuse each other's freed memory instead of each keeping
    /// its own (a run spends its time waiting for the server, not allocating). For a process's
    /// `main`, before any thread starts. Does nothing off glibc.
    pub fn share_arenas() {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: `mallopt` only sets a tuning parameter of glibc's allocator; it is called
        // before the process starts other threads.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// How often (in allocations) a worker under a budget compares the clock with its deadline.
const CLOCK_EVERY: u32 = 256;

thread_local! {
    /// Whether this thread runs a closure under a budget now.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The bytes it may still allocate.
    static REMAINING: Cell<isize> = const { Cell::new(0) };
    /// Allocations since the clock was last read.
    static TICKS: Cell<u32> = const { Cell::new(0) };
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Where the caller waits (kept alive by the worker).
    static SIGNAL: Cell<*const Signal> = const { Cell::new(std::ptr::null()) };
}

/// Whether the calling thread may allocate `size` more bytes; on an overrun it reports it and
/// never returns.
fn charge(size: usize) {
    if !ACTIVE.with(Cell::get) {
        return;
    }
    let size = isize::try_from(size).unwrap_or(isize::MAX);
    let left = REMAINING.with(Cell::get).saturating_sub(size);
    REMAINING.with(|r| r.set(left));
    let ticks = TICKS.with(Cell::get).wrapping_add(1);
    TICKS.with(|t| t.set(ticks));
    let over = if left < 0 {
        Some(Stopped::Memory)
    } else if ticks % CLOCK_EVERY == 0
        && DEADLINE.with(Cell::get).is_some_and(|d| Instant::now() > d)
    {
        Some(Stopped::Time)
    } else {
        None
    };
    if let Some(what) = over {
        overrun(what);
    }
}

fn credit(size: usize) {
    if ACTIVE.with(Cell::get) {
        let size = isize::try_from(size).unwrap_or(isize::MAX);
        REMAINING.with(|r| r.set(r.get().saturating_add(size)));
    }
}

/// Reports the overrun to the caller and parks the thread for good: the allocation that went
/// over is never made, and the work cannot go on.
fn overrun(what: Stopped) -> ! {
    // From here on nothing is counted (parking may allocate).
    ACTIVE.with(|a| a.set(false));
    let signal = SIGNAL.with(Cell::get);
    // SAFETY: the worker holds the `Arc<Signal>` while its closure runs, and parks below for
    // good, so the pointer stays valid.
    if let Some(signal) = unsafe { signal.as_ref() } {
        signal.finish(Outcome::Stopped(what));
    }
    loop {
        std::thread::park();
    }
}

// SAFETY: every call is passed on to `System` unchanged; the counting around it only reads and
// writes this thread's own cells, and an overrun parks the thread before the call.
unsafe impl GlobalAlloc for BudgetAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        credit(layout.size());
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            charge(new_size - layout.size());
        } else {
            credit(layout.size() - new_size);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pending,
    Done,
    Stopped(Stopped),
}

/// Where a caller waits for its worker.
#[derive(Debug)]
struct Signal {
    outcome: Mutex<Outcome>,
    changed: Condvar,
}

impl Signal {
    fn finish(&self, outcome: Outcome) {
        let mut o = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        if *o == Outcome::Pending {
            *o = outcome;
        }
        self.changed.notify_all();
    }
}

struct Task {
    work: Box<dyn FnOnce() + Send>,
    budget: Budget,
    signal: Arc<Signal>,
}

/// Idle workers, each the sending end of a thread's task channel.
static IDLE: Mutex<Vec<Sender<Task>>> = Mutex::new(Vec::new());

/// The name of the worker threads, whose panics the panic hook leaves to the caller.
const WORKER: &str = "invk-budget";

fn worker() -> Sender<Task> {
    static QUIET_PANICS: std::sync::Once = std::sync::Once::new();
    QUIET_PANICS.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() != Some(WORKER) {
                previous(info);
            }
        }));
    });
    if let Some(w) = IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop() {
        return w;
    }
    let (tx, rx) = channel::<Task>();
    std::thread::Builder::new()
        .name(WORKER.into())
        .spawn(move || {
            // The thread's handle is made now, so that parking later needs nothing new.
            drop(std::thread::current());
            for task in rx {
                SIGNAL.with(|s| s.set(Arc::as_ptr(&task.signal)));
                REMAINING.with(|r| {
                    r.set(isize::try_from(task.budget.memory).unwrap_or(isize::MAX));
                });
                TICKS.with(|t| t.set(0));
                DEADLINE.with(|d| d.set(Instant::now().checked_add(task.budget.time)));
                ACTIVE.with(|a| a.set(true));
                (task.work)();
                ACTIVE.with(|a| a.set(false));
                SIGNAL.with(|s| s.set(std::ptr::null()));
                task.signal.finish(Outcome::Done);
            }
        })
        .expect("a thread for budgeted work");
    tx
}

/// Runs `f` on a worker thread within `budget`.
///
/// # Errors
/// [`Stopped`] when `f` allocated more than the memory budget or ran past the time budget (it
/// was stopped or, when it does not allocate, left running, and its result is lost), or
/// panicked.
pub fn run<T, F>(budget: Budget, f: F) -> Result<T, Stopped>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let result: Arc<Mutex<Option<std::thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let slot = result.clone();
    let signal = Arc::new(Signal {
        outcome: Mutex::new(Outcome::Pending),
        changed: Condvar::new(),
    });
    let task = Task {
        work: Box::new(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        }),
        budget,
        signal: signal.clone(),
    };
    let tx = worker();
    let tx = match tx.send(task) {
        Ok(()) => tx,
        // A worker that ended (it never does): a new one.
        Err(e) => {
            let fresh = worker();
            fresh.send(e.0).expect("a fresh worker takes its task");
            fresh
        }
    };
    // The worker checks its deadline only when it allocates: the caller's own bound is a little
    // later, for work that does not allocate.
    let until = Instant::now() + budget.time + Duration::from_millis(100);
    let mut outcome = signal
        .outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    while *outcome == Outcome::Pending {
        let now = Instant::now();
        if now >= until {
            *outcome = Outcome::Stopped(Stopped::Time);
            break;
        }
        outcome = signal
            .changed
            .wait_timeout(outcome, until - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    let outcome = outcome.clone();
    match outcome {
        Outcome::Done => {
            IDLE.lock().unwrap_or_else(PoisonError::into_inner).push(tx);
            match result.lock().unwrap_or_else(PoisonError::into_inner).take() {
                Some(Ok(value)) => Ok(value),
                Some(Err(panic)) => Err(Stopped::Panic(
                    panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_owned()),
                )),
                None => unreachable!("a finished task left its result"),
            }
        }
        // The worker is parked or still running: it is not used again.
        Outcome::Stopped(what) => Err(what),
        Outcome::Pending => unreachable!("the wait ends with an outcome"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Budget = Budget {
        memory: 16 << 20,
        time: Duration::from_millis(500),
    };

    #[test]
    fn work_within_its_budget_returns_its_result() {
        assert_eq!(run(BUDGET, || vec![1u8; 1 << 20].len()), Ok(1 << 20));
        let worker = run(BUDGET, || std::thread::current().id()).expect("small");
        assert_ne!(worker, std::thread::current().id());
    }

    #[test]
    fn allocating_past_the_memory_budget_is_stopped_at_once() {
        let started = Instant::now();
        // One allocation over the budget.
        assert_eq!(
            run(BUDGET, || vec![1u8; 64 << 20].len()),
            Err(Stopped::Memory)
        );
        // Exponential growth, stopped at the first allocation over.
        let doubled = run(BUDGET, || {
            let mut s = String::from("x");
            for _ in 0..40 {
                s = s.repeat(2);
            }
            s.len()
        });
        assert_eq!(doubled, Err(Stopped::Memory));
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
        // Memory freed within the work is given back to its budget.
        let churn = run(BUDGET, || {
            (0..64).map(|_| vec![1u8; 8 << 20].len()).sum::<usize>()
        });
        assert_eq!(churn, Ok(64 * (8 << 20)));
    }

    #[test]
    fn work_past_its_deadline_is_given_up() {
        let started = Instant::now();
        let endless = run(BUDGET, || {
            let mut n = 0u64;
            loop {
                n = n.wrapping_add(*std::hint::black_box(Box::new(1u64)));
                if n == u64::MAX {
                    break n;
                }
            }
        });
        assert_eq!(endless, Err(Stopped::Time));
        let took = started.elapsed();
        assert!(
            took >= BUDGET.time && took < BUDGET.time + Duration::from_millis(400),
            "{took:?}"
        );
    }

    #[test]
    fn a_panic_of_the_work_is_returned_and_the_worker_goes_on() {
        assert_eq!(
            run(BUDGET, || -> u8 { panic!("inside the work") }),
            Err(Stopped::Panic("inside the work".into()))
        );
        assert_eq!(run(BUDGET, || 7), Ok(7));
    }
}
