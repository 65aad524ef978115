//! The lookup stage: the plan's numbers through the pacer, a batch at a time, every answered
//! batch committed to the state store before it counts.
//!
//! Contract: [`Lookups::run`] starts the provider (the in-process sandbox, or a client per
//! account for the real one), keeps enough batches in flight to fill every live account's slots,
//! commits each answered batch (flushed) and only then puts it in the book, and returns the
//! stage's figures (per login too) whatever the outcome. What `batch_size = "auto"`
//! learned of the host is remembered in the state store for the next run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::task::JoinSet;

use super::summary::LookupFigures;
use super::{cache_key, stop_error, ExitKind, JobError, OrKind, RunOptions};
use crate::config::{Credentials, Job};
use crate::normalize::E164;
use crate::pacer::{BatchResult, Pacer, PacerBuilder, Stop};
use crate::plan::Plan;
use crate::progress::{Figures, Progress};
use crate::provider::rejected::{Redactor, RejectedBodies};
use crate::provider::sandbox::Sandbox;
use crate::provider::Client;
use crate::state::{now_ms, AnswerBook, ListLimit, StateStore, StoredAnswer};

/// The lookup stage of one run.
pub(super) struct Lookups<'a> {
    pub job: &'a Job,
    pub state: &'a Arc<StateStore>,
    pub options: &'a RunOptions,
    /// What an earlier run learned of the longest batch the host takes.
    pub remembered: Option<ListLimit>,
    /// Distinct numbers with a fresh answer, for the progress bar.
    pub cached: u64,
}

/// How the lookup stage ended, when nothing stopped the run.
#[derive(Debug)]
pub(super) enum LookupsEnd {
    /// Every batch was answered or given up on.
    Done,
    /// The provider answered none of the first requests (why): the numbers not looked up are
    /// written `failed`, and the run then fails with exit 4.
    Unanswered(String),
}

