//! The provider list parsers on the real snapshots in
//! `tests/fixtures/ranges/`, and on altered copies that must be refused
//! with the line or field named. Expected counts are computed from the
//! same files with `serde_json::Value`, independently of the parsers.
#![cfg(feature = "providers")]

use ipnet::IpNet;
use realip::trust::providers::{
    parse_aws, parse_cidr_list, parse_cloudflare_api, parse_fastly, parse_google_cloud, AwsFilter,
    Format, ListErrorKind,
};
use realip::trust::TrustedProxies;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;

const AWS: &str = include_str!("fixtures/ranges/aws-ip-ranges.json");
const GOOGLE: &str = include_str!("fixtures/ranges/google-cloud-ip-ranges.json");
const FASTLY: &str = include_str!("fixtures/ranges/fastly-ip-ranges.json");
const CF_API: &str = include_str!("fixtures/ranges/cloudflare-api-ips.json");
const CF_V4: &str = include_str!("fixtures/ranges/cloudflare-v4-ip-ranges.txt");
const CF_V6: &str = include_str!("fixtures/ranges/cloudflare-v6-ip-ranges.txt");

fn nets(t: &TrustedProxies) -> BTreeSet<IpNet> {
    t.iter().copied().collect()
}

fn strings(v: &Value, pointer: &str, field: &str) -> BTreeSet<IpNet> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|e| {
            let s = if field.is_empty() { e } else { &e[field] };
            s.as_str().unwrap().parse::<IpNet>().unwrap().trunc()
        })
        .collect()
}

/// The AWS prefixes of `service` (any when `None`), by the JSON alone.
fn aws_expected(service: Option<&str>, region: Option<&str>) -> BTreeSet<IpNet> {
    let v: Value = serde_json::from_str(AWS).unwrap();
    let mut out = BTreeSet::new();
    for (list, field) in [("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")] {
        for p in v[list].as_array().unwrap() {
            if service.is_some_and(|s| p["service"] != s)
                || region.is_some_and(|r| p["region"] != r)
            {
                continue;
            }
            out.insert(p[field].as_str().unwrap().parse::<IpNet>().unwrap());
        }
    }
    out
}

#[test]
fn aws_snapshot_yields_every_prefix() {
    let t = parse_aws(AWS.as_bytes(), &AwsFilter::all()).unwrap();
    assert_eq!(t.len(), 8_971 + 4_373);
    assert_eq!(nets(&t), aws_expected(None, None));
    assert!(t.contains("3.4.12.4".parse().unwrap()));
}

/// Lookups in the AWS set (IPv6 prefixes packed hundreds to a /24, so
/// the index gives their buckets finer tables) agree with an oracle that
/// knows only the published prefixes: an address is inside when its
/// truncation to some prefix length is one of them. Probed at both edges of
/// every prefix, one address past each edge, and a spread of addresses in
/// the blocks AWS publishes from.
#[test]
fn aws_set_lookups_agree_with_the_published_prefixes() {
    use std::collections::HashSet;
    use std::net::{Ipv4Addr, Ipv6Addr};
    let t = parse_aws(AWS.as_bytes(), &AwsFilter::all()).unwrap();
    let published: HashSet<IpNet> = aws_expected(None, None)
        .into_iter()
        .map(|n| n.trunc())
        .collect();
    let oracle = |ip: IpAddr| {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (0..=max).any(|len| published.contains(&IpNet::new(ip, len).unwrap().trunc()))
    };
    let mut probes = Vec::new();
    for n in &published {
        let (lo, hi) = match (n.network(), n.broadcast()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b))),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b)),
            _ => unreachable!(),
        };
        for v in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
            probes.push(match n {
                IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
                IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
            });
        }
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for top in [0x2600u128, 0x2406, 0x2a05] {
            probes.push(IpAddr::V6(Ipv6Addr::from(
                (top << 112) | (u128::from(x) << 40),
            )));
        }
        probes.push(IpAddr::V4(Ipv4Addr::from((x >> 16) as u32)));
    }
    let inside = probes.iter().filter(|&&ip| oracle(ip)).count();
    assert!(inside > 20_000, "{inside}");
    for ip in probes {
        assert_eq!(t.contains(ip), oracle(ip), "{ip}");
    }
}

#[test]
fn aws_filters_by_service_and_region() {
    let cf = parse_aws(AWS.as_bytes(), &AwsFilter::service("CLOUDFRONT")).unwrap();
    let expected = aws_expected(Some("CLOUDFRONT"), None);
    assert!(expected.len() > 100, "{}", expected.len());
    assert_eq!(nets(&cf), expected);
    // Case is ignored; several services add up.
    let lower = parse_aws(AWS.as_bytes(), &AwsFilter::service("cloudfront")).unwrap();
    assert_eq!(nets(&lower), expected);
    let both = AwsFilter::service("CLOUDFRONT").with_service("CLOUDFRONT_ORIGIN_FACING");
    let both = parse_aws(AWS.as_bytes(), &both).unwrap();
    let mut union = expected.clone();
    union.extend(aws_expected(Some("CLOUDFRONT_ORIGIN_FACING"), None));
    assert_eq!(nets(&both), union);

    let ec2_eu = AwsFilter::service("EC2").with_region("eu-west-1");
    let t = parse_aws(AWS.as_bytes(), &ec2_eu).unwrap();
    let expected = aws_expected(Some("EC2"), Some("eu-west-1"));
    assert!(!expected.is_empty());
    assert_eq!(nets(&t), expected);
    // An EC2 prefix of another region is not in it.
    let other = aws_expected(Some("EC2"), Some("us-east-1"));
    let outside = other
        .iter()
        .find(|n| !expected.iter().any(|e| e.contains(*n)))
        .unwrap();
    assert!(!t.contains(outside.network()), "{outside}");
}

