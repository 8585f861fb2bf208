//! PROXY header parsing: realip against `ppp` and `proxy-header`, one group
//! per input. Every contender hands out source and destination as socket
//! addresses; on the IPv6/AWS TLV inputs realip reads every typed TLV and
//! the others iterate all their TLVs. The `v2_ipv4` and
//! `v2_nlb` groups use the contenders of `common/proxy.rs`, which the plain
//! loop `proxy_plain` times too: each hands back the same outputs (client
//! address, header length, VPC endpoint id), black-boxed.

#[path = "common/proxy.rs"]
mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use proxy_header::{ParseConfig, ProxyHeader};
use realip::proxy::{self, kind, v2, Addresses, Options, Status, Transport};

const V1_TCP4: &str = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
const V1_TCP6: &str = "PROXY TCP6 2001:db8:85a3::8a2e:370:7334 2001:db8::1 56324 443\r\n";
const V1_UNKNOWN: &str = "PROXY UNKNOWN\r\n";

fn v2_ipv6_tlvs() -> Vec<u8> {
    v2::Builder::proxy(
        Transport::Stream,
        Addresses::Ipv6 {
            source: "[2001:db8:85a3::8a2e:370:7334]:56324".parse().unwrap(),
            destination: "[2001:db8::1]:443".parse().unwrap(),
        },
    )
    .tlv(kind::ALPN, b"h2")
    .tlv(kind::AUTHORITY, b"api.example.com")
    .crc32c()
    .to_vec()
    .unwrap()
}

/// What an AWS NLB sends for a client that came through a VPC endpoint
/// (PrivateLink): IPv4 PROXY header plus the 0xEA TLV, subtype 0x01.
fn v2_aws() -> Vec<u8> {
    v2::Builder::proxy(
        Transport::Stream,
        Addresses::Ipv4 {
            source: "172.31.7.113:47426".parse().unwrap(),
            destination: "172.31.10.31:80".parse().unwrap(),
        },
    )
    .tlv(kind::AWS, b"\x01vpce-08d2bf15fac5001c9")
    .to_vec()
    .unwrap()
}

fn realip_addrs(buf: &[u8]) {
    if let Ok(Status::Complete(h, n)) = proxy::parse(black_box(buf)) {
        black_box((h.source(), h.destination(), n));
    } else {
        unreachable!()
    }
}

fn realip_all_tlvs(buf: &[u8], opts: Options) {
    let Ok(Status::Complete(h, n)) = proxy::parse_with(black_box(buf), opts) else {
        unreachable!()
    };
    black_box((h.source(), h.destination(), n));
    black_box((h.alpn(), h.authority(), h.crc32c(), h.unique_id()));
    black_box((h.ssl(), h.netns(), h.aws_vpce_id()));
    black_box((h.azure_link_id(), h.gcp_psc_id()));
}

fn ppp_v1(s: &str) {
    let h = ppp::v1::Header::try_from(black_box(s)).unwrap();
    black_box(h.addresses);
}

fn ppp_v2(buf: &[u8], tlvs: bool) {
    let h = ppp::v2::Header::try_from(black_box(buf)).unwrap();
    // The addresses as realip hands them out (copying ppp's whole
    // `Addresses` enum, UNIX paths included, would time a 216-byte copy).
    black_box(match &h.addresses {
        ppp::v2::Addresses::IPv4(a) => Some((
            std::net::SocketAddr::from((a.source_address, a.source_port)),
            std::net::SocketAddr::from((a.destination_address, a.destination_port)),
        )),
        ppp::v2::Addresses::IPv6(a) => Some((
            std::net::SocketAddr::from((a.source_address, a.source_port)),
            std::net::SocketAddr::from((a.destination_address, a.destination_port)),
        )),
        _ => None,
    });
    if tlvs {
        for t in h.tlvs() {
            let t = t.unwrap();
            black_box((t.kind, &t.value));
        }
    }
}

fn proxy_header(buf: &[u8], tlvs: bool) {
    let (h, n) = ProxyHeader::parse(black_box(buf), ParseConfig::default()).unwrap();
    black_box((h.proxied_address().map(|a| (a.source, a.destination)), n));
    if tlvs {
        for t in h.tlvs() {
            black_box(t.unwrap());
        }
    }
}

fn v1_group(c: &mut Criterion, name: &str, line: &'static str) {
    let mut g = c.benchmark_group(name);
    g.bench_function("realip", |b| b.iter(|| realip_addrs(line.as_bytes())));
    g.bench_function("ppp", |b| b.iter(|| ppp_v1(line)));
    g.bench_function("proxy-header", |b| {
        b.iter(|| proxy_header(line.as_bytes(), false))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    v1_group(c, "v1_tcp4", V1_TCP4);
    v1_group(c, "v1_tcp6", V1_TCP6);
    v1_group(c, "v1_unknown", V1_UNKNOWN);

    let buf = common::v2_ipv4();
    let mut g = c.benchmark_group("v2_ipv4");
    g.bench_function("realip", |b| b.iter(|| common::realip::<true, false>(&buf)));
    g.bench_function("ppp", |b| b.iter(|| common::ppp::<false>(&buf)));
    g.bench_function("proxy-header", |b| {
        b.iter(|| common::proxy_header::<false>(&buf))
    });
    g.finish();

    let buf = common::nlb();
    let mut g = c.benchmark_group("v2_nlb");
    g.bench_function("realip", |b| b.iter(|| common::realip::<true, true>(&buf)));
    g.bench_function("realip_no_crc", |b| {
        b.iter(|| common::realip::<false, true>(&buf))
    });
    g.bench_function("ppp", |b| b.iter(|| common::ppp::<true>(&buf)));
    g.bench_function("proxy-header", |b| {
        b.iter(|| common::proxy_header::<true>(&buf))
    });
    g.finish();

    let buf = v2_ipv6_tlvs();
    let mut g = c.benchmark_group("v2_ipv6_alpn_authority_crc32c");
    g.bench_function("realip", |b| {
        b.iter(|| realip_all_tlvs(&buf, Options::new()))
    });
    g.bench_function("realip_no_crc", |b| {
        b.iter(|| realip_all_tlvs(&buf, Options::new().verify_crc32c(false)))
    });
    g.bench_function("ppp", |b| b.iter(|| ppp_v2(&buf, true)));
    g.bench_function("proxy-header", |b| b.iter(|| proxy_header(&buf, true)));
    g.finish();

    let buf = v2_aws();
    let mut g = c.benchmark_group("v2_aws_vpce");
    g.bench_function("realip", |b| {
        b.iter(|| realip_all_tlvs(&buf, Options::new()))
    });
    g.bench_function("ppp", |b| b.iter(|| ppp_v2(&buf, true)));
    g.bench_function("proxy-header", |b| b.iter(|| proxy_header(&buf, true)));
    g.finish();
}

criterion_group!(proxy_parse, benches);
criterion_main!(proxy_parse);