impl Lookups<'_> {
    /// Looks the plan up through `accounts`. Returns what the stage did whatever its outcome,
    /// and how it ended.
    pub async fn run(
        &self,
        accounts: Vec<Credentials>,
        plan: Plan,
        book: &mut AnswerBook,
    ) -> (LookupFigures, Result<LookupsEnd, JobError>) {
        let provider = &self.job.provider;
        let redactor = Redactor::of_all(accounts.iter().map(|a| a.password.as_str()));
        let connection = match crate::provider::connect(provider, accounts).await {
            Ok(connection) => connection,
            Err(e) => {
                return (
                    LookupFigures::default(),
                    Err(JobError::new(ExitKind::Internal, e)),
                )
            }
        };
        let rejected = RejectedBodies::new(&self.job.state.dir.join("rejected"), redactor);
        let clients = connection
            .clients
            .iter()
            .map(|c| Box::new(c.clone()) as Box<dyn Client>)
            .collect();
        let pacer = PacerBuilder::new(provider)
            .keep_rejected(rejected)
            .remembering(self.remembered)
            .build(clients);
        let pacer = Arc::new(pacer);
        // Room for every answer to come, so the table never grows (a copy) mid-run.
        book.reserve(plan.to_look_up());
        let ((looked_up, failed_numbers), result) = self.look_up(&pacer, plan, book).await;
        self.remember_list_limit(&pacer);
        let figures = LookupFigures {
            looked_up,
            failed_numbers,
            requests: pacer.counters.requests.load(Ordering::Relaxed),
            retries: pacer.counters.retries.load(Ordering::Relaxed),
            splits: pacer.counters.splits.load(Ordering::Relaxed),
            errors: pacer
                .counters
                .errors
                .lock()
                .unwrap()
                .clone()
                .into_iter()
                .collect(),
            accounts: pacer.accounts(),
            batch_size: {
                let (size, why) = pacer.batch_size();
                (size as u64, why)
            },
            sandbox: connection.sandbox.as_ref().map(Sandbox::stats),
            rejected_answers: pacer.rejected_files(),
        };
        let end = result.map(|()| match pacer.stopped() {
            Some(Stop::Unconfirmed(why)) => LookupsEnd::Unanswered(why),
            _ => LookupsEnd::Done,
        });
        (figures, end)
    }

    /// Keeps what `auto` learned of the host for the next run; a failure to is only logged
    /// (it costs the next run some probing, never an answer).
    fn remember_list_limit(&self, pacer: &Pacer) {
        let Some(limit) = pacer.list_limit().filter(|l| Some(*l) != self.remembered) else {
            return;
        };
        let host = cache_key(self.job);
        match self.state.set_list_limit(&host, limit) {
            Ok(()) => tracing::info!(
                host,
                taken = limit.taken,
                refused = limit.refused,
                "remembered the longest list the provider takes"
            ),
            Err(e) => tracing::warn!("remembering the longest list {host} takes: {e}"),
        }
    }

    /// Sends the plan's batches, a few more than the live accounts' slots at a time, and commits
    /// each answered one; stops sending when the pacer stops (a signal, every account refused,
    /// a long block) or a commit fails. Returns the numbers answered and the numbers given up
    /// on, whatever the outcome.
    async fn look_up(
        &self,
        pacer: &Arc<Pacer>,
        mut plan: Plan,
        book: &mut AnswerBook,
    ) -> ((u64, u64), Result<(), JobError>) {
        let cached = self.cached;
        let mut looked_up = 0u64;
        let progress = Progress::new("lookups", plan.to_look_up() as u64, self.options.progress);
        let mut in_flight: JoinSet<BatchResult> = JoinSet::new();
        let mut failed = 0u64;
        let watcher = watch_interrupt(pacer.clone(), self.options.interrupted.clone());
        let mut first_error = None;
        loop {
            // Enough batches queued to keep every slot of the live accounts busy, no more (see
            // `Pacer::batches_ahead`).
            while in_flight.len() < pacer.batches_ahead() && pacer.stopped().is_none() {
                let Some(batch) = pacer.next_batch(&mut plan) else {
                    break;
                };
                let pacer = pacer.clone();
                in_flight.spawn(async move { pacer.ask(batch).await });
            }
            let Some(done) = in_flight.join_next().await else {
                break;
            };
            let committed = match done {
                Ok(result) => self.commit(result, book).await,
                Err(e) => Err(JobError::new(
                    ExitKind::Internal,
                    anyhow!("a lookup task failed: {e}"),
                )),
            };
            let (answered, gave_up) = match committed {
                Ok(counts) => counts,
                Err(e) => {
                    pacer.stop(Stop::StateFailed);
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            looked_up += answered;
            failed += gave_up;
            progress.inc(answered + gave_up, &pacer_figures(pacer, cached, failed));
        }
        watcher.abort();
        progress.finish();
        let result = match (first_error, pacer.stopped()) {
            (Some(e), _) => Err(e),
            // The numbers not looked up are written `failed`; `run_stages` says why.
            (None, Some(Stop::Unconfirmed(_))) | (None, None) => Ok(()),
            (None, Some(stop)) => Err(stop_error(stop, looked_up, failed)),
        };
        ((looked_up, failed), result)
    }

    /// Commits a batch's answers to the state store (flushed before this returns) and then to
    /// the book; returns the numbers answered and the numbers given up on.
    async fn commit(
        &self,
        result: BatchResult,
        book: &mut AnswerBook,
    ) -> Result<(u64, u64), JobError> {
        let checked_at_ms = now_ms();
        let stored: Vec<(E164, StoredAnswer)> = result
            .answers
            .into_iter()
            .map(|(n, answer)| {
                let stored = StoredAnswer {
                    checked_at_ms,
                    answer,
                };
                (n, stored)
            })
            .collect();
        let stored = if stored.is_empty() {
            stored
        } else {
            let (state, host) = (self.state.clone(), cache_key(self.job));
            tokio::task::spawn_blocking(move || state.commit(&host, &stored).map(|()| stored))
                .await
                .or_kind(ExitKind::Internal)?
                .context("committing answers to the state store")
                .or_kind(ExitKind::Internal)?
        };
        let answered = stored.len() as u64;
        for (n, answer) in stored {
            book.insert(n, answer);
        }
        Ok((answered, result.failed.len() as u64))
    }
}

/// The pacer's counters as the lookup bar shows them, per login too.
fn pacer_figures(pacer: &Pacer, cached: u64, failed: u64) -> Figures {
    Figures {
        cached,
        requests: pacer.counters.requests.load(Ordering::Relaxed),
        retries: pacer.counters.retries.load(Ordering::Relaxed),
        failed,
        errors: pacer.counters.errors.lock().unwrap().values().sum(),
        logins: pacer.accounts(),
    }
}

/// Stops the pacer once a signal has asked the run to stop.
fn watch_interrupt(pacer: Arc<Pacer>, interrupted: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !interrupted.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pacer.stop(Stop::Interrupted);
    })
}
