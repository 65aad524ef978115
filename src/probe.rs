//! `phone-enrich probe`: one request with the job's real credentials, shown whole. It is what a
//! user runs before a first large job against the real service.
//!
//! Contract: [`probe`] sends one request for the numbers given (the provider's own example
//! number by default) through the pacer, as a run sends it (gated, paced, counted, no retry),
//! and prints on stdout what was sent, the raw answer and what the parser made of it, the
//! password redacted everywhere, and whether a run would accept it. It returns how a run would
//! end on such an answer, as the [`JobError`] whose kind the binary maps to an exit code. With
//! an accounts file, the request goes with its first account.

use anyhow::anyhow;

use crate::config::Job;
use crate::normalize::{Normalized, Normalizer, E164};
use crate::outcome::{ExitKind, JobError};
use crate::pacer::{PacerBuilder, Sent};
use crate::provider::answer::{decode, Answered, Fmt};
use crate::provider::rejected::Redactor;
use crate::provider::{ErrorClass, NumberAnswer, RawAnswer};

/// The number the provider's own page uses as its example.
pub const EXAMPLE_NUMBER: E164 = E164(79999999999);

/// How much of a body is shown.
const SHOWN_BYTES: usize = 4000;

/// Sends one request for `phones` (or [`EXAMPLE_NUMBER`]) and prints it, its answer, and the
/// verdict.
pub async fn probe(job: &Job, phones: &[String]) -> Result<(), JobError> {
    let fail = |kind, error| JobError { kind, error };
    let numbers = numbers(job, phones).map_err(|e| fail(ExitKind::Usage, e))?;
    // With an accounts file, its first account.
    let mut accounts = job
        .provider
        .accounts()
        .map_err(|e| fail(ExitKind::Usage, e))?;
    accounts.truncate(1);
    let redactor = Redactor::new(&accounts[0].password);
    let login = accounts[0].login.clone();
    let connection = crate::provider::connect(&job.provider, accounts)
        .await
        .map_err(|e| fail(ExitKind::Internal, e))?;
    let client = connection.clients[0].clone();
    let listed: Vec<String> = numbers.iter().map(E164::to_string).collect();
    println!("endpoint  {}", client.endpoint());
    println!(
        "sent      POST get_operator=1 login={login} psw=*** phone={} fmt=3 charset=utf-8",
        listed.join(",")
    );
    let pacer = PacerBuilder::new(&job.provider).build(vec![Box::new(client)]);
    let sent = pacer
        .probe(&numbers)
        .await
        .ok_or_else(|| fail(ExitKind::Internal, anyhow!("the request was not sent")))?;
    if let Some(raw) = &sent.raw {
        show_raw(raw, &redactor);
    }
    show_reading(&sent, &redactor);
    verdict(&sent, &numbers)
}

/// The numbers to ask for, each read as the job reads its input.
fn numbers(job: &Job, phones: &[String]) -> anyhow::Result<Vec<E164>> {
    if phones.is_empty() {
        return Ok(vec![EXAMPLE_NUMBER]);
    }
    let normalizer = Normalizer::new(job.input.default_region, job.normalize.metadata);
    phones
        .iter()
        .map(|p| match normalizer.normalize(p) {
            Normalized::Valid(n) => Ok(n),
            _ => Err(anyhow!("--phone `{p}` is not a valid number")),
        })
        .collect()
}

fn show_raw(raw: &RawAnswer, redactor: &Redactor) {
    println!("status    {}", raw.status);
    let content_type = raw.content_type.as_deref().unwrap_or("(none)");
    println!("type      {content_type}");
    let decoded = decode::decode(&raw.body, raw.content_type.as_deref());
    let (text, read_as) = match &decoded {
        Ok(d) => (d.text.clone(), d.charset.to_string()),
        Err(why) => (String::from_utf8_lossy(&raw.body).into_owned(), why.clone()),
    };
    let format = Fmt::sniff(&text).map_or("no known format".to_string(), |f| format!("{f:?}"));
    println!(
        "body      {} bytes, read as {read_as}, {format}",
        raw.body.len()
    );
    let shown: String = redactor.text(&text).chars().take(SHOWN_BYTES).collect();
    for line in shown.lines() {
        println!("  | {line}");
    }
    if text.chars().count() > SHOWN_BYTES {
        println!("  | ...");
    }
}

fn show_reading(sent: &Sent<'_>, redactor: &Redactor) {
    let answered = match &sent.result {
        Ok(answered) => answered,
        Err(e) => return println!("parsed    {}", redactor.text(&e.to_string())),
    };
    for (number, answer) in &answered.answers {
        let what = match answer {
            NumberAnswer::Found(i) => format!(
                "ok: {}, {}, {}, mcc {}, mnc {}, tz {}",
                i.country,
                i.operator,
                i.region,
                i.mcc.map_or("none".into(), |m| m.to_string()),
                i.mnc,
                i.tz.map_or("none".into(), |t| format!("{t:+}")),
            ),
            NumberAnswer::NotFound => "not_found".into(),
            NumberAnswer::Rejected => "invalid_number (rejected by the provider)".into(),
        };
        println!("parsed    {number} {what}");
    }
    for unread in &answered.unread {
        println!(
            "unread    {} `{}`: stored empty",
            unread.field, unread.value
        );
    }
    for why in &answered.unreadable {
        println!("unread    entry {why}");
    }
}

/// Whether a run would accept the answer, printed, and how a run would end on it.
fn verdict(sent: &Sent<'_>, numbers: &[E164]) -> Result<(), JobError> {
    let (kind, says) = match &sent.result {
        Ok(answered) => return accepted(answered, numbers),
        Err(e) => match e.class() {
            ErrorClass::Auth => (
                ExitKind::Auth,
                "refused: the provider refused the credentials (a run exits 5)".to_string(),
            ),
            ErrorClass::Settings => (
                ExitKind::Usage,
                "refused: the address redirects; set provider.base_url (a run exits 2)".into(),
            ),
            ErrorClass::Untrusted => (
                ExitKind::Usage,
                "refused: the provider's certificate cannot be verified (a run exits 2)".into(),
            ),
            ErrorClass::Blocked => (
                ExitKind::Blocked,
                "refused: the provider blocks this IP (a run pauses, then exits 6)".into(),
            ),
            _ => (
                ExitKind::TooManyFailed,
                format!(
                    "not accepted: a run retries ({}), and if no request is answered it exits 4",
                    e.label()
                ),
            ),
        },
    };
    println!("verdict   {says}");
    Err(JobError {
        kind,
        error: anyhow!("probe: {says}"),
    })
}

fn accepted(answered: &Answered, numbers: &[E164]) -> Result<(), JobError> {
    let missing = numbers.len() - answered.answers.len();
    let says = match (answered.phoneless, missing) {
        (0, 0) => "accepted: a run stores these answers".to_string(),
        (p, _) if p > 0 => {
            "accepted, but list entries carry no phone: a run asks one number per request".into()
        }
        (_, m) => format!("accepted; {m} numbers left out would be asked again"),
    };
    println!("verdict   {says}");
    Ok(())
}
