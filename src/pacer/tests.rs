//! The pacer's own policy on tokio's paused clock, against a scripted client.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::*;
use crate::config::{Job, Overrides};
use crate::provider::RawAnswer;

/// A provider that gives the scripted answers in turn (then a found answer to every request)
/// and notes when each request arrived.
struct Script {
    answers: Mutex<VecDeque<Result<RawAnswer, ProviderError>>>,
    sent: Arc<Mutex<Vec<Instant>>>,
}

impl Client for Script {
    fn send<'a>(&'a self, _: &'a [E164]) -> BoxFuture<'a, Result<RawAnswer, ProviderError>> {
        self.sent.lock().unwrap().push(Instant::now());
        let next = self.answers.lock().unwrap().pop_front();
        Box::pin(async move { next.unwrap_or_else(|| Ok(json(FOUND))) })
    }
}

const FOUND: &str = r#"{"country": "Россия", "operator": "МТС", "region": "Москва", "mcc": "250", "mnc": "01", "tz": "3"}"#;

fn json(body: &str) -> RawAnswer {
    RawAnswer {
        status: 200,
        content_type: Some("application/json; charset=utf-8".into()),
        body: body.as_bytes().to_vec(),
    }
}

fn provider(settings: &str) -> ProviderConfig {
    let text = format!(
        "[input]\npath = \"in.csv\"\nphone_columns = [\"phone\"]\n[output]\npath = \"out.parquet\"\n[provider]\nkind = \"sandbox\"\n{settings}"
    );
    Job::parse(&text, Path::new("/jobs/x.toml"), &Overrides::default())
        .unwrap()
        .provider
}

/// A pacer over `answers`, and the instants of the requests it sends, from its start.
fn scripted(
    builder: PacerBuilder,
    answers: Vec<Result<RawAnswer, ProviderError>>,
) -> (Pacer, impl Fn() -> Vec<Duration>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let client = Script {
        answers: Mutex::new(answers.into()),
        sent: sent.clone(),
    };
    let times = move || {
        let sent = sent.lock().unwrap();
        sent.iter().map(|t| t.duration_since(start)).collect()
    };
    (builder.build(client), times)
}

fn failures(n: usize) -> Vec<Result<RawAnswer, ProviderError>> {
    (0..n)
        .map(|_| Err(ProviderError::Transport("connection reset".into())))
        .collect()
}

/// The gaps between consecutive instants.
fn gaps(times: &[Duration]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Retries of one list, with room for every one of them in the identical-request window.
const RETRIES: &str = "retry_base_delay = \"1s\"\nretry_max_delay = \"10s\"\nmax_retries = 5\nidentical_limit = \"10/60s\"\n";

fn secs(s: &[u64]) -> Vec<Duration> {
    s.iter().map(|s| Duration::from_secs(*s)).collect()
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_exponentially_up_to_the_cap() {
    let number = E164(79161234567);
    // Five failures, then an answer: five back-offs, doubling from 1 s, capped at 10 s.
    let builder = PacerBuilder::new(&provider(RETRIES)).without_jitter();
    let (pacer, sent) = scripted(builder, failures(5));
    let result = pacer.lookup(vec![number]).await;
    assert_eq!(gaps(&sent()), secs(&[1, 2, 4, 8, 10]));
    assert_eq!(result.answers.len(), 1);
    assert!(result.failed.is_empty());
    assert_eq!(pacer.counters.retries.load(Ordering::Relaxed), 5);
    // One failure more than `max_retries` allows: the number fails after six requests.
    let builder = PacerBuilder::new(&provider(RETRIES)).without_jitter();
    let (pacer, sent) = scripted(builder, failures(6));
    let result = pacer.lookup(vec![number]).await;
    assert_eq!(sent().len(), 6);
    assert_eq!(result.failed, vec![number]);
    assert!(result.answers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn full_jitter_stays_within_the_schedule() {
    let schedule = secs(&[1, 2, 4, 8, 10]);
    let mut all = Vec::new();
    for _ in 0..20 {
        let (pacer, sent) = scripted(PacerBuilder::new(&provider(RETRIES)), failures(5));
        assert_eq!(pacer.lookup(vec![E164(79161234567)]).await.answers.len(), 1);
        let gaps = gaps(&sent());
        assert_eq!(gaps.len(), schedule.len());
        for (gap, most) in gaps.iter().zip(&schedule) {
            assert!(gap <= most, "{gaps:?}");
        }
        all.extend(gaps);
    }
    // Jittered: the delays are not all the schedule's own.
    assert!(all.iter().any(|d| !schedule.contains(d)), "{all:?}");
}

#[tokio::test(start_paused = true)]
async fn error_4_pauses_everyone_doubling_then_stops_the_job() {
    let settings = "blocked_pause = \"100ms\"\nmax_blocked_wait = \"350ms\"\n";
    let blocked = r#"{"error": "IP address is temporarily blocked", "error_code": 4}"#;
    let (pacer, sent) = scripted(
        PacerBuilder::new(&provider(settings)),
        (0..10).map(|_| Ok(json(blocked))).collect(),
    );
    let result = pacer.lookup(vec![E164(79161234567)]).await;
    // Paused 100 ms, then 200 ms; a third pause would pass 350 ms in all: the job stops.
    let ms = |m: &[u64]| {
        m.iter()
            .map(|m| Duration::from_millis(*m))
            .collect::<Vec<_>>()
    };
    assert_eq!(sent(), ms(&[0, 100, 300]));
    assert!(matches!(pacer.stopped(), Some(Stop::Blocked(_))));
    // Not failed: stopped, so the next run asks again.
    assert!(result.failed.is_empty() && result.answers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn error_9_pauses_a_window_and_lowers_the_rate() {
    let limited = r#"{"error": "too many requests", "error_code": 9}"#;
    let (pacer, sent) = scripted(
        PacerBuilder::new(&provider("request_limit = \"20/2s\"\n")),
        vec![Ok(json(limited))],
    );
    let result = pacer.lookup(vec![E164(79161234567)]).await;
    assert_eq!(sent(), secs(&[0, 2]));
    assert_eq!(result.answers.len(), 1);
    // Lowered to 15 by the error, one back by the answer.
    assert_eq!(*pacer.control.rate_cap.lock().unwrap(), 16);
}

#[tokio::test(start_paused = true)]
async fn wrong_credentials_cost_one_request_whatever_the_concurrency() {
    let auth = r#"{"error": "authorise error", "error_code": 2}"#;
    let (pacer, sent) = scripted(
        PacerBuilder::new(&provider("concurrency = 8\n")),
        (0..10).map(|_| Ok(json(auth))).collect(),
    );
    let pacer = Arc::new(pacer);
    let lookups: Vec<_> = (0..8u64)
        .map(|i| {
            let pacer = pacer.clone();
            tokio::spawn(async move { pacer.lookup(vec![E164(79161234560 + i)]).await })
        })
        .collect();
    for lookup in lookups {
        let result = lookup.await.unwrap();
        assert!(result.answers.is_empty() && result.failed.is_empty());
    }
    assert_eq!(sent().len(), 1);
    assert!(matches!(pacer.stopped(), Some(Stop::AuthRejected(_))));
}
