//! Figure 8 (fuzzing): the four decoders that read untrusted input, driven by proptest
//! strategies with a fixed budget (a `TestRunner` per target with a fixed case count and an
//! RNG seeded from one printed seed, no failure persistence). Each target mixes
//!
//! - byte mutations of valid seeds (1–8 of: bit flips, byte insertions, deletions, splices of
//!   the input with itself, insertions of tokens that matter to the format), and
//! - structure-aware inputs: random token sequences for the command parser, arbitrary JSON
//!   values and random edits of valid payloads (a value replaced by an arbitrary one, a key
//!   removed) for the JSON decoders, random edits of `examples/acme.toml`'s TOML tree for the
//!   config loader.
//!
//! A panic anywhere (a hook counts them, in server tasks too) or a 5xx response fails the
//! goal; proptest then shrinks the input to a minimal failing one and the run prints it.
//!
//! - command parser: `Registry::parse_line` (the console and the shared parser);
//! - interaction decoder: JSON → serenity `Interaction` → `ClickTarget::parse`, in process,
//!   plus `ClickTarget::parse` on custom_ids, and the whole `POST /discord/interactions`
//!   route with validly signed bodies;
//! - config loader: `config::parse`;
//! - HR event decoder: the whole `POST /hr/events` route with validly signed bodies.
//!
//! Run: `cargo bench --bench fuzz` (QM_FUZZ_SEED and QM_FUZZ_SCALE override seed and budget).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use testkit::discord as fake;

mod common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use quartermaster::config::{self, DiscordConfig, DiscordMode, HrConfig};
use quartermaster::core::command::Registry;
use quartermaster::core::customid::ClickTarget;
use quartermaster::core::ports::{People, SystemClock};
use quartermaster::server;
use quartermaster::wiring;
use serde_json::{Value, json};
use sha2::Sha256;

static PANICS: AtomicUsize = AtomicUsize::new(0);

// ------------------------------------------------------------------ byte mutations of seeds

/// One byte-level mutation; positions are `Index`es, scaled to the input's length when
/// applied (so they shrink well and stay valid as the input changes).
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index, usize),
    Splice(Index, usize, Index),
    Token(Index, &'static str),
}

fn mutation(dict: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 0..8u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 0..16usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), 0..32usize, any::<Index>())
            .prop_map(|(i, n, at)| Mutation::Splice(i, n, at)),
        2 => (any::<Index>(), select(dict)).prop_map(|(i, t)| Mutation::Token(i, t)),
    ]
}

fn apply(seed: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for m in ms {
        match m {
            Mutation::Flip(i, b) if !v.is_empty() => {
                let i = i.index(v.len());
                v[i] ^= 1 << b;
            }
            Mutation::Insert(i, b) => v.insert(i.index(v.len() + 1), *b),
            Mutation::Delete(i, n) if !v.is_empty() => {
                let i = i.index(v.len());
                let n = (*n).min(v.len() - i);
                v.drain(i..i + n);
            }
            Mutation::Splice(i, n, at) if !v.is_empty() => {
                let i = i.index(v.len());
                let n = (*n).min(v.len() - i);
                let piece = v[i..i + n].to_vec();
                let at = at.index(v.len() + 1);
                v.splice(at..at, piece);
            }
            Mutation::Token(i, t) => {
                let at = i.index(v.len() + 1);
                v.splice(at..at, t.bytes());
            }
            _ => {}
        }
    }
    v
}

/// A seed with 1–8 byte mutations.
fn mutated(seeds: Vec<Vec<u8>>, dict: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (select(seeds), vec(mutation(dict), 1..=8)).prop_map(|(s, ms)| apply(&s, &ms))
}

