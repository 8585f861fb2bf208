//! Differential test against nginx's realip module as a real peer: the same
//! generated `X-Forwarded-For` chains go, from a trusted loopback client, to
//! nginx (`set_real_ip_from` the ranges below, `real_ip_header
//! X-Forwarded-For`, `real_ip_recursive on`, answering `$remote_addr`) and to
//! `RealIpLayer` with the same ranges (answering `ClientIp`).
//!
//! Where the two answer differently, the difference must be explained by
//! one of the listed classes, each a way realip *reads one entry* (or one
//! header line) differently from nginx. The explanation is checked against
//! nginx itself, never against a model of it:
//!
//! 1. every entry is sent alone to nginx (from `127.0.0.9`, so that "nginx
//!    could not read it" is visible as that peer coming back), which gives
//!    nginx's reading of the entry; realip's reading comes from
//!    `realip::forwarded::xff::parse_item`, the parser the layer uses;
//! 2. each entry whose two readings differ is put in its class (below); a
//!    differing entry that fits no class fails the test;
//! 3. the chain is rewritten so that nginx reads those entries as realip
//!    does (an entry realip refuses becomes `garbage`, one it reads becomes
//!    the canonical text of its address, a zoned one ends the chain), one
//!    class at a time, then all together; the rewritten chain is sent to
//!    nginx again, and its answer must now be realip's. realip must answer
//!    the rewritten chain as it answered the original (the rewrite is
//!    faithful to its reading).
//!
//! Documented classes (DESIGN.md, "Where realip and the reference receivers
//! disagree"; README "Where realip differs from HAProxy and nginx"):
//! - `MalformedEntry`: realip refuses an entry nginx reads as an address
//!   (`010.1.2.3` read by nginx as `10.1.2.3`, `5.5.5.5 10.0.0.1` read as two
//!   entries); realip's walk ends there, at the last trusted hop.
//! - `Mapped`: realip reads `::ffff:a.b.c.d` as `a.b.c.d` (and matches it
//!   against IPv4 ranges); nginx keeps it IPv6.
//! - `Zone`: realip takes a zoned entry (`fe80::1%eth0`) as the client,
//!   never as a trusted hop; nginx cannot read it and stops before it.
//!
//! Classes added here, each a form realip's documented entry grammar reads
//! and nginx refuses:
//! - `Tab`: a tab around an entry (optional whitespace is spaces *and* tabs,
//!   RFC 9110 §5.6.3); nginx strips only spaces.
//! - `BracketNoPort`: `[2001:db8::1]` without a port, the bracketed form
//!   RFC 7239 uses; nginx reads brackets only before a port.
//! - `PortZero`: `1.2.3.4:0`; the port takes no part in the walk, so realip
//!   reads the address; nginx refuses port 0.
//! - `EmptyLine`: a header line holding no entry (`X-Forwarded-For:` or
//!   `,`), which realip skips like any empty list item; nginx ends its walk
//!   there.
//!
//! Fixed seed, bounded cases, loopback only; the run prints the tally.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::{routing::get, Router};
use common::{exchange_from, free_port, Nginx, Seeded};
use ipnet::IpNet;
use realip::forwarded::{xff, Node};
use realip::{ClientIp, HeaderSource, RealIpLayer};

const SEED: u64 = 0x00de_c0de_0009_0002;
const CASES: usize = 300;
/// Bound on one exchange (both servers answer at once when healthy).
const DEADLINE: Duration = Duration::from_secs(5);
/// Cases in flight at once.
const PARALLEL: usize = 16;
/// The ranges both receivers trust.
const TRUSTED: [&str; 4] = ["127.0.0.0/8", "10.0.0.0/8", "fd00::/8", "::1/128"];
/// The client's source for the chains: trusted, so the header is read.
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// The source of single-entry probes; no generated entry is this address,
/// so nginx answering it means nginx could not read the entry.
const PROBE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));

