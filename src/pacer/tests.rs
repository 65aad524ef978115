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

    fn login(&self) -> &str {
        "script"
    }
}

/// One login of several: answers every batch whole, or refuses every request with error 2, and
/// notes when each request arrived and with which login.
struct Login {
    name: &'static str,
    refused: bool,
    sent: Arc<Mutex<Vec<(Instant, &'static str)>>>,
}

impl Client for Login {
    fn send<'a>(&'a self, list: &'a [E164]) -> BoxFuture<'a, Result<RawAnswer, ProviderError>> {
        self.sent.lock().unwrap().push((Instant::now(), self.name));
        let body = match self.refused {
            true => r#"{"error": "authorise error", "error_code": 2}"#.to_string(),
            false => found_list(list),
        };
        Box::pin(async move { Ok(json(&body)) })
    }

    fn login(&self) -> &str {
        self.name
    }
}

/// The documented answer to `batch`: an entry with its `phone` per number.
fn found_list(list: &[E164]) -> String {
    let entries: Vec<String> = list
        .iter()
        .map(|n| FOUND.replacen('{', &format!("{{\"phone\": \"{n}\", "), 1))
        .collect();
    match list.len() {
        1 => FOUND.to_string(),
        _ => format!("[{}]", entries.join(",")),
    }
}

/// The logins `names` (those in `refused` answer error 2), their pacer, and every request's
/// instant and login.
type Sends = Arc<Mutex<Vec<(Instant, &'static str)>>>;
fn logins(settings: &str, names: &[&'static str], refused: &[&str]) -> (Arc<Pacer>, Sends) {
    let sent = Sends::default();
    let clients = names
        .iter()
        .map(|name| {
            Box::new(Login {
                name,
                refused: refused.contains(name),
                sent: sent.clone(),
            }) as Box<dyn Client>
        })
        .collect();
    let pacer = PacerBuilder::new(&provider(settings)).build(clients);
    (Arc::new(pacer), sent)
}

/// `batches` lookups at once, of one number each from `first` on: what became of each.
async fn look_up_at_once(pacer: &Arc<Pacer>, first: u64, batches: u64) -> Vec<BatchResult> {
    let lookups: Vec<_> = (0..batches)
        .map(|i| {
            let pacer = pacer.clone();
            tokio::spawn(async move { pacer.ask(vec![E164(first + i)]).await })
        })
        .collect();
    let mut results = Vec::new();
    for lookup in lookups {
        results.push(lookup.await.unwrap());
    }
    results
}

/// `batches` lookups at once, each of which must be answered.
async fn all_answered(pacer: &Arc<Pacer>, batches: u64) {
    let results = look_up_at_once(pacer, 79161230000, batches).await;
    assert!(results.iter().all(|r| r.answers.len() == 1), "{results:?}");
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
    (builder.build(vec![Box::new(client)]), times)
}

/// An answered request (which opens the first-request gate), then `n` connection failures.
fn failures(n: usize) -> Vec<Result<RawAnswer, ProviderError>> {
    let failure = || {
        Err(ProviderError::Transport {
            message: "connection reset".into(),
            source: None,
        })
    };
    std::iter::once(Ok(json(FOUND)))
        .chain((0..n).map(|_| failure()))
        .collect()
}

/// An answered request, then `body` `n` times.
fn answers(body: &str, n: usize) -> Vec<Result<RawAnswer, ProviderError>> {
    std::iter::once(json(FOUND))
        .chain((0..n).map(|_| json(body)))
        .map(Ok)
        .collect()
}

/// The first request: answered, so the credentials are, and the gate is open.
async fn warm_up(pacer: &Pacer) {
    assert_eq!(pacer.ask(vec![E164(79000000000)]).await.answers.len(), 1);
}

/// The gaps between consecutive instants, after the warm-up's request.
fn gaps(times: &[Duration]) -> Vec<Duration> {
    times[1..].windows(2).map(|w| w[1] - w[0]).collect()
}

/// Retries of one batch, with room for every one of them in the identical-request window.
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
    warm_up(&pacer).await;
    let result = pacer.ask(vec![number]).await;
    assert_eq!(gaps(&sent()), secs(&[1, 2, 4, 8, 10]));
    assert_eq!(result.answers.len(), 1);
    assert!(result.failed.is_empty());
    assert_eq!(pacer.counters.retries.load(Ordering::Relaxed), 5);
    // One failure more than `max_retries` allows: the number fails after six requests.
    let builder = PacerBuilder::new(&provider(RETRIES)).without_jitter();
    let (pacer, sent) = scripted(builder, failures(6));
    warm_up(&pacer).await;
    let result = pacer.ask(vec![number]).await;
    assert_eq!(sent().len(), 1 + 6);
    assert_eq!(result.failed, vec![number]);
    assert!(result.answers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn full_jitter_stays_within_the_schedule() {
    let schedule = secs(&[1, 2, 4, 8, 10]);
    let mut all = Vec::new();
    for _ in 0..20 {
        let (pacer, sent) = scripted(PacerBuilder::new(&provider(RETRIES)), failures(5));
        warm_up(&pacer).await;
        assert_eq!(pacer.ask(vec![E164(79161234567)]).await.answers.len(), 1);
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
    let (pacer, sent) = scripted(PacerBuilder::new(&provider(settings)), answers(blocked, 10));
    warm_up(&pacer).await;
    let result = pacer.ask(vec![E164(79161234567)]).await;
    // Paused 100 ms, then 200 ms; a third pause would pass 350 ms in all: the job stops.
    let ms = |m: &[u64]| {
        m.iter()
            .map(|m| Duration::from_millis(*m))
            .collect::<Vec<_>>()
    };
    assert_eq!(gaps(&sent()), ms(&[100, 200]));
    assert!(matches!(pacer.stopped(), Some(Stop::Blocked(_))));
    // Not failed: stopped, so the next run asks again.
    assert!(result.failed.is_empty() && result.answers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn error_9_pauses_a_window_and_lowers_the_rate() {
    let limited = r#"{"error": "too many requests", "error_code": 9}"#;
    let (pacer, sent) = scripted(
        PacerBuilder::new(&provider("request_limit = \"20/2s\"\n")),
        answers(limited, 1),
    );
    warm_up(&pacer).await;
    let result = pacer.ask(vec![E164(79161234567)]).await;
    assert_eq!(gaps(&sent()), secs(&[2]));
    assert_eq!(result.answers.len(), 1);
    // Halved to 10 by the error (and concurrency from 4 to 2); it climbs back only after two
    // windows' worth of clean answers.
    let caps = pacer.accounts.get(0).caps();
    assert_eq!((caps.rate, caps.at_once), (10, 2));
}

/// Eight lookups at once against a provider that answers `body` to everything: the requests
/// that went out, and why the job stopped.
async fn eight_lookups_against(body: &str) -> (Vec<Duration>, Option<Stop>) {
    let settings = "concurrency = 8\nretry_base_delay = \"1s\"\nretry_max_delay = \"1s\"\n";
    let builder = PacerBuilder::new(&provider(settings)).without_jitter();
    let (pacer, sent) = scripted(builder, (0..20).map(|_| Ok(json(body))).collect());
    let pacer = Arc::new(pacer);
    let results = look_up_at_once(&pacer, 79161234560, 8).await;
    assert!(results.iter().all(|r| r.answers.is_empty()), "{results:?}");
    (sent(), pacer.stopped())
}

#[tokio::test(start_paused = true)]
async fn before_any_answer_two_requests_at_most_then_the_job_stops() {
    // Wrong credentials: one request, whatever the concurrency.
    let (sent, stop) =
        eight_lookups_against(r#"{"error": "authorise error", "error_code": 2}"#).await;
    assert_eq!(sent.len(), 1);
    assert!(matches!(stop, Some(Stop::AuthRejected(_))), "{stop:?}");
    // A page that is no answer: a second try after the back-off, then no more.
    let (sent, stop) = eight_lookups_against("<html><body>Bad gateway</body></html>").await;
    assert_eq!(sent, secs(&[0, 1]));
    assert!(matches!(stop, Some(Stop::Unconfirmed(_))), "{stop:?}");
    // Blocked from the start: the pause error 4 calls for, one more try, then no more.
    let (sent, stop) = eight_lookups_against(r#"{"error": "blocked", "error_code": 4}"#).await;
    assert_eq!(sent, secs(&[0, 300]));
    assert!(matches!(stop, Some(Stop::Blocked(_))), "{stop:?}");
}

#[tokio::test(start_paused = true)]
async fn before_any_answer_the_second_try_is_one_number() {
    // Every batch is refused whole (one bad number in each), every number alone answered.
    struct Lists(Arc<Mutex<Vec<usize>>>);
    impl Client for Lists {
        fn send<'a>(&'a self, list: &'a [E164]) -> BoxFuture<'a, Result<RawAnswer, ProviderError>> {
            self.0.lock().unwrap().push(list.len());
            let body = match list.len() {
                1 => FOUND,
                _ => r#"{"error": "parameters error", "error_code": 1}"#,
            };
            Box::pin(async move { Ok(json(body)) })
        }

        fn login(&self) -> &str {
            "lists"
        }
    }
    let sent = Arc::new(Mutex::new(Vec::new()));
    let pacer = PacerBuilder::new(&provider("concurrency = 4\n"))
        .build(vec![Box::new(Lists(sent.clone()))]);
    let pacer = Arc::new(pacer);
    let lookups: Vec<_> = (0..4u64)
        .map(|l| {
            let pacer = pacer.clone();
            let list: Vec<E164> = (0..8).map(|i| E164(79161234500 + l * 10 + i)).collect();
            tokio::spawn(async move { pacer.ask(list).await })
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap().answers.len(), 8);
    }
    // A batch of 8 refused; whichever lookup went next, it went with one number, answered.
    assert_eq!(sent.lock().unwrap()[..2], [8, 1]);
    assert!(pacer.stopped().is_none());
}

/// The instant of the last request, and each login's most requests within any `window`.
fn windows_used(sent: &Sends, window: Duration) -> (Duration, HashMap<&'static str, usize>) {
    let sent = sent.lock().unwrap().clone();
    let start = sent.iter().map(|(t, _)| *t).min().unwrap();
    let last = sent.iter().map(|(t, _)| *t).max().unwrap();
    let mut fullest = HashMap::new();
    for (t, login) in &sent {
        let in_window = sent
            .iter()
            .filter(|(u, l)| l == login && *u >= *t && u.duration_since(*t) < window)
            .count();
        let most = fullest.entry(*login).or_insert(0);
        *most = in_window.max(*most);
    }
    (last.duration_since(start), fullest)
}

#[tokio::test(start_paused = true)]
async fn three_accounts_take_a_third_of_the_windows_of_one() {
    let settings = "request_limit = \"20/2s\"\nconcurrency = 4\n";
    let window = Duration::from_secs(2);
    let (one, sent_one) = logins(settings, &["a"], &[]);
    all_answered(&one, 120).await;
    let (three, sent_three) = logins(settings, &["a", "b", "c"], &[]);
    all_answered(&three, 120).await;
    let (took_one, fullest_one) = windows_used(&sent_one, window);
    let (took_three, fullest_three) = windows_used(&sent_three, window);
    // 120 requests at 20 per window: 6 windows for one login, 2 for three.
    assert!(
        took_three.as_secs_f64() <= 0.4 * took_one.as_secs_f64(),
        "three accounts took {took_three:?}, one {took_one:?}"
    );
    assert_eq!(fullest_one[&"a"], 20);
    for login in ["a", "b", "c"] {
        assert_eq!(fullest_three[&login], 20, "{login}: {fullest_three:?}");
    }
    let figures = three.accounts();
    assert_eq!(figures.iter().map(|f| f.requests).sum::<u64>(), 120);
    assert!(
        figures.iter().all(|f| f.requests == 40 && f.answered == 40),
        "{figures:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_account_is_dropped_after_one_request_and_the_others_carry_on() {
    let (pacer, sent) = logins("concurrency = 4\n", &["a", "b", "c"], &["b"]);
    all_answered(&pacer, 30).await;
    assert!(pacer.stopped().is_none(), "{:?}", pacer.stopped());
    let by_b = sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, l)| *l == "b")
        .count();
    assert_eq!(by_b, 1, "a refused login costs one request");
    let figures = pacer.accounts();
    let b = figures.iter().find(|f| f.login == "b").unwrap();
    assert!(b.dropped.as_deref().unwrap().contains("error 2"), "{b:?}");
    assert_eq!(b.errors.get("api_2"), Some(&1));
    assert_eq!(figures.iter().map(|f| f.answered).sum::<u64>(), 30);
    assert_eq!(pacer.concurrency(), 8, "b's slots are gone");

    // Every account refused: the job stops as refused, naming each login.
    let (pacer, sent) = logins("concurrency = 4\n", &["a", "b"], &["a", "b"]);
    let result = pacer.ask(vec![E164(79161234567)]).await;
    assert!(result.answers.is_empty() && result.failed.is_empty());
    assert_eq!(sent.lock().unwrap().len(), 2);
    match pacer.stopped() {
        Some(Stop::AuthRejected(why)) => {
            assert!(
                why.contains("login `a`") && why.contains("login `b`"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn error_4_pauses_every_account_not_only_the_one_that_got_it() {
    /// Answers after a second; the first login's second request gets error 4 at once.
    struct Slow {
        login: &'static str,
        sent: Sends,
    }
    impl Client for Slow {
        fn send<'a>(&'a self, _: &'a [E164]) -> BoxFuture<'a, Result<RawAnswer, ProviderError>> {
            let mut sent = self.sent.lock().unwrap();
            sent.push((Instant::now(), self.login));
            let mine = sent.iter().filter(|(_, l)| *l == self.login).count();
            let body = match (self.login, mine) {
                ("a", 2) => r#"{"error": "blocked", "error_code": 4}"#,
                _ => FOUND,
            };
            let delay = Duration::from_secs(u64::from(body == FOUND));
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(json(body))
            })
        }

        fn login(&self) -> &str {
            self.login
        }
    }
    let sent = Sends::default();
    let clients = ["a", "b"]
        .into_iter()
        .map(|login| {
            let sent = sent.clone();
            Box::new(Slow { login, sent }) as Box<dyn Client>
        })
        .collect();
    let settings = "blocked_pause = \"100s\"\nconcurrency = 1\n";
    let pacer = Arc::new(PacerBuilder::new(&provider(settings)).build(clients));
    let start = Instant::now();
    all_answered(&pacer, 6).await;
    // Both logins answered their first request at 1 s; `a`'s second got error 4 at once;
    // `b`'s second, sent as its first ended, went out only after the pause.
    let sent = sent.lock().unwrap().clone();
    let at = |login| -> Vec<u64> {
        sent.iter()
            .filter(|(_, l)| *l == login)
            .map(|(t, _)| t.duration_since(start).as_secs())
            .collect()
    };
    assert_eq!(at("a")[..2], [0, 1]);
    assert_eq!(at("b")[0], 0);
    assert!(at("b").len() > 1, "{:?}", at("b"));
    assert!(at("b")[1..].iter().all(|t| *t >= 101), "{:?}", at("b"));
}

#[tokio::test(start_paused = true)]
async fn auto_batches_settle_under_the_providers_longest_with_few_requests_more() {
    /// Refuses batches longer than 250 with error 1, answers the others whole.
    struct UpTo250(Arc<Mutex<u64>>);
    impl Client for UpTo250 {
        fn send<'a>(&'a self, list: &'a [E164]) -> BoxFuture<'a, Result<RawAnswer, ProviderError>> {
            *self.0.lock().unwrap() += 1;
            let body = match list.len() {
                n if n > 250 => r#"{"error": "parameters error", "error_code": 1}"#.to_string(),
                _ => found_list(list),
            };
            Box::pin(async move { Ok(json(&body)) })
        }

        fn login(&self) -> &str {
            "auto"
        }
    }
    let requests = Arc::new(Mutex::new(0));
    let settings = "batch_size = \"auto\"\nrequest_limit = \"10000/1s\"\n";
    let pacer =
        PacerBuilder::new(&provider(settings)).build(vec![Box::new(UpTo250(requests.clone()))]);
    let numbers: polars::prelude::PlHashMap<E164, ()> = (0..50_000u64)
        .map(|i| (E164(79_000_000_000 + i), ()))
        .collect();
    let mut plan = Plan::new(&numbers, None);
    let mut answered = 0;
    while let Some(batch) = pacer.next_batch(&mut plan) {
        answered += pacer.ask(batch).await.answers.len();
    }
    assert_eq!(answered, 50_000);
    let (size, why) = pacer.batch_size();
    assert!((235..=250).contains(&size), "settled at {size}: {why}");
    let fixed = 50_000u64.div_ceil(250);
    let requests = *requests.lock().unwrap();
    assert!(
        requests as f64 <= 1.1 * fixed as f64,
        "{requests} requests against {fixed} in batches of 250"
    );
    let learned = pacer.list_limit().unwrap();
    assert_eq!((learned.taken, learned.refused.is_some()), (size, true));
}

/// On every runtime, the multi-threaded one too: a login's second try waits out the back-off
/// its first answer called for, whichever lookup sends it; the gate is held until the pause is
/// set, however long setting it takes (here a jitter that takes 30 ms of a thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn before_any_answer_the_second_try_waits_the_first_answers_pause_on_any_thread() {
    fn slow_jitter(delay: Duration) -> Duration {
        std::thread::sleep(Duration::from_millis(30));
        delay
    }
    let settings = "retry_base_delay = \"100ms\"\nretry_max_delay = \"100ms\"\nconcurrency = 8\n";
    for _ in 0..3 {
        let builder = PacerBuilder::new(&provider(settings)).jitter(slow_jitter);
        let page = Ok(json("<html><body>Bad gateway</body></html>"));
        let (pacer, sent) = scripted(builder, vec![page]);
        let pacer = Arc::new(pacer);
        let results = look_up_at_once(&pacer, 79161234560, 8).await;
        assert!(results.iter().all(|r| r.answers.len() == 1), "{results:?}");
        let sent = sent();
        assert!(
            sent[1] - sent[0] >= Duration::from_millis(100),
            "the second try went {:?} after the first failed",
            sent[1] - sent[0]
        );
    }
}