#[test]
fn google_fastly_and_cloudflare_snapshots() {
    let v: Value = serde_json::from_str(GOOGLE).unwrap();
    let mut expected = BTreeSet::new();
    for p in v["prefixes"].as_array().unwrap() {
        let s = p.get("ipv4Prefix").or_else(|| p.get("ipv6Prefix")).unwrap();
        expected.insert(s.as_str().unwrap().parse::<IpNet>().unwrap());
    }
    let g = parse_google_cloud(GOOGLE.as_bytes()).unwrap();
    assert_eq!(g.len(), 782);
    assert_eq!(nets(&g), expected);

    let v: Value = serde_json::from_str(FASTLY).unwrap();
    let mut expected = strings(&v, "/addresses", "");
    expected.extend(strings(&v, "/ipv6_addresses", ""));
    let f = parse_fastly(FASTLY.as_bytes()).unwrap();
    assert_eq!((f.len(), nets(&f)), (21, expected));

    // The API document and the two plain lists hold the same networks.
    let api = parse_cloudflare_api(CF_API.as_bytes()).unwrap();
    let mut plain = parse_cidr_list(CF_V4).unwrap();
    plain.merge(&parse_cidr_list(CF_V6).unwrap()).unwrap();
    assert_eq!(plain.len(), 15 + 7);
    assert_eq!(nets(&api), nets(&plain));
    assert!(api.contains("173.245.48.1".parse().unwrap()));
    assert!(api.contains("2606:4700::1".parse().unwrap()));
    assert!(!api.contains("8.8.8.8".parse().unwrap()));
}

#[test]
fn format_dispatches_to_each_parser() {
    let cases: [(Format, &str, usize); 5] = [
        (Format::CidrList, CF_V4, 15),
        (Format::Aws(AwsFilter::all()), AWS, 13_344),
        (Format::GoogleCloud, GOOGLE, 782),
        (Format::Fastly, FASTLY, 21),
        (Format::CloudflareApi, CF_API, 22),
    ];
    for (format, body, n) in cases {
        assert_eq!(
            format.parse(body.as_bytes()).unwrap().len(),
            n,
            "{format:?}"
        );
    }
}

#[test]
fn a_bad_entry_refuses_the_list_and_names_its_field() {
    let first = "\"ip_prefix\": \"3.4.12.4/32\"";
    assert!(AWS.contains(first));
    let bad = AWS.replacen(first, "\"ip_prefix\": \"3.4.12.4/33\"", 1);
    let e = parse_aws(bad.as_bytes(), &AwsFilter::service("CLOUDFRONT")).unwrap_err();
    assert_eq!(e.kind(), ListErrorKind::Field);
    assert!(e.to_string().contains("prefixes[0].ip_prefix"), "{e}");
    assert!(e.to_string().contains("3.4.12.4/33"), "{e}");

    // An IPv6 network in the IPv4 field is refused too.
    let swapped = AWS.replacen(first, "\"ip_prefix\": \"2600:1f69::/40\"", 1);
    let e = parse_aws(swapped.as_bytes(), &AwsFilter::all()).unwrap_err();
    assert!(e.to_string().contains("not an IPv4 network"), "{e}");

    let bad = GOOGLE.replacen("\"ipv4Prefix\"", "\"ipv4Prefx\"", 1);
    let e = parse_google_cloud(bad.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ListErrorKind::Field);
    assert!(e.to_string().contains("prefixes[0]"), "{e}");

    let bad = FASTLY.replacen("23.235.32.0/20", "23.235.32.0/x", 1);
    let e = parse_fastly(bad.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("addresses[0]"), "{e}");
}

#[test]
fn truncated_or_foreign_json_names_the_line() {
    let truncated = &AWS[..AWS.len() / 2];
    let e = parse_aws(truncated.as_bytes(), &AwsFilter::all()).unwrap_err();
    assert_eq!(e.kind(), ListErrorKind::Json);
    let line = e.line().unwrap();
    assert_eq!(line, truncated.lines().count(), "{e}");

    // A document of another provider is not mistaken for this one.
    let e = parse_fastly(GOOGLE.as_bytes()).unwrap_err();
    assert_eq!(e.kind(), ListErrorKind::Json);
    assert!(e.to_string().contains("addresses"), "{e}");
    let e = Format::CloudflareApi
        .parse(b"<html>502</html>")
        .unwrap_err();
    assert_eq!(e.kind(), ListErrorKind::Json);
}

#[test]
fn cloudflare_api_failure_is_refused_with_its_errors() {
    let body = br#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"result":null}"#;
    let e = parse_cloudflare_api(body).unwrap_err();
    assert_eq!(e.kind(), ListErrorKind::Api);
    assert!(e.to_string().contains("Authentication error"), "{e}");
}

#[test]
fn plain_list_line_errors_on_a_real_list() {
    let mut lines: Vec<&str> = CF_V4.lines().collect();
    lines.insert(3, "# a comment survives");
    lines.insert(5, "104.16.0.0/13 trailing-word");
    let e = parse_cidr_list(&lines.join("\n")).unwrap_err();
    assert_eq!((e.kind(), e.line()), (ListErrorKind::Line, Some(6)));
    let ip: IpAddr = "104.16.0.1".parse().unwrap();
    assert!(parse_cidr_list(CF_V4).unwrap().contains(ip));
}
