//! Progress events. The scheduler emits them; the CLI draws them (a live table on a
//! terminal, plain log lines otherwise). [`Progress`] folds events into per-cell counters
//! (done / valid / invalid / retrying, tokens, cost, rate, ETA) so every front end shows
//! the same numbers.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Something that happened during a run. `cell` indexes `Study::cells`.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run starts: per cell, (name, slots in the design, already valid, pending).
    Started {
        /// Run id in the store.
        run_id: i64,
        /// (cell name, total slots, already valid, pending items).
        cells: Vec<(String, u64, u64, u64)>,
    },
    /// An attempt finished and was committed.
    Attempt {
        /// Cell.
        cell: usize,
        /// Sample id (`G1_7`).
        sample: String,
        /// Valid outcome.
        valid: bool,
        /// Failure reason.
        reason: Option<String>,
        /// Input + output tokens.
        tokens: u64,
        /// Cost, USD (reported or priced).
        cost_usd: f64,
        /// Will be retried after this wait.
        retry_in: Option<Duration>,
    },
    /// An item finished (committed): valid or invalid after its attempts.
    ItemDone {
        /// Cell.
        cell: usize,
        /// Valid sample.
        valid: bool,
    },
    /// The cell is parked (server-directed wait, B06).
    Parked {
        /// Cell.
        cell: usize,
        /// How long.
        wait: Duration,
    },
    /// The cell was stopped for this run (fatal error); reported once.
    Stopped {
        /// Cell.
        cell: usize,
        /// Why.
        error: String,
    },
    /// The run is over.
    Finished,
}

/// Receives events (must be cheap; called from worker tasks).
pub trait EventSink: Send + Sync {
    /// Handle one event.
    fn emit(&self, event: Event);
}

/// Discard events.
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: Event) {}
}

/// Counters of one cell.
#[derive(Debug, Clone, Default)]
pub struct CellProgress {
    /// Cell label.
    pub name: String,
    /// Slots in the design.
    pub total: u64,
    /// Items to do in this run.
    pub pending: u64,
    /// Valid before the run.
    pub already_valid: u64,
    /// Items finished in this run.
    pub done: u64,
    /// ... of which valid.
    pub valid: u64,
    /// ... of which invalid.
    pub invalid: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Failed attempts.
    pub failed_attempts: u64,
    /// Failed attempts that were 429s (counted apart from 5xx, A.2).
    pub rate_limited: u64,
    /// Items currently waiting to retry.
    pub retrying: u64,
    /// Tokens used.
    pub tokens: u64,
    /// Cost so far, USD.
    pub cost_usd: f64,
    /// Stopped with this error.
    pub stopped: Option<String>,
    /// Parked until.
    pub parked_until: Option<Instant>,
    /// Sample ids waiting for a retry.
    waiting: std::collections::HashSet<String>,
}

/// Run-wide progress state built from events.
#[derive(Debug)]
pub struct Progress {
    /// Per cell.
    pub cells: Vec<CellProgress>,
    /// Run start.
    pub started: Instant,
    /// Run id.
    pub run_id: i64,
    /// Run finished.
    pub finished: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            cells: Vec::new(),
            started: Instant::now(),
            run_id: 0,
            finished: false,
        }
    }
}