/// A documented or added reason for a different answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    MalformedEntry,
    Mapped,
    Zone,
    Tab,
    BracketNoPort,
    PortZero,
    EmptyLine,
}

/// How realip reads one list item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// An address (IPv4-mapped already read as IPv4).
    Addr(IpAddr),
    /// A zoned address (zone dropped).
    Zoned(IpAddr),
    /// Not an address (`unknown`, obfuscated, malformed).
    NotAddr,
}

fn realip_reading(item: &str) -> Reading {
    match xff::parse_item(item.as_bytes()) {
        Node::Ip(a) if a.zoned => Reading::Zoned(a.ip),
        Node::Ip(a) => Reading::Addr(a.ip),
        _ => Reading::NotAddr,
    }
}

/// Items of one header line as realip splits it: by commas, skipping the
/// empty ones (spaces and tabs only).
fn items(line: &str) -> Vec<&str> {
    line.split(',')
        .filter(|i| !i.trim_matches([' ', '\t']).is_empty())
        .collect()
}

/// The class of an item whose two readings differ; `Err` when none fits.
fn item_class(item: &str, realip: Reading, nginx: Option<IpAddr>) -> Result<Class, String> {
    let t = item.trim_matches([' ', '\t']);
    match (realip, nginx) {
        (Reading::NotAddr, Some(_)) => Ok(Class::MalformedEntry),
        (Reading::Zoned(_), None) => Ok(Class::Zone),
        (Reading::Addr(IpAddr::V4(v4)), Some(IpAddr::V6(v6)))
            if v6.to_ipv4_mapped() == Some(v4) =>
        {
            Ok(Class::Mapped)
        }
        (Reading::Addr(_), None) if item.contains('\t') => Ok(Class::Tab),
        (Reading::Addr(_), None) if t.starts_with('[') && t.ends_with(']') => {
            Ok(Class::BracketNoPort)
        }
        (Reading::Addr(_), None) if t.ends_with(":0") => Ok(Class::PortZero),
        (r, n) => Err(format!(
            "item {item:?}: realip reads {r:?}, nginx reads {n:?}"
        )),
    }
}

/// The chain with the entries of `classes` rewritten to realip's reading.
fn rewrite(lines: &[String], classified: &BTreeMap<String, Class>, only: &[Class]) -> Vec<String> {
    let take = |c: &Class| only.contains(c);
    let mut out: Vec<String> = Vec::new();
    // Right to left, as both walks read: a zoned entry ends the chain.
    'lines: for line in lines.iter().rev() {
        let its = items(line);
        if its.is_empty() {
            if !take(&Class::EmptyLine) {
                out.push(line.clone());
            }
            continue;
        }
        let mut kept: Vec<String> = Vec::new();
        for item in its.iter().rev() {
            let class = classified.get(*item).copied();
            match class {
                Some(c) if take(&c) => match (c, realip_reading(item)) {
                    (Class::Zone, Reading::Zoned(ip)) => {
                        kept.push(ip.to_string());
                        kept.reverse();
                        out.push(kept.join(", "));
                        break 'lines;
                    }
                    (_, Reading::Addr(ip)) => kept.push(ip.to_string()),
                    _ => kept.push("garbage".to_owned()),
                },
                _ => kept.push((*item).to_owned()),
            }
        }
        kept.reverse();
        out.push(kept.join(","));
    }
    out.reverse();
    out
}