fn lossy(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

// ------------------------------------------------------------------------- JSON strategies

/// An arbitrary JSON value, up to 4 levels deep, with keys and strings that the decoders
/// look for mixed in with arbitrary ones.
fn arb_json(words: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        2 => select(words).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..=100).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((text.clone(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every path (object keys and array positions) inside `v`, the root excluded.
fn paths(v: &Value, here: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                here.push(PathStep::Key(k.clone()));
                out.push(here.clone());
                paths(x, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                here.push(PathStep::At(i));
                out.push(here.clone());
                paths(x, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    At(usize),
}

/// A structural edit of a JSON document.
#[derive(Debug, Clone)]
enum JsonEdit {
    /// The value at a path becomes an arbitrary one.
    Replace(Index, Value),
    /// The value at a path is removed (from its object or array).
    Remove(Index),
    /// An arbitrary key is added to the object at a path (or the root).
    Add(Index, String, Value),
}

fn edit_json(doc: &mut Value, edit: &JsonEdit) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    if all.is_empty() {
        if let JsonEdit::Replace(_, v) | JsonEdit::Add(_, _, v) = edit {
            *doc = v.clone();
        }
        return;
    }
    let i = match edit {
        JsonEdit::Replace(i, _) | JsonEdit::Remove(i) | JsonEdit::Add(i, _, _) => i,
    };
    let path = &all[i.index(all.len())];
    let (parent_path, last) = path.split_at(path.len() - 1);
    let mut parent = &mut *doc;
    for step in parent_path {
        parent = match (step, parent) {
            (PathStep::Key(k), Value::Object(m)) => m.get_mut(k).unwrap(),
            (PathStep::At(n), Value::Array(a)) => &mut a[*n],
            _ => return,
        };
    }
    match (edit, &last[0], parent) {
        (JsonEdit::Replace(_, v), PathStep::Key(k), Value::Object(m)) => {
            m.insert(k.clone(), v.clone());
        }
        (JsonEdit::Replace(_, v), PathStep::At(n), Value::Array(a)) => a[*n] = v.clone(),
        (JsonEdit::Remove(_), PathStep::Key(k), Value::Object(m)) => {
            m.remove(k);
        }
        (JsonEdit::Remove(_), PathStep::At(n), Value::Array(a)) => {
            a.remove(*n);
        }
        (JsonEdit::Add(_, k, v), PathStep::Key(key), Value::Object(m)) => {
            match m.get_mut(key) {
                Some(Value::Object(inner)) => inner.insert(k.clone(), v.clone()),
                _ => m.insert(k.clone(), v.clone()),
            };
        }
        _ => {}
    }
}

/// A valid document with 1–4 structural edits.
fn json_edited(seeds: Vec<Value>, words: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let edit = prop_oneof![
        3 => (any::<Index>(), arb_json(words)).prop_map(|(i, v)| JsonEdit::Replace(i, v)),
        1 => any::<Index>().prop_map(JsonEdit::Remove),
        1 => (any::<Index>(), select(words), arb_json(words))
            .prop_map(|(i, k, v)| JsonEdit::Add(i, k.to_owned(), v)),
    ];
    (select(seeds), vec(edit, 1..=4)).prop_map(|(mut doc, edits)| {
        for e in &edits {
            edit_json(&mut doc, e);
        }
        doc
    })
}

/// Bodies for a JSON decoder: mutated bytes of valid seeds, edited valid documents, and
/// arbitrary values.
fn json_bodies(
    seeds: Vec<Value>,
    dict: &'static [&'static str],
    words: &'static [&'static str],
) -> impl Strategy<Value = Vec<u8>> {
    let bytes: Vec<Vec<u8>> = seeds
        .iter()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    prop_oneof![
        2 => mutated(bytes, dict),
        2 => json_edited(seeds, words).prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => arb_json(words).prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

// ------------------------------------------------------------------------- TOML strategies

/// An arbitrary TOML value (strings, integers, floats, booleans, dates, arrays, tables).
fn arb_toml(words: &'static [&'static str]) -> impl Strategy<Value = toml::Value> {
    let text = prop_oneof![
        3 => select(words).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let leaf = prop_oneof![
        text.clone().prop_map(toml::Value::String),
        any::<i64>().prop_map(toml::Value::Integer),
        (-2i64..=100).prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        any::<bool>().prop_map(toml::Value::Boolean),
        select(
            &[
                "1979-05-27T07:32:00Z",
                "2026-12-01",
                "07:32:00",
                "2026-02-28T23:59:59.999"
            ][..]
        )
        .prop_map(|d| toml::Value::Datetime(d.parse().unwrap())),
    ];
    leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(toml::Value::Array),
            vec((text.clone(), inner), 0..5)
                .prop_map(|kv| toml::Value::Table(kv.into_iter().collect())),
        ]
    })
}

fn toml_paths(v: &toml::Value, here: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match v {
        toml::Value::Table(m) => {
            for (k, x) in m {
                here.push(PathStep::Key(k.clone()));
                out.push(here.clone());
                toml_paths(x, here, out);
                here.pop();
            }
        }
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                here.push(PathStep::At(i));
                out.push(here.clone());
                toml_paths(x, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

/// A structural edit of a TOML document.
#[derive(Debug, Clone)]
enum TomlEdit {
    Replace(Index, toml::Value),
    Remove(Index),
    /// A key (known or arbitrary) set in the table at a path (or its parent table).
    Set(Index, String, toml::Value),
}

fn edit_toml(doc: &mut toml::Value, edit: &TomlEdit) {
    let mut all = Vec::new();
    toml_paths(doc, &mut Vec::new(), &mut all);
    let i = match edit {
        TomlEdit::Replace(i, _) | TomlEdit::Remove(i) | TomlEdit::Set(i, _, _) => i,
    };
    if all.is_empty() {
        return;
    }
    let path = &all[i.index(all.len())];
    let (parent_path, last) = path.split_at(path.len() - 1);
    let mut parent = &mut *doc;
    for step in parent_path {
        parent = match (step, parent) {
            (PathStep::Key(k), toml::Value::Table(m)) => m.get_mut(k).unwrap(),
            (PathStep::At(n), toml::Value::Array(a)) => &mut a[*n],
            _ => return,
        };
    }
    match (edit, &last[0], parent) {
        (TomlEdit::Replace(_, v), PathStep::Key(k), toml::Value::Table(m)) => {
            m.insert(k.clone(), v.clone());
        }
        (TomlEdit::Replace(_, v), PathStep::At(n), toml::Value::Array(a)) => a[*n] = v.clone(),
        (TomlEdit::Remove(_), PathStep::Key(k), toml::Value::Table(m)) => {
            m.remove(k);
        }
        (TomlEdit::Remove(_), PathStep::At(n), toml::Value::Array(a)) => {
            a.remove(*n);
        }
        (TomlEdit::Set(_, k, v), PathStep::Key(key), toml::Value::Table(m)) => {
            match m.get_mut(key) {
                Some(toml::Value::Table(inner)) => inner.insert(k.clone(), v.clone()),
                _ => m.insert(k.clone(), v.clone()),
            };
        }
        (TomlEdit::Set(_, k, v), PathStep::At(n), toml::Value::Array(a)) => {
            if let toml::Value::Table(t) = &mut a[*n] {
                t.insert(k.clone(), v.clone());
            }
        }
        _ => {}
    }
}

// ------------------------------------------------------------------------------ the runner

/// A runner with a fixed budget and a seed of its own (derived from the printed one), no
/// failure persistence, and a bounded shrink.
fn runner(seed: u64, target: u64, cases: usize) -> TestRunner {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let v = seed ^ target.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64);
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    let config = Config {
        cases: u32::try_from(cases).unwrap(),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs one target; prints inputs, time, panics and, on failure, the minimal input.
fn fuzz<S>(
    name: &str,
    mut runner: TestRunner,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> bool
where
    S: Strategy,
    S::Value: Debug,
{
    let started = Instant::now();
    let before = PANICS.load(Ordering::SeqCst);
    let calls = Cell::new(0usize);
    let result = runner.run(strategy, |input| {
        calls.set(calls.get() + 1);
        let panics = PANICS.load(Ordering::SeqCst);
        test(input)?;
        // A panic in a server task does not reach the test: the hook's count does.
        if PANICS.load(Ordering::SeqCst) != panics {
            return Err(TestCaseError::fail("a panic elsewhere (see PANIC above)"));
        }
        Ok(())
    });
    let panics = PANICS.load(Ordering::SeqCst) - before;
    let failure = match &result {
        Ok(()) => String::new(),
        Err(TestError::Fail(why, input)) => format!("; FAILED: {why}; minimal input: {input:?}"),
        Err(TestError::Abort(why)) => format!("; ABORTED: {why}"),
    };
    println!(
        "{name}: {} inputs in {:.1} s, {panics} panics{failure}: {}",
        calls.get(),
        started.elapsed().as_secs_f64(),
        if panics == 0 && result.is_ok() {
            "no panic"
        } else {
            "FAILED"
        }
    );
    result.is_ok()
}

// ---------------------------------------------------------------------- seeds and tokens

const LINES: &[&str] = &[
    "/request app:figma reason:\"landing page mock-ups\" duration:30d",
    "/request app:zoho reason:\"expense reports\"",
    "/offboard user:alice when:2026-12-01",
    "/onboard user:frank role:engineer",
    "/role user:frank role:designer",
    "/revoke user:alice app:figma reason:\"left the project\"",
    "/access user:bob",
    "/approvals",
];
const LINE_DICT: &[&str] = &[
    ":",
    "\"",
    " ",
    "/",
    "app:",
    "user:",
    "duration:",
    "\\",
    "\"\"",
    "é",
    "\u{0}",
    "99999999999d",
    "-1h",
    "reason:\"",
    "role:",
    "when:",
    "\u{202e}",
];
const COMMANDS: &[&str] = &[
    "/request",
    "/offboard",
    "/onboard",
    "/role",
    "/revoke",
    "/access",
    "/approvals",
    "/help",
    "/",
    "request",
    "/REQUEST",
];
const KEYS: &[&str] = &[
    "app:",
    "user:",
    "reason:",
    "duration:",
    "role:",
    "when:",
    "app",
    ":",
    "user::",
    "x:",
];
const VALUES: &[&str] = &[
    "figma",
    "zoho",
    "alice",
    "@alice",
    "<@100000000000000004>",
    "engineer",
    "30d",
    "0s",
    "-1h",
    "99999999999999999999d",
    "1y",
    "2026-12-01",
    "2026-02-30",
    "\"",
    "\"\"",
    "\\\"",
    "\"unterminated",
    "\u{0}",
    "\u{202e}",
    "é",
];

/// A random command line built from tokens: command names, option keys, values (known,
/// quoted, word-like or arbitrary) and separators.
fn token_line() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        3 => select(VALUES).prop_map(str::to_owned),
        2 => "[a-z0-9@._-]{0,12}",
        1 => "[^\"]{0,20}".prop_map(|s| format!("\"{s}\"")),
        1 => any::<String>(),
    ];
    let token = prop_oneof![
        2 => select(COMMANDS).prop_map(str::to_owned),
        4 => (select(KEYS), value.clone()).prop_map(|(k, v)| format!("{k}{v}")),
        2 => value,
    ];
    let sep = select(&[" ", " ", " ", "  ", "", "\t", "\n"][..]);
    vec((token, sep), 0..10).prop_map(|ts| {
        ts.into_iter()
            .map(|(t, s)| format!("{t}{s}"))
            .collect::<String>()
    })
}

const JSON_DICT: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "-1",
    "1e999",
    "\"type\":",
    "\\u0000",
    "\"custom_id\":\"v1:req:",
    ":s99999999999:",
    ":approve",
    "18446744073709551616",
];
const JSON_WORDS: &[&str] = &[
    "type",
    "id",
    "data",
    "name",
    "options",
    "value",
    "focused",
    "custom_id",
    "component_type",
    "values",
    "user",
    "member",
    "guild_id",
    "channel_id",
    "message",
    "token",
    "version",
    "application_id",
    "locale",
    "v1:req:42:s0:approve",
    "v1:req:-1:s4294967296:deny",
    "v1:act:7:done",
    "v1:plan:3:confirm",
    "v1:grant:9:extend",
    "100000000000000004",
    "18446744073709551616",
    "request",
    "offboard",
    "figma",
    "2026-11-25T09:00:00.000000+00:00",
    "",
];
const CUSTOM_ID_PARTS: &[&str] = &[
    "v1",
    "v2",
    "req",
    "act",
    "plan",
    "grant",
    "approve",
    "deny",
    "done",
    "retry",
    "confirm",
    "cancel",
    "extend",
    "s0",
    "s",
    "s-1",
    "s4294967296",
    "42",
    "-1",
    "0",
    "9223372036854775808",
    "",
    " ",
];
const HR_DICT: &[&str] = &[
    "\"",
    "{",
    "}",
    ",",
    "null",
    "\"hire\"",
    "\"leave\"",
    "\"change\"",
    "2026-02-30",
    "9999-12-31T23:59:60Z",
    "\"manager\":\"",
    "\"handle\":\"",
    "\"id\":\"ev-",
];
const HR_WORDS: &[&str] = &[
    "id",
    "type",
    "occurred_at",
    "person",
    "handle",
    "name",
    "email",
    "department",
    "role",
    "manager",
    "discord_id",
    "start_date",
    "last_day",
    "effective_at",
    "hire",
    "leave",
    "change",
    "zoe",
    "alice",
    "bob",
    "erin",
    "zoe@acme.test",
    "not an email",
    "engineer",
    "designer",
    "no-such-role",
    "2026-12-01",
    "2026-02-30",
    "2026-11-25T09:00:00Z",
    "9999-12-31T23:59:60Z",
    "100000000000000099",
    "",
];
const TOML_DICT: &[&str] = &[
    "[[app]]\n",
    "[[person]]\n",
    "=",
    "\"",
    "[",
    "]",
    "\n",
    "approvals = [\"nobody\"]\n",
    "max_duration = \"0s\"\n",
    "manager = \"ken\"\n",
    "token_env = \"X\"\n",
    "#",
    "[discord]\nmode = \"interactions\"\n",
    "99999999999999999999",
];
const TOML_WORDS: &[&str] = &[
    "handle",
    "name",
    "email",
    "role",
    "manager",
    "discord_id",
    "department",
    "approvals",
    "max_duration",
    "connector",
    "owners",
    "group",
    "birthright",
    "apps",
    "it_admins",
    "remind_after",
    "escalate_after",
    "expire_after",
    "mode",
    "token_env",
    "key_env",
    "secret_env",
    "people_file",
    "url",
    "manager",
    "it",
    "owner",
    "nobody",
    "0s",
    "30d",
    "-1h",
    "99999999999d",
    "erin",
    "dana",
    "ken",
    "figma",
    "engineer",
    "directory",
    "manual",
    "scim",
    "ldap",
    "webhook",
    "interactions",
    "gateway",
    "erin@acme.test",
    "not an email",
    "X",
    "",
];

#[tokio::main]
async fn main() {
    if !common::under_cargo_bench() {
        return;
    }
    println!("figure 8: fuzzing with proptest, fixed budget");
    println!("{}", common::machine());
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("PANIC: {info}");
    }));
    let seed: u64 = std::env::var("QM_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let scale: usize = std::env::var("QM_FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    println!("seed {seed}, scale {scale} (proptest ChaCha RNG per target, seeded from it)");
    let mut all_ok = true;

    // Command parser.
    let reg = Registry::builtin();
    let lines: Vec<Vec<u8>> = LINES.iter().map(|l| l.as_bytes().to_vec()).collect();
    let parser_input = prop_oneof![
        3 => mutated(lines, LINE_DICT).prop_map(|b| lossy(&b)),
        3 => token_line(),
        1 => any::<String>(),
    ];
    all_ok &= fuzz(
        "command parser (Registry::parse_line)",
        runner(seed, 1, 200_000 * scale),
        &parser_input,
        |line| {
            let _ = reg.parse_line(&line);
            Ok(())
        },
    );

    // Interaction decoder, in process.
    let f = fake::FakeDiscord::start().await;
    let alice = ("100000000000000004", "alice");
    let mut payloads = vec![
        f.command(
            alice,
            "request",
            json!([{ "name": "app", "type": 3, "value": "figma" }]),
        ),
        f.autocomplete(alice, "fig"),
        f.command_with_user(
            ("100000000000000002", "dana"),
            "offboard",
            json!([{ "name": "user", "type": 6, "value": "100000000000000004" }]),
            alice,
        ),
    ];
    let mut click = f.command(alice, "request", json!([]));
    click["type"] = json!(3);
    click["data"] = json!({ "custom_id": "v1:req:42:s0:approve", "component_type": 2 });
    click["message"] = json!({
        "id": "1", "channel_id": "1", "author": fake::user_json(fake::BOT_ID, "qm", true),
        "content": "", "timestamp": "2026-11-25T09:00:00.000000+00:00", "tts": false,
        "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "embeds": [], "pinned": false, "type": 0
    });
    payloads.push(click);
    payloads.push(
        json!({ "type": 1, "id": "1", "application_id": fake::APP_ID, "token": "t", "version": 1 }),
    );
    let bodies = json_bodies(payloads, JSON_DICT, JSON_WORDS);
    let decoded = Cell::new(0usize);
    let clicks = Cell::new(0usize);
    let ok = fuzz(
        "interaction decoder in process (JSON → serenity Interaction → ClickTarget::parse)",
        runner(seed, 2, 100_000 * scale),
        &bodies,
        |body| {
            if let Ok(v) = serde_json::from_slice::<Value>(&body)
                && let Ok(i) = serde_json::from_value::<serenity::all::Interaction>(v)
            {
                decoded.set(decoded.get() + 1);
                if let serenity::all::Interaction::Component(c) = i {
                    clicks.set(clicks.get() + 1);
                    let _ = ClickTarget::parse(&c.data.custom_id);
                }
            }
            Ok(())
        },
    );
    println!(
        "  of which {} decoded as interactions, {} as component clicks",
        decoded.get(),
        clicks.get()
    );
    all_ok &= ok;
    let ids: Vec<Vec<u8>> = [
        "v1:req:42:s0:approve",
        "v1:plan:7:confirm",
        "v1:grant:9:extend",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let custom_ids = prop_oneof![
        mutated(ids, &[":", "s", "-", "v1", "99999999999999999999"]).prop_map(|b| lossy(&b)),
        vec(select(CUSTOM_ID_PARTS), 0..7).prop_map(|p| p.join(":")),
        any::<String>(),
    ];
    all_ok &= fuzz(
        "custom_id decoder (ClickTarget::parse; a parsed id must print back to itself)",
        runner(seed, 3, 20_000 * scale),
        &custom_ids,
        |id| {
            if let Ok(t) = ClickTarget::parse(&id) {
                // Leading zeros or a `+` parse too; what must hold is that the printed form
                // reads back as the same target.
                prop_assert_eq!(ClickTarget::parse(&t.to_string()), Ok(t));
            }
            Ok(())
        },
    );

    // Config loader.
    let acme = include_str!("../examples/acme.toml");
    let acme_tree: toml::Value = toml::from_str(acme).unwrap();
    let toml_edit = prop_oneof![
        3 => (any::<Index>(), arb_toml(TOML_WORDS)).prop_map(|(i, v)| TomlEdit::Replace(i, v)),
        2 => any::<Index>().prop_map(TomlEdit::Remove),
        2 => (any::<Index>(), select(TOML_WORDS), arb_toml(TOML_WORDS))
            .prop_map(|(i, k, v)| TomlEdit::Set(i, k.to_owned(), v)),
    ];
    let configs = prop_oneof![
        1 => mutated(vec![acme.as_bytes().to_vec()], TOML_DICT).prop_map(|b| lossy(&b)),
        1 => vec(toml_edit, 1..=4).prop_map(move |edits| {
            let mut doc = acme_tree.clone();
            for e in &edits {
                edit_toml(&mut doc, e);
            }
            // A tree toml cannot print (rare) is fuzzed as its debug form instead.
            toml::to_string(&doc).unwrap_or_else(|e| format!("{e}\n{doc:?}"))
        }),
    ];
    let valid = Cell::new(0usize);
    all_ok &= fuzz(
        "config loader (config::parse)",
        runner(seed, 4, 3_000 * scale),
        &configs,
        |text| {
            let r = config::parse(&text, std::path::Path::new("."), &|_| Some("x".into()));
            valid.set(valid.get() + usize::from(r.is_ok()));
            Ok(())
        },
    );
    println!("  of which {} still valid", valid.get());

    // The two routes, through a running server.
    let mut cfg = config::load(None).unwrap();
    cfg.discord = Some(DiscordConfig {
        mode: DiscordMode::Interactions,
        application_id: fake::APP_ID.into(),
        public_key: Some(f.public_key_hex()),
        token: "fake-bot-token".into(),
        api_base: Some(f.base_url()),
        approvals_channel: None,
        guilds: Vec::new(),
    });
    let hr_secret = "fuzz-hr-secret";
    cfg.hr = Some(HrConfig {
        secret: hr_secret.to_owned().into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("qm.db").display());
    let store = wiring::open_store(&cfg, &db).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(&cfg, store.clone(), Arc::new(SystemClock), listener)
        .await
        .unwrap();
    let base = format!("http://{}", srv.addr);
    let client = reqwest::Client::new();
    let key = SigningKey::from_bytes(&fake::SEED);
    let rt = tokio::runtime::Handle::current();

    let status: RefCell<BTreeMap<u16, usize>> = RefCell::default();
    let ok = tokio::task::block_in_place(|| {
        fuzz(
            "POST /discord/interactions, validly signed",
            runner(seed, 5, 1_500 * scale),
            &bodies,
            |body| {
                let ts = chrono::Utc::now().timestamp().to_string();
                let mut msg = ts.as_bytes().to_vec();
                msg.extend_from_slice(&body);
                let sig = hex::encode(key.sign(&msg).to_bytes());
                let code = rt.block_on(async {
                    client
                        .post(format!("{base}/discord/interactions"))
                        .header("x-signature-ed25519", sig)
                        .header("x-signature-timestamp", ts)
                        .body(body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                });
                *status.borrow_mut().entry(code).or_default() += 1;
                prop_assert!(code < 500, "answered {}", code);
                Ok(())
            },
        )
    });
    println!("  statuses {:?}", status.borrow());
    all_ok &= ok;

    let hire = json!({
        "id": "ev-1", "type": "hire", "occurred_at": "2026-11-25T09:00:00Z",
        "person": { "handle": "zoe", "name": "Zoe Park", "email": "zoe@acme.test",
                    "department": "Engineering", "role": "engineer", "manager": "bob",
                    "discord_id": "100000000000000099", "start_date": "2026-12-01" }
    });
    let leave = json!({
        "id": "ev-2", "type": "leave",
        "person": { "handle": "alice", "name": "Alice Kim", "email": "alice@acme.test",
                    "role": "designer", "last_day": "2026-12-31",
                    "effective_at": "2026-12-31T18:00:00Z" }
    });
    let hr_bodies = json_bodies(vec![hire, leave], HR_DICT, HR_WORDS);
    let status: RefCell<BTreeMap<u16, usize>> = RefCell::default();
    let k = Cell::new(0usize);
    let ok = tokio::task::block_in_place(|| {
        fuzz(
            "POST /hr/events (HR event decoder), validly signed",
            runner(seed, 6, 1_500 * scale),
            &hr_bodies,
            |mut body| {
                // Most events get a fresh id so the dedupe does not swallow them.
                k.set(k.get() + 1);
                if k.get().is_multiple_of(2) {
                    body = lossy(&body)
                        .replace("ev-1", &format!("ev-{}", k.get()))
                        .into_bytes();
                }
                let ts = chrono::Utc::now().timestamp().to_string();
                let mut mac = Hmac::<Sha256>::new_from_slice(hr_secret.as_bytes()).unwrap();
                mac.update(ts.as_bytes());
                mac.update(b".");
                mac.update(&body);
                let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                let code = rt.block_on(async {
                    client
                        .post(format!("{base}/hr/events"))
                        .header("content-type", "application/json")
                        .header("x-qm-timestamp", ts)
                        .header("x-qm-signature", sig)
                        .body(body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                });
                *status.borrow_mut().entry(code).or_default() += 1;
                prop_assert!(code < 500, "answered {}", code);
                Ok(())
            },
        )
    });
    println!("  statuses {:?}", status.borrow());
    all_ok &= ok;
    let people = store.people().await.unwrap().len();
    println!("people after the HR fuzz: {people}");
    let panics = PANICS.load(Ordering::SeqCst);
    println!(
        "total panics: {panics}; goal no panic: {}",
        if panics == 0 && all_ok {
            "MET"
        } else {
            "MISSED"
        }
    );
    srv.stop().await;
}
