//! Policy evaluation off the async runtime's thread, each rule bounded in time.
//!
//! `audit` runs its async work on one thread. A rule evaluated there would hold up
//! every other line, the progress line and the signal watcher for as long as it runs,
//! and CEL over a long member list can run for hours
//! (`members.all(a, members.all(b, members.all(c, ...)))` on 2,000 members). So each
//! read line's rules go, in one hand-off, to a small pool of dedicated threads, and the
//! line's task waits for them with a clock:
//!
//! - A rule that runs longer than `--eval-timeout` is `error` ("evaluation took too
//!   long"). The cel crate cannot cancel an evaluation, so the thread is left to finish
//!   it (its result is thrown away) and a new thread takes its place; the line's
//!   remaining rules are handed off again, each with its own budget.
//! - At most [`MAX_STUCK`] threads are left running like that. Once every thread is
//!   stuck, an evaluation waiting for one is `error` after `--eval-timeout` too, rather
//!   than queueing forever: never `pass`.
//! - After an interrupt a running rule gets at most [`INTERRUPT_GRACE`] more; rules
//!   not evaluated by then are `error` ("the run was interrupted").
//! - The threads are detached: the process exits once the reports are written,
//!   whatever a stuck thread is doing. Dropping the [`Evaluator`] lets idle ones end.
//! - A panic while evaluating is caught on its thread and handed back as the line's
//!   internal error.
//!
//! Except on small answers under linear rules: when no enabled rule's cost grows
//! faster than the number of members (the policy check's finding, `message_expr`
//! included) and the answer is at most [`INLINE_MAX_BODY`], a line's rules take tens
//! of microseconds, and the hand-off (two thread wake-ups per line) cost more CPU than
//! the evaluation itself: about a fifth of a run's CPU against a fast server. Such a
//! line is evaluated on the calling thread, panics caught the same way, and each rule's
//! time is still held against `--eval-timeout`: one over it is `error` as on the pool,
//! and the run hands every later line to the pool.

use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio::sync::Notify;

use crate::eval;
use crate::model::{Finding, LineIdentity};
use crate::policy::PolicySet;
use crate::webex::Stop;

/// Most threads evaluating at once while none is stuck: more would only compete with
/// the async thread for cores, since a line's rules take microseconds.
const MAX_WORKERS: usize = 4;
/// Most threads left to finish a rule that ran past `--eval-timeout`. Each burns a
/// core until its rule ends, so the pool stops replacing them past this.
pub(crate) const MAX_STUCK: usize = 4;
/// Largest answer (bytes of body) whose rules may be evaluated on the calling thread:
/// at most a few hundred members, so linear rules finish in well under a millisecond.
pub(crate) const INLINE_MAX_BODY: usize = 64 * 1024;
/// How much longer a running rule may take once the run is interrupted.
pub(crate) const INTERRUPT_GRACE: Duration = Duration::from_millis(200);

/// How many threads a pool keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSize {
    /// Threads evaluating while none is stuck.
    pub(crate) workers: usize,
    /// Extra threads started to replace stuck ones, at most.
    pub(crate) max_stuck: usize,
}

impl PoolSize {
    /// One worker per core, up to [`MAX_WORKERS`].
    fn for_this_machine() -> PoolSize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        PoolSize {
            workers: cores.clamp(1, MAX_WORKERS),
            max_stuck: MAX_STUCK,
        }
    }
}