fn request(lines: &[String]) -> Vec<u8> {
    let mut r = String::from("GET / HTTP/1.0\r\n");
    for line in lines {
        let _ = write!(r, "X-Forwarded-For: {line}\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The address a receiver answered, or why there is none.
async fn answer(from: IpAddr, to: SocketAddr, lines: &[String]) -> Result<IpAddr, String> {
    let ex = exchange_from(Some(from), to, &request(lines), DEADLINE).await;
    let body = ex
        .ok_body()
        .ok_or_else(|| format!("no 200 (status {:?})", ex.status))?;
    body.trim()
        .parse()
        .map_err(|_| format!("unparsable body {body:?}"))
}

#[derive(Clone, Copy)]
struct Peers {
    nginx: SocketAddr,
    realip: SocketAddr,
}

#[derive(Debug)]
enum Verdict {
    Agree,
    /// Explained by these classes together (one class when one suffices).
    Documented(Vec<Class>),
}

/// Compares one chain; `Err` describes an unexplained difference.
async fn compare(p: Peers, lines: &[String]) -> Result<Verdict, String> {
    let theirs = answer(CLIENT, p.nginx, lines).await;
    let ours = answer(CLIENT, p.realip, lines).await;
    if theirs == ours {
        return Ok(Verdict::Agree);
    }
    let ours = ours.map_err(|e| format!("realip: {e}"))?;
    let mut classified = BTreeMap::new();
    let mut present = Vec::new();
    for line in lines {
        if items(line).is_empty() && !present.contains(&Class::EmptyLine) {
            present.push(Class::EmptyLine);
        }
        for item in items(line) {
            let r = realip_reading(item);
            let n = answer(PROBE, p.nginx, &[item.to_owned()]).await?;
            let n = (n != PROBE).then_some(n);
            let same = match r {
                Reading::Addr(a) => n == Some(a),
                Reading::NotAddr => n.is_none(),
                Reading::Zoned(_) => false,
            };
            if !same {
                let c = item_class(item, r, n)?;
                classified.insert(item.to_owned(), c);
                if !present.contains(&c) {
                    present.push(c);
                }
            }
        }
    }
    present.sort();
    let mut tries: Vec<Vec<Class>> = present.iter().map(|c| vec![*c]).collect();
    if present.len() > 1 {
        tries.push(present.clone());
    }
    for only in tries {
        let rewritten = rewrite(lines, &classified, &only);
        if answer(CLIENT, p.nginx, &rewritten).await == Ok(ours) {
            let again = answer(CLIENT, p.realip, &rewritten).await;
            if again != Ok(ours) {
                return Err(format!(
                    "test bug: realip answers the rewrite {rewritten:?} with {again:?}, \
                     the original with {ours}"
                ));
            }
            return Ok(Verdict::Documented(only));
        }
    }
    Err(format!(
        "nginx {theirs:?}, realip {ours}; entry classes {present:?} do not explain it"
    ))
}

// ------------------------------------------------------------ generator

fn v4(r: &mut Seeded, trusted: bool) -> Ipv4Addr {
    if trusted {
        if r.one_in(4) {
            Ipv4Addr::LOCALHOST
        } else {
            Ipv4Addr::new(10, r.byte(), r.byte(), r.byte())
        }
    } else {
        Ipv4Addr::new(r.pick(&[5, 45, 198, 203]), r.byte(), r.byte(), r.byte())
    }
}

fn v6(r: &mut Seeded, trusted: bool) -> String {
    match (trusted, r.below(3)) {
        (true, 0) => "::1".to_owned(),
        (true, _) => format!("fd00::{:x}:{:x}", r.byte(), r.byte()),
        (false, 0) => format!("2001:db8:{:x}::{:x}", r.byte(), r.byte()),
        (false, _) => format!("2a00:{:x}::{:x}", r.byte(), r.byte()),
    }
}

fn port(r: &mut Seeded) -> String {
    match r.below(8) {
        0 => "0".to_owned(),
        1 => "080".to_owned(),
        2 => "65536".to_owned(),
        _ => (1 + r.below(65535)).to_string(),
    }
}

/// One address-like entry, trusted or not.
fn addr_item(r: &mut Seeded, trusted: bool) -> String {
    match r.below(10) {
        0..=4 => v4(r, trusted).to_string(),
        5 | 6 => v6(r, trusted),
        7 => {
            let ffff = if r.one_in(2) { "ffff" } else { "FFFF" };
            format!("::{ffff}:{}", v4(r, trusted))
        }
        8 => format!("{}:{}", v4(r, trusted), port(r)),
        _ => format!("[{}]:{}", v6(r, trusted), port(r)),
    }
}

/// One odd entry: the grammar's edges.
fn odd_item(r: &mut Seeded) -> String {
    let trusted = r.one_in(2);
    match r.below(12) {
        0 => {
            // A leading zero on one octet: `010.1.2.3`.
            let ip = v4(r, trusted).octets();
            let at = r.below(4);
            let parts: Vec<String> = (0..4)
                .map(|i| {
                    if i == at {
                        format!("0{}", ip[i])
                    } else {
                        ip[i].to_string()
                    }
                })
                .collect();
            parts.join(".")
        }
        1 => r
            .pick(&[
                "fe80::1%eth0",
                "fd00::2%1",
                "[fe80::3%lo]:80",
                "fe80::4%",
                "2001:db8::5%eth0",
            ])
            .to_string(),
        2 => r
            .pick(&[
                "garbage",
                "1.2.3",
                "1.2.3.256",
                "0x1.2.3.4",
                "1.2.3.4;",
                "-",
                "a.b.c.d",
                "[::1",
                "::ffff:",
                ":::",
                "1.2.3.4:",
                "1.2.3.4:99999",
                "[::1]x",
            ])
            .to_string(),
        3 => r
            .pick(&["unknown", "UNKNOWN", "_hidden", "_x-1"])
            .to_string(),
        4 => format!("{} {}", v4(r, false), v4(r, true)),
        5 => {
            let a = v4(r, trusted);
            if r.one_in(2) {
                format!("\t{a}")
            } else {
                format!("{a}\t")
            }
        }
        6 => format!("[{}]", v6(r, trusted)),
        7 => String::new(),
        8 => format!("  {}  ", v4(r, trusted)),
        9 => format!("{}:0", v4(r, trusted)),
        10 => format!("{}:{}", v4(r, trusted), port(r)),
        _ => format!("::ffff:{}", v4(r, trusted)),
    }
}

/// A chain: a client, then mostly trusted hops, some entries odd, split
/// over one to three header lines, sometimes with an empty line.
fn chain(r: &mut Seeded) -> Vec<String> {
    let n = 1 + r.below(6);
    let mut entries: Vec<String> = (0..n)
        .map(|i| {
            let trusted = i > 0 && !r.one_in(5);
            addr_item(r, trusted)
        })
        .collect();
    for _ in 0..r.below(3) {
        let at = r.below(n);
        entries[at] = odd_item(r);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for e in entries {
        current.push(e);
        if r.one_in(3) {
            lines.push(current.join(r.pick(&[", ", ",", " , ", ",,"])));
            current.clear();
        }
    }
    if !current.is_empty() {
        lines.push(current.join(r.pick(&[", ", ",", " , "])));
    }
    if r.one_in(10) {
        let at = r.below(lines.len() + 1);
        lines.insert(at, r.pick(&["", ",", " , "]).to_string());
    }
    lines
}

// ------------------------------------------------------------ peers

fn trusted() -> Vec<IpNet> {
    TRUSTED.iter().map(|s| s.parse().unwrap()).collect()
}

fn start_nginx() -> (Nginx, SocketAddr) {
    let port = free_port();
    let from: String = TRUSTED
        .iter()
        .map(|r| format!("\x20       set_real_ip_from {r};\n"))
        .collect();
    let nginx = Nginx::start(&format!(
        "http {{\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         {from}\
         \x20       real_ip_header X-Forwarded-For;\n\
         \x20       real_ip_recursive on;\n\
         \x20       location / {{\n\
         \x20           default_type text/plain;\n\
         \x20           return 200 \"$remote_addr\";\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    ));
    (nginx, SocketAddr::from(([127, 0, 0, 1], port)))
}

async fn start_realip() -> SocketAddr {
    let layer = RealIpLayer::builder()
        .trust_all(trusted())
        .header(HeaderSource::XForwardedFor)
        .build()
        .unwrap();
    let app = Router::new().route(
        "/",
        get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, layer.into_make_service(app))
            .await
            .unwrap();
    });
    addr
}

async fn run(p: Peers, cases: Vec<Vec<String>>) -> (usize, BTreeMap<String, usize>) {
    let mut agree = 0;
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for batch in cases.chunks(PARALLEL) {
        let mut set = tokio::task::JoinSet::new();
        for (i, lines) in batch.iter().cloned().enumerate() {
            set.spawn(async move { (i, compare(p, &lines).await, lines) });
        }
        while let Some(done) = set.join_next().await {
            let (_, verdict, lines) = done.unwrap();
            match verdict {
                Ok(Verdict::Agree) => agree += 1,
                Ok(Verdict::Documented(classes)) => {
                    *tally.entry(format!("{classes:?}")).or_default() += 1;
                }
                Err(why) => failures.push(format!("{lines:?}: {why}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} unlisted differences with nginx:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (agree, tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xff_chains_differ_from_nginx_only_as_documented() {
    let (nginx, nginx_addr) = start_nginx();
    let peers = Peers {
        nginx: nginx_addr,
        realip: start_realip().await,
    };
    let mut r = Seeded::new(SEED);
    let cases: Vec<Vec<String>> = (0..CASES).map(|_| chain(&mut r)).collect();
    let (agree, tally) = run(peers, cases).await;
    eprintln!("nginx differential: {CASES} chains, {agree} agree, documented {tally:?}");
    // The generator reaches every listed class: a class no input exercises
    // would be listed without evidence.
    for class in [
        Class::MalformedEntry,
        Class::Mapped,
        Class::Zone,
        Class::Tab,
        Class::BracketNoPort,
        Class::PortZero,
        Class::EmptyLine,
    ] {
        assert!(
            tally.keys().any(|k| k.contains(&format!("{class:?}"))),
            "no generated chain showed {class:?}: {tally:?}"
        );
    }
    assert!(agree > CASES / 3, "too few agreeing chains: {agree}");
    drop(nginx);
}

/// Each class, pinned with one chain: nginx and realip answer differently,
/// and the class explains it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_documented_difference_with_nginx_holds() {
    let (nginx, nginx_addr) = start_nginx();
    let p = Peers {
        nginx: nginx_addr,
        realip: start_realip().await,
    };
    let pinned: [(&[&str], Class, &str, &str); 7] = [
        // nginx reads `010.1.2.3` as 10.1.2.3 (trusted) and walks on.
        (
            &["5.5.5.5, 010.1.2.3"],
            Class::MalformedEntry,
            "5.5.5.5",
            "127.0.0.1",
        ),
        (
            &["::ffff:10.0.0.1"],
            Class::Mapped,
            "::ffff:10.0.0.1",
            "10.0.0.1",
        ),
        (
            &["5.5.5.5, fd00::1%eth0"],
            Class::Zone,
            "127.0.0.1",
            "fd00::1",
        ),
        (&["5.5.5.5\t"], Class::Tab, "127.0.0.1", "5.5.5.5"),
        (
            &["[2001:db8::1]"],
            Class::BracketNoPort,
            "127.0.0.1",
            "2001:db8::1",
        ),
        (&["5.5.5.5:0"], Class::PortZero, "127.0.0.1", "5.5.5.5"),
        (&["5.5.5.5", ""], Class::EmptyLine, "127.0.0.1", "5.5.5.5"),
    ];
    for (lines, class, theirs, ours) in pinned {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            answer(CLIENT, p.nginx, &lines).await,
            Ok(theirs.parse().unwrap()),
            "nginx on {lines:?}"
        );
        assert_eq!(
            answer(CLIENT, p.realip, &lines).await,
            Ok(ours.parse().unwrap()),
            "realip on {lines:?}"
        );
        match compare(p, &lines).await {
            Ok(Verdict::Documented(c)) => assert_eq!(c, [class], "{lines:?}"),
            other => panic!("{lines:?}: {other:?}"),
        }
    }
    drop(nginx);
}
