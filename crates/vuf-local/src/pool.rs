//! A fixed pool of worker threads for the data-parallel steps of one forward pass.
//!
//! A decode step runs about 150 small parallel regions (one per fused matrix product and
//! per attention block), each a few tens of microseconds long. Spawning threads per region
//! (`std::thread::scope`) costs about as much as the work itself, so the workers live as
//! long as the model and wait for the next region by spinning briefly on a generation
//! counter (as ggml's thread pool does), then yielding, then sleeping on a condition
//! variable so an idle model costs no CPU.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A region's body: called once per thread with `(thread index, thread count)`.
type Job = dyn Fn(usize, usize) + Sync;

struct Shared {
    /// The current job, valid while a region runs (see [`Pool::run`]).
    job: Mutex<Option<JobPtr>>,
    generation: AtomicUsize,
    done: AtomicUsize,
    sleepers: AtomicUsize,
    stop: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    panicked: AtomicBool,
}

#[derive(Clone, Copy)]
struct JobPtr(*const Job);
// SAFETY: the pointer is only dereferenced while `Pool::run` keeps the job alive and
// blocks until every worker is done with it; the job itself is `Sync`.
unsafe impl Send for JobPtr {}

/// The pool. `threads` includes the calling thread, which does its share of every region.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    threads: usize,
    busy: Mutex<()>,
}

/// How long a worker spins before yielding, and yields before sleeping.
const SPIN: u32 = 20_000;
const YIELD_FOR: Duration = Duration::from_millis(2);

impl Pool {
    /// A pool of `threads` (at least 1) threads.
    pub fn new(threads: usize) -> Pool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            job: Mutex::new(None),
            generation: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            panicked: AtomicBool::new(false),
        });
        let workers = (1..threads)
            .map(|i| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name(format!("vuf-local-{i}"))
                    .spawn(move || worker(&s, i, threads))
                    .expect("spawning an inference worker thread")
            })
            .collect();
        Pool {
            shared,
            workers,
            threads,
            busy: Mutex::new(()),
        }
    }

    /// Threads in the pool (including the caller).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Run `f(i, n)` on every thread `i` of `n` and return when all are done.
    pub fn run<'f>(&self, f: &'f (dyn Fn(usize, usize) + Sync + 'f)) {
        if self.threads == 1 {
            f(0, 1);
            return;
        }
        // One region at a time per pool.
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let s = &*self.shared;
        // SAFETY (lifetime erasure): the pointer is cleared and every worker has finished
        // calling it before this function returns, so it never outlives `f`.
        let ptr: *const Job = unsafe {
            std::mem::transmute::<&'f (dyn Fn(usize, usize) + Sync + 'f), &'static Job>(f)
        };
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(JobPtr(ptr));
        s.done.store(0, Ordering::SeqCst);
        s.generation.fetch_add(1, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        f(0, self.threads);
        let need = self.threads - 1;
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) < need {
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        *s.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if s.panicked.load(Ordering::SeqCst) {
            panic!("an inference worker thread panicked");
        }
    }
}

fn worker(s: &Shared, index: usize, threads: usize) {
    let mut seen = 0usize;
    loop {
        // Wait for a new generation: spin, then yield, then sleep.
        let mut spins = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            if s.stop.load(Ordering::SeqCst) {
                return;
            }
            let g = s.generation.load(Ordering::SeqCst);
            if g != seen {
                seen = g;
                break;
            }
            spins += 1;
            if spins < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let t = *since.get_or_insert_with(Instant::now);
            if t.elapsed() < YIELD_FOR {
                std::thread::yield_now();
                continue;
            }
            s.sleepers.fetch_add(1, Ordering::SeqCst);
            let mut g = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            while s.generation.load(Ordering::SeqCst) == seen && !s.stop.load(Ordering::SeqCst) {
                g = s.wake.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            drop(g);
            s.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        let job = *s.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(JobPtr(p)) = job {
            // SAFETY: see `Pool::run`.
            let f = unsafe { &*p };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(index, threads))).is_err()
            {
                s.panicked.store(true, Ordering::SeqCst);
            }
        }
        s.done.fetch_add(1, Ordering::Release);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let _g = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The share `[start, end)` of `n` items for thread `i` of `threads`, in chunks of `align`.
pub fn split(n: usize, i: usize, threads: usize, align: usize) -> (usize, usize) {
    let chunks = n.div_ceil(align);
    let a = chunks * i / threads;
    let b = chunks * (i + 1) / threads;
    ((a * align).min(n), (b * align).min(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_every_region() {
        let pool = Pool::new(3);
        let hits = AtomicUsize::new(0);
        for _ in 0..1000 {
            pool.run(&|i, n| {
                assert!(i < n && n == 3);
                hits.fetch_add(1, Ordering::SeqCst);
            });
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3000);
        // After an idle pause (workers asleep) regions still run.
        std::thread::sleep(Duration::from_millis(20));
        pool.run(&|_, _| {
            hits.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(hits.load(Ordering::SeqCst), 3003);
    }

    #[test]
    fn split_covers_everything_once() {
        for n in [0, 1, 5, 64, 577] {
            for t in 1..5 {
                let mut next = 0;
                for i in 0..t {
                    let (a, b) = split(n, i, t, 2);
                    assert_eq!(a, next);
                    next = b;
                }
                assert_eq!(next, n);
            }
        }
    }
}