impl Progress {
    /// Fold one event in.
    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::Started { run_id, cells } => {
                self.run_id = *run_id;
                self.started = Instant::now();
                self.cells = cells
                    .iter()
                    .map(|(n, t, a, p)| CellProgress {
                        name: n.clone(),
                        total: *t,
                        already_valid: *a,
                        pending: *p,
                        ..Default::default()
                    })
                    .collect();
            }
            Event::Attempt {
                cell,
                sample,
                valid,
                reason,
                tokens,
                cost_usd,
                retry_in,
            } => {
                if let Some(c) = self.cells.get_mut(*cell) {
                    c.attempts += 1;
                    c.tokens += tokens;
                    c.cost_usd += cost_usd;
                    if !valid {
                        c.failed_attempts += 1;
                        if reason.as_deref() == Some("http_429") {
                            c.rate_limited += 1;
                        }
                    }
                    if retry_in.is_some() {
                        c.waiting.insert(sample.clone());
                    } else {
                        c.waiting.remove(sample);
                    }
                    c.retrying = c.waiting.len() as u64;
                }
            }
            Event::ItemDone { cell, valid } => {
                if let Some(c) = self.cells.get_mut(*cell) {
                    c.done += 1;
                    if *valid {
                        c.valid += 1;
                    } else {
                        c.invalid += 1;
                    }
                }
            }
            Event::Parked { cell, wait } => {
                if let Some(c) = self.cells.get_mut(*cell) {
                    c.parked_until = Some(Instant::now() + *wait);
                }
            }
            Event::Stopped { cell, error } => {
                if let Some(c) = self.cells.get_mut(*cell) {
                    c.stopped = Some(error.clone());
                    c.waiting.clear();
                    c.retrying = 0;
                }
            }
            Event::Finished => self.finished = true,
        }
    }

    /// Overall totals as one pseudo-cell named `all`.
    pub fn overall(&self) -> CellProgress {
        let mut t = CellProgress {
            name: "all".into(),
            ..Default::default()
        };
        for c in &self.cells {
            t.total += c.total;
            t.pending += c.pending;
            t.already_valid += c.already_valid;
            t.done += c.done;
            t.valid += c.valid;
            t.invalid += c.invalid;
            t.attempts += c.attempts;
            t.failed_attempts += c.failed_attempts;
            t.rate_limited += c.rate_limited;
            t.retrying += c.retrying;
            t.tokens += c.tokens;
            t.cost_usd += c.cost_usd;
        }
        t
    }

    /// One status line for a cell: counts, rate, ETA, tokens, cost.
    pub fn line(&self, c: &CellProgress) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = c.done as f64 / secs;
        let left = c.pending.saturating_sub(c.done);
        let eta = if left == 0 {
            "done".to_string()
        } else if rate > 0.0 {
            fmt_secs(left as f64 / rate)
        } else {
            "?".to_string()
        };
        let mut s = format!(
            "{:<28} {:>5}/{:<5} valid {:>5} invalid {:>4} retrying {:>3} fails {:>4} (429: {}) {:>6.1}/s ETA {:>6} tok {:>9} ${:.4}",
            c.name,
            c.done,
            c.pending,
            c.valid,
            c.invalid,
            c.retrying,
            c.failed_attempts,
            c.rate_limited,
            rate,
            eta,
            c.tokens,
            c.cost_usd
        );
        if let Some(e) = &c.stopped {
            s.push_str(&format!("  STOPPED: {e}"));
        } else if let Some(p) = c.parked_until.filter(|p| *p > Instant::now()) {
            s.push_str(&format!(
                "  parked {}",
                fmt_secs((p - Instant::now()).as_secs_f64())
            ));
        }
        s
    }
}

fn fmt_secs(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// A sink that keeps a [`Progress`] behind a mutex (the CLI reads it to draw).
#[derive(Default)]
pub struct ProgressSink {
    /// The state.
    pub state: Mutex<Progress>,
    /// Lines to print once (stops, parks), drained by the drawer.
    pub notices: Mutex<Vec<String>>,
}

impl EventSink for ProgressSink {
    fn emit(&self, event: Event) {
        if let Ok(mut st) = self.state.lock() {
            let notice = match &event {
                Event::Stopped { cell, error } => Some(format!(
                    "cell {} stopped: {error}",
                    st.cells.get(*cell).map(|c| c.name.as_str()).unwrap_or("?")
                )),
                Event::Parked { cell, wait } => Some(format!(
                    "cell {} parked for {} (server-directed wait)",
                    st.cells.get(*cell).map(|c| c.name.as_str()).unwrap_or("?"),
                    fmt_secs(wait.as_secs_f64())
                )),
                _ => None,
            };
            st.apply(&event);
            if let (Some(n), Ok(mut v)) = (notice, self.notices.lock()) {
                v.push(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(sample: &str, valid: bool, retry: bool) -> Event {
        Event::Attempt {
            cell: 0,
            sample: sample.into(),
            valid,
            reason: (!valid).then(|| "http_429".to_string()),
            tokens: 10,
            cost_usd: 0.5,
            retry_in: retry.then_some(Duration::from_millis(5)),
        }
    }

    #[test]
    fn counters_follow_events() {
        let mut p = Progress::default();
        p.apply(&Event::Started {
            run_id: 1,
            cells: vec![("c".into(), 120, 20, 100)],
        });
        p.apply(&attempt("G1_1", false, true));
        p.apply(&attempt("G1_2", false, true));
        assert_eq!(p.cells[0].retrying, 2);
        p.apply(&attempt("G1_1", true, false));
        p.apply(&Event::ItemDone {
            cell: 0,
            valid: true,
        });
        p.apply(&attempt("G1_2", false, false));
        p.apply(&Event::ItemDone {
            cell: 0,
            valid: false,
        });
        let c = &p.cells[0];
        assert_eq!((c.done, c.valid, c.invalid, c.retrying), (2, 1, 1, 0));
        assert_eq!(
            (c.attempts, c.failed_attempts, c.rate_limited, c.tokens),
            (4, 3, 3, 40)
        );
        assert!((c.cost_usd - 2.0).abs() < 1e-12);
        assert!(p.line(c).contains("valid     1"));
    }
}