/// Evaluates lines for one run: the policies, the day waivers are judged by, the
/// per-rule time limit and the threads.
pub(crate) struct Evaluator {
    policies: Arc<PolicySet>,
    /// `PolicySet::rules` index of each enabled rule, in evaluation order.
    enabled: Vec<usize>,
    today: NaiveDate,
    timeout: Duration,
    pool: Pool,
    /// Small answers are evaluated on the calling thread: the rules are linear and no
    /// rule has run past the timeout there yet.
    inline: AtomicBool,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("rules", &self.enabled.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// How one hand-off ended.
enum End {
    /// Every rule handed off was evaluated (or evaluation panicked).
    Finished(Vec<Finding>, Result<(), String>),
    /// The rules before the one that ran too long, and that one's error message.
    Cut(Vec<Finding>, String),
    /// No thread took the work in time: every rule handed off is `error` with this.
    Unstarted(String),
}

impl Evaluator {
    /// An evaluator with one worker thread per core (up to 4).
    pub(crate) fn new(policies: Arc<PolicySet>, today: NaiveDate, timeout: Duration) -> Self {
        Self::with_size(policies, today, timeout, PoolSize::for_this_machine())
    }

    /// An evaluator with a pool of the given size.
    pub(crate) fn with_size(
        policies: Arc<PolicySet>,
        today: NaiveDate,
        timeout: Duration,
        size: PoolSize,
    ) -> Self {
        let enabled = policies.enabled_rules().map(|(i, _)| i).collect();
        Evaluator {
            inline: AtomicBool::new(policies.linear),
            policies,
            enabled,
            today,
            timeout,
            pool: Pool::new(size),
        }
    }

    /// The policies it evaluates.
    pub(crate) fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// Every enabled rule's finding for one line, in rule order, as
    /// [`eval::evaluate`] gives them, except that a rule running longer than the
    /// timeout (or past an interrupt) is `error`. `body_bytes` is the size of the
    /// answer the settings came from. `Err` holds the message of a panic while
    /// evaluating.
    pub(crate) async fn evaluate(
        &self,
        line_id: &str,
        identity: &Arc<LineIdentity>,
        settings: &Arc<serde_json::Value>,
        body_bytes: usize,
        stop: &Stop,
    ) -> Result<Vec<Finding>, String> {
        if body_bytes <= INLINE_MAX_BODY && self.inline.load(Ordering::Relaxed) {
            return self.evaluate_here(line_id, identity, settings);
        }
        let mut findings = Vec::with_capacity(self.enabled.len());
        while findings.len() < self.enabled.len() {
            let slot = self.pool.submit(Job {
                slot: Arc::new(Slot::default()),
                policies: self.policies.clone(),
                line_id: line_id.to_string(),
                identity: identity.clone(),
                settings: settings.clone(),
                today: self.today,
                first: findings.len(),
            });
            match self.wait(&slot, findings.len(), stop).await {
                End::Finished(done, result) => {
                    result?;
                    findings.extend(done);
                }
                End::Cut(done, message) => {
                    findings.extend(done);
                    let rule = self.enabled[findings.len()];
                    tracing::warn!(
                        line = line_id,
                        line_name = identity.label(),
                        rule = self.policies.rules[rule].id.as_str(),
                        "{message}: result error"
                    );
                    findings.push(eval::error(rule, message));
                    if stop.reason().is_some() {
                        self.fill(&mut findings, "not evaluated: the run was interrupted");
                    }
                }
                End::Unstarted(message) => {
                    tracing::warn!(
                        line = line_id,
                        line_name = identity.label(),
                        "{message}: results error"
                    );
                    self.fill(&mut findings, &message);
                }
            }
        }
        Ok(findings)
    }

    /// [`Evaluator::evaluate`] on the calling thread, for a small answer under linear
    /// rules. A rule that took longer than the timeout is `error` all the same, and
    /// turns this off for the rest of the run.
    fn evaluate_here(
        &self,
        line_id: &str,
        identity: &LineIdentity,
        settings: &serde_json::Value,
    ) -> Result<Vec<Finding>, String> {
        let mut findings = Vec::with_capacity(self.enabled.len());
        // The first rule's time includes binding the line, as on the pool.
        let mut since = Instant::now();
        let line = eval::LineRef {
            id: line_id,
            identity,
        };
        catch_unwind(AssertUnwindSafe(|| {
            eval::evaluate_each(&self.policies, line, settings, self.today, 0, |f| {
                let now = Instant::now();
                let finding = if now.duration_since(since) > self.timeout {
                    self.inline.store(false, Ordering::Relaxed);
                    let rule = self.enabled[findings.len()];
                    let message = format!(
                        "evaluation took too long (over {})",
                        humantime::format_duration(self.timeout)
                    );
                    tracing::warn!(
                        line = line_id,
                        line_name = identity.label(),
                        rule = self.policies.rules[rule].id.as_str(),
                        "{message}: result error"
                    );
                    eval::error(rule, message)
                } else {
                    f
                };
                findings.push(finding);
                since = now;
                ControlFlow::Continue(())
            });
        }))
        .map_err(|p| panic_message(p.as_ref()))?;
        Ok(findings)
    }

    /// The rules not evaluated yet, as `error` with `message`.
    fn fill(&self, findings: &mut Vec<Finding>, message: &str) {
        let rest = self.enabled[findings.len()..].iter();
        findings.extend(rest.map(|&rule| eval::error(rule, message.to_string())));
    }

    /// Waits for a hand-off of the rules from the `first` enabled one on.
    async fn wait(&self, slot: &Slot, first: usize, stop: &Stop) -> End {
        let expected = self.enabled.len() - first;
        let too_long = humantime::format_duration(self.timeout);
        let mut queued_since = Instant::now();
        loop {
            let stopping = stop.reason().is_some();
            let budget = if stopping {
                self.timeout.min(INTERRUPT_GRACE)
            } else {
                self.timeout
            };
            let now = Instant::now();
            let deadline = {
                let mut state = lock(&slot.state);
                match state.phase {
                    Phase::Finished(_) => return state.take_finished(),
                    Phase::Running { since } if now < since + budget => since + budget,
                    Phase::Running { .. } if state.findings.len() == expected => {
                        // Every rule is done; the thread is only about to say so.
                        state.phase = Phase::Finished(Ok(()));
                        return state.take_finished();
                    }
                    Phase::Running { .. } => {
                        // Counted under the slot's lock, before the thread can see
                        // that it was abandoned and count itself back.
                        state.phase = Phase::Abandoned { running: true };
                        self.pool.stuck();
                        let message = if stopping {
                            "not evaluated: the run was interrupted while this rule ran".to_string()
                        } else {
                            format!("evaluation took too long (over {too_long})")
                        };
                        return End::Cut(std::mem::take(&mut state.findings), message);
                    }
                    Phase::Queued if now < queued_since + budget => queued_since + budget,
                    Phase::Queued if !stopping && self.pool.healthy() > 0 => {
                        // Busy but not stuck: it will be taken.
                        queued_since = now;
                        now + budget
                    }
                    Phase::Queued | Phase::Abandoned { .. } => {
                        state.phase = Phase::Abandoned { running: false };
                        return End::Unstarted(if stopping {
                            "not evaluated: the run was interrupted".to_string()
                        } else {
                            format!(
                                "evaluation took too long (over {too_long} waiting for an \
                                 evaluation thread: every one is busy with a rule that ran \
                                 too long)"
                            )
                        });
                    }
                }
            };
            tokio::select! {
                () = slot.done.notified() => {}
                () = tokio::time::sleep_until(deadline.into()) => {}
                _ = stop.stopped(), if !stopping => {}
            }
        }
    }
}

/// The threads and their queue.
struct Pool {
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

/// What the threads share with the pool.
struct Shared {
    queue: Mutex<mpsc::Receiver<Job>>,
    counts: Mutex<Counts>,
    size: PoolSize,
}

#[derive(Default)]
struct Counts {
    /// Threads running.
    live: usize,
    /// Of those, threads busy with a rule whose result nobody waits for any more.
    stuck: usize,
    /// Threads ever started, for their names.
    started: usize,
}

impl Pool {
    fn new(size: PoolSize) -> Pool {
        let (queue, receiver) = mpsc::channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(receiver),
            counts: Mutex::new(Counts::default()),
            size,
        });
        let pool = Pool { queue, shared };
        let mut counts = lock(&pool.shared.counts);
        for _ in 0..size.workers {
            spawn(&pool.shared, &mut counts);
        }
        drop(counts);
        pool
    }

    fn submit(&self, job: Job) -> Arc<Slot> {
        let slot = job.slot.clone();
        // The receiver lives as long as some thread does; with none (none could be
        // started) the job is dropped and its wait ends as unstarted.
        let _ = self.queue.send(job);
        slot
    }

    /// Threads free to take work, now or once their current rule ends.
    fn healthy(&self) -> usize {
        let c = lock(&self.shared.counts);
        c.live - c.stuck
    }

    /// A thread was left with a rule nobody waits for: replace it, within bounds.
    fn stuck(&self) {
        let mut c = lock(&self.shared.counts);
        c.stuck += 1;
        let size = self.shared.size;
        if c.live - c.stuck < size.workers && c.live < size.workers + size.max_stuck {
            spawn(&self.shared, &mut c);
        }
    }
}

fn spawn(shared: &Arc<Shared>, counts: &mut Counts) {
    counts.started += 1;
    let name = format!("ptt-eval-{}", counts.started);
    let for_thread = shared.clone();
    match std::thread::Builder::new()
        .name(name)
        .spawn(move || work(&for_thread))
    {
        Ok(_detached) => counts.live += 1,
        Err(e) => tracing::warn!("cannot start an evaluation thread: {e}"),
    }
}

/// A thread's life: take jobs until the pool is gone.
fn work(shared: &Shared) {
    loop {
        let Ok(job) = lock(&shared.queue).recv() else {
            break;
        };
        if !run(job) {
            continue;
        }
        // Back from a rule that ran too long: a new thread took this one's place, so
        // one of them may go.
        let mut c = lock(&shared.counts);
        c.stuck -= 1;
        if c.live - c.stuck > shared.size.workers {
            c.live -= 1;
            return;
        }
    }
    lock(&shared.counts).live -= 1;
}

/// One hand-off: a line's rules from the `first` enabled one on.
struct Job {
    slot: Arc<Slot>,
    policies: Arc<PolicySet>,
    line_id: String,
    identity: Arc<LineIdentity>,
    settings: Arc<serde_json::Value>,
    today: NaiveDate,
    first: usize,
}

/// Where a job's progress meets the line waiting for it.
#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    done: Notify,
}

