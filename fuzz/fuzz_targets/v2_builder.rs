//! Whatever the v2 builder (and the v1 writer) agrees to write, the parser
//! accepts, as exactly the header it was given. The input picks the
//! builder's arguments: command, transport, addresses, family override,
//! TLVs (valid or not), raw TLV bytes, CRC32C.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use realip::proxy::{self, v1, v2, Addresses, Command, Family, Status, Transport};

/// Reads the input front to back; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        a[..].iter_mut().for_each(|b| *b = self.byte());
        a
    }
    fn port(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let flags = inp.byte();
    let command = if flags & 1 == 0 { Command::Local } else { Command::Proxy };
    let transport = [Transport::Unspec, Transport::Stream, Transport::Dgram, Transport::Stream]
        [usize::from(flags >> 1 & 3)];
    let family = [None, Some(Family::Unspec), Some(Family::Inet), Some(Family::Inet6), Some(Family::Unix)]
        [usize::from(flags >> 3 & 7) % 5];
    let crc = flags & 0x40 != 0;
    let unix: ([u8; 108], [u8; 108]) = {
        let mut a = [0; 108];
        let mut b = [0; 108];
        a[..8].copy_from_slice(&inp.array::<8>());
        b[..8].copy_from_slice(&inp.array::<8>());
        (a, b)
    };
    let addresses = match inp.byte() % 4 {
        0 => Addresses::Unspec,
        1 => Addresses::Ipv4 {
            source: SocketAddrV4::new(Ipv4Addr::from(inp.array::<4>()), inp.port()),
            destination: SocketAddrV4::new(Ipv4Addr::from(inp.array::<4>()), inp.port()),
        },
        2 => Addresses::Ipv6 {
            source: SocketAddrV6::new(Ipv6Addr::from(inp.array::<16>()), inp.port(), 0, 0),
            destination: SocketAddrV6::new(Ipv6Addr::from(inp.array::<16>()), inp.port(), 0, 0),
        },
        _ => Addresses::Unix {
            source: &unix.0,
            destination: &unix.1,
        },
    };

    // v1: whatever it writes parses back to the same addresses.
    let mut line = Vec::new();
    if v1::write(&mut line, &addresses).is_ok() {
        match proxy::parse(&line) {
            Ok(Status::Complete(h, n)) => {
                assert_eq!(n, line.len());
                match addresses {
                    Addresses::Unix { .. } => unreachable!("v1 writes no UNIX"),
                    a => assert_eq!(h.addresses(), a),
                }
            }
            other => panic!("v1 writer output refused: {other:?}"),
        }
    }

    let mut b = v2::Builder::proxy(transport, addresses).command(command);
    if let Some(f) = family {
        b = b.family(f);
    }
    let tlvs = usize::from(inp.byte() % 6);
    for _ in 0..tlvs {
        let kind = inp.byte();
        let len = usize::from(inp.byte());
        b = b.tlv(kind, inp.bytes(len));
    }
    if flags & 0x80 != 0 {
        let len = usize::from(inp.byte() % 16);
        b = b.raw_tlvs(inp.bytes(len));
    }
    if crc {
        b = b.crc32c();
    }
    let Ok(bytes) = b.to_vec() else { return };
    let (h, n) = match proxy::parse(&bytes) {
        Ok(Status::Complete(h, n)) => (h, n),
        other => panic!("builder output refused: {other:?} for {bytes:02x?}"),
    };
    assert_eq!(n, bytes.len());
    assert_eq!(h.command(), command);
    assert_eq!(h.transport(), transport);
    if let Some(f) = family {
        assert_eq!(h.family(), f);
    }
    if !matches!(addresses, Addresses::Unspec) {
        assert_eq!(h.addresses(), addresses);
    }
    // Nothing given was dropped: the TLV region is all there, after the block.
    let block = match h.family() {
        Family::Unspec => 0,
        Family::Inet => 12,
        Family::Inet6 => 36,
        Family::Unix => 216,
    };
    assert_eq!(16 + block + h.tlv_bytes().len(), bytes.len());
    assert_eq!(h.crc32c().is_some(), crc || h.tlvs().any(|t| t.kind == 3));
    realip_fuzz::check(&bytes, proxy::parse(&bytes));
});