#[derive(Default)]
struct State {
    phase: Phase,
    findings: Vec<Finding>,
}

impl State {
    fn take_finished(&mut self) -> End {
        let result = match std::mem::replace(&mut self.phase, Phase::Abandoned { running: false }) {
            Phase::Finished(result) => result,
            _ => Ok(()),
        };
        End::Finished(std::mem::take(&mut self.findings), result)
    }
}

#[derive(Default)]
enum Phase {
    /// Waiting for a thread.
    #[default]
    Queued,
    /// A rule is running; it (or the line's binding, for the first) began at `since`.
    Running { since: Instant },
    /// Every rule evaluated, or a panic's message.
    Finished(Result<(), String>),
    /// Nobody waits any more; `running` when a thread was busy with it then.
    Abandoned { running: bool },
}

/// Runs a job on the calling thread. Returns whether the job was abandoned while it
/// ran, that is whether this thread was counted as stuck.
fn run(job: Job) -> bool {
    let Job {
        slot,
        policies,
        line_id,
        identity,
        settings,
        today,
        first,
    } = job;
    {
        let mut state = lock(&slot.state);
        if !matches!(state.phase, Phase::Queued) {
            return false;
        }
        state.phase = Phase::Running {
            since: Instant::now(),
        };
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let line = eval::LineRef {
            id: &line_id,
            identity: &identity,
        };
        eval::evaluate_each(&policies, line, &settings, today, first, |f| {
            let mut state = lock(&slot.state);
            if !matches!(state.phase, Phase::Running { .. }) {
                return ControlFlow::Break(());
            }
            state.findings.push(f);
            state.phase = Phase::Running {
                since: Instant::now(),
            };
            ControlFlow::Continue(())
        });
    }));
    // Before saying so: the waiting side takes the settings back when it is the last
    // to hold them.
    drop(settings);
    let mut state = lock(&slot.state);
    match state.phase {
        Phase::Running { .. } => {
            state.phase = Phase::Finished(outcome.map_err(|p| panic_message(p.as_ref())));
            drop(state);
            slot.done.notify_one();
            false
        }
        Phase::Abandoned { running } => running,
        Phase::Queued | Phase::Finished(_) => false,
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    format!("evaluation panicked: {text}")
}

/// A lock that outlives a panic elsewhere: every state here stays consistent between
/// statements, and evaluation panics are caught before they reach a lock.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
