//! PROXY protocol version 1: the text header.
//!
//! `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, `PROXY TCP6 ...` or
//! `PROXY UNKNOWN[ anything]\r\n`, at most 107 bytes. The parser is one
//! forward pass over the bytes with hand-rolled address and port parsing: no
//! UTF-8 validation, no search for the CRLF first, no allocation. It rejects
//! a prefix as soon as no continuation could make it valid.
//!
//! ```
//! use realip::proxy::{v1, Status};
//!
//! let Status::Complete(h, n) = v1::parse(b"PROXY TCP6 2001:db8::1 ::1 4000 443\r\n")? else {
//!     unreachable!()
//! };
//! assert_eq!(n, 37);
//! assert_eq!(h.source(), Some("[2001:db8::1]:4000".parse()?));
//! assert!(v1::parse(b"PROXY TCP4 10.0.0.010 ").is_err()); // leading zero
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::num::NonZeroUsize;
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::tlv::Index;
use super::{
    Addresses, Command, EncodeError, Endpoint, Error, Family, Header, Ips, Status, Transport,
};

/// Longest v1 header, CRLF included.
pub const MAX_LEN: usize = 107;
/// Shortest v1 header (`PROXY UNKNOWN\r\n`).
pub const MIN_LEN: usize = 15;
/// What every v1 header starts with.
pub const PREFIX: &[u8] = b"PROXY ";

/// Why the forward pass stopped early. Two bytes, so every helper's
/// `Result` travels in a register (the public `Error` is wider).
#[derive(Clone, Copy)]
enum Stop {
    /// Ran out of bytes on a valid prefix.
    More,
    Bad(V1Error),
}

/// The v1 subset of [`Error`].
#[derive(Clone, Copy)]
enum V1Error {
    NotProxy,
    TooLong,
    Protocol,
    Separator,
    Truncated,
    Crlf,
    Address(Endpoint),
    AddressLeadingZero(Endpoint),
    Port(Endpoint),
    PortLeadingZero(Endpoint),
    PortRange(Endpoint),
}

impl From<Error> for Stop {
    /// Only ever called on constant v1 variants, so this folds away.
    #[inline(always)]
    fn from(e: Error) -> Self {
        Stop::Bad(match e {
            Error::V1TooLong => V1Error::TooLong,
            Error::V1Protocol => V1Error::Protocol,
            Error::V1Separator => V1Error::Separator,
            Error::V1Truncated => V1Error::Truncated,
            Error::V1Crlf => V1Error::Crlf,
            Error::V1Address(e) => V1Error::Address(e),
            Error::V1AddressLeadingZero(e) => V1Error::AddressLeadingZero(e),
            Error::V1Port(e) => V1Error::Port(e),
            Error::V1PortLeadingZero(e) => V1Error::PortLeadingZero(e),
            Error::V1PortRange(e) => V1Error::PortRange(e),
            _ => V1Error::NotProxy,
        })
    }
}

impl From<V1Error> for Error {
    fn from(e: V1Error) -> Self {
        match e {
            V1Error::NotProxy => Error::NotProxy,
            V1Error::TooLong => Error::V1TooLong,
            V1Error::Protocol => Error::V1Protocol,
            V1Error::Separator => Error::V1Separator,
            V1Error::Truncated => Error::V1Truncated,
            V1Error::Crlf => Error::V1Crlf,
            V1Error::Address(e) => Error::V1Address(e),
            V1Error::AddressLeadingZero(e) => Error::V1AddressLeadingZero(e),
            V1Error::Port(e) => Error::V1Port(e),
            V1Error::PortLeadingZero(e) => Error::V1PortLeadingZero(e),
            V1Error::PortRange(e) => Error::V1PortRange(e),
        }
    }
}

type R<T> = Result<T, Stop>;

struct Cur<'a> {
    /// The input cut to `MAX_LEN`: one bound check per byte covers both
    /// "need more input" and "107 bytes without CRLF".
    buf: &'a [u8],
    pos: usize,
    /// The input held `MAX_LEN` bytes or more.
    full: bool,
}

impl<'a> Cur<'a> {
    #[inline(always)]
    fn new(buf: &'a [u8]) -> Self {
        let full = buf.len() >= MAX_LEN;
        Cur {
            buf: if full { &buf[..MAX_LEN] } else { buf },
            pos: 0,
            full,
        }
    }

    #[cold]
    fn end(&self) -> Stop {
        if self.full {
            Error::V1TooLong.into()
        } else {
            Stop::More
        }
    }

    /// The next byte, or why there is none: more input is needed, or 107
    /// bytes have gone by without a CRLF.
    #[inline(always)]
    fn peek(&self) -> R<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => Ok(b),
            None => Err(self.end()),
        }
    }
    #[inline(always)]
    fn bump(&mut self) {
        self.pos += 1;
    }
    #[inline(always)]
    fn next(&mut self) -> R<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }
    /// Matches `lit` byte by byte so a partial buffer is judged on what it has.
    #[inline(always)]
    fn lit(&mut self, lit: &[u8], err: Error) -> R<()> {
        if let Some(s) = self.buf.get(self.pos..self.pos + lit.len()) {
            if s == lit {
                self.pos += lit.len();
                return Ok(());
            }
        }
        for &want in lit {
            if self.next()? != want {
                return Err(err.into());
            }
        }
        Ok(())
    }
}

/// Parses a v1 header at the front of `buf`.
pub fn parse(buf: &[u8]) -> Result<Status<'_>, Error> {
    let mut c = Cur::new(buf);
    let mut addr = Ips::default();
    match fields(&mut c, &mut addr) {
        Ok(family) => Ok(Status::Complete(
            Header {
                version: super::Version::V1,
                command: Command::Proxy,
                transport: if family == Family::Unspec {
                    Transport::Unspec
                } else {
                    Transport::Stream
                },
                family,
                stored: family,
                addr,
                unix: &[],
                tlvs: &[],
                index: Index::default(),
            },
            c.pos,
        )),
        Err(Stop::More) => {
            // A lower bound: the shortest header, or the LF after a CR.
            let need = MIN_LEN.saturating_sub(buf.len()).max(1);
            Ok(Status::Partial(NonZeroUsize::new(need)))
        }
        Err(Stop::Bad(e)) => Err(e.into()),
    }
}

/// The whole line. Addresses go to `addr`; returns the family (`Unspec`
/// for `UNKNOWN`).
#[inline(always)]
fn fields(c: &mut Cur<'_>, addr: &mut Ips) -> R<Family> {
    c.lit(PREFIX, Error::NotProxy)?;
    let family = protocol(c)?;
    match family {
        Family::Inet => {
            let src = ipv4(c, Endpoint::Source)?;
            space_after_addr(c, Endpoint::Source)?;
            let dst = ipv4(c, Endpoint::Destination)?;
            space_after_addr(c, Endpoint::Destination)?;
            let (sp, dp) = ports(c)?;
            *addr = Ips::new(u32::from(src).into(), u32::from(dst).into(), sp, dp);
        }
        Family::Inet6 => {
            let src = ipv6(c, Endpoint::Source)?;
            space_after_addr(c, Endpoint::Source)?;
            let dst = ipv6(c, Endpoint::Destination)?;
            space_after_addr(c, Endpoint::Destination)?;
            let (sp, dp) = ports(c)?;
            *addr = Ips::new(src.into(), dst.into(), sp, dp);
        }
        Family::Unspec | Family::Unix => unknown_rest(c)?,
    }
    Ok(family)
}

/// `TCP4 `, `TCP6 ` or `UNKNOWN` (followed by a space or the CR).
#[inline(always)]
fn protocol(c: &mut Cur<'_>) -> R<Family> {
    if let Some(s) = c.buf.get(c.pos..c.pos + 5) {
        // Fast path: the whole word is there.
        let fam = match s {
            b"TCP4 " => Some(Family::Inet),
            b"TCP6 " => Some(Family::Inet6),
            _ => None,
        };
        if let Some(f) = fam {
            c.pos += 5;
            return Ok(f);
        }
    }
    match c.peek()? {
        b'T' => {
            c.lit(b"TCP", Error::V1Protocol)?;
            let f = match c.next()? {
                b'4' => Family::Inet,
                b'6' => Family::Inet6,
                _ => return Err(Error::V1Protocol.into()),
            };
            separator(c, true)?;
            Ok(f)
        }
        b'U' => {
            c.lit(b"UNKNOWN", Error::V1Protocol)?;
            match c.peek()? {
                b' ' | b'\r' => Ok(Family::Unspec),
                b'\n' => Err(Error::V1Crlf.into()),
                b => Err(word_end(b).into()),
            }
        }
        b' ' => Err(Error::V1Separator.into()),
        _ => Err(Error::V1Protocol.into()),
    }
}

/// A protocol word went on with `b`: another letter means a wrong word.
fn word_end(b: u8) -> Error {
    if b.is_ascii_alphanumeric() {
        Error::V1Protocol
    } else if b == b'\r' || b == b'\n' {
        Error::V1Truncated
    } else {
        Error::V1Separator
    }
}

/// Exactly one space after the protocol word.
#[inline(always)]
fn separator(c: &mut Cur<'_>, after_word: bool) -> R<()> {
    match c.next()? {
        b' ' => match c.peek()? {
            b' ' => Err(Error::V1Separator.into()),
            _ => Ok(()),
        },
        b if after_word => Err(word_end(b).into()),
        _ => Err(Error::V1Separator.into()),
    }
}

/// The single space that must end an address.
#[inline(always)]
fn space_after_addr(c: &mut Cur<'_>, ep: Endpoint) -> R<()> {
    match c.next()? {
        b' ' => Ok(()),
        b'\r' | b'\n' => Err(Error::V1Truncated.into()),
        _ => Err(Error::V1Address(ep).into()),
    }
}

#[inline(always)]
fn is_digit(b: u8) -> bool {
    b.wrapping_sub(b'0') < 10
}

/// One decimal IPv4 octet: 0..=255, no leading zero. Unrolled: at most
/// three digits; a fourth digit is caught by the caller, which expects a
/// `.` or a space.
#[inline(always)]
fn octet(c: &mut Cur<'_>, ep: Endpoint) -> R<u8> {
    let b = c.next()?;
    let d0 = b.wrapping_sub(b'0');
    if d0 >= 10 {
        return Err(if b == b' ' {
            Error::V1Separator
        } else {
            Error::V1Address(ep)
        }
        .into());
    }
    let d1 = c.peek()?.wrapping_sub(b'0');
    if d1 >= 10 {
        return Ok(d0);
    }
    if d0 == 0 {
        return Err(Error::V1AddressLeadingZero(ep).into());
    }
    c.bump();
    let v = u32::from(d0) * 10 + u32::from(d1);
    let d2 = c.peek()?.wrapping_sub(b'0');
    if d2 >= 10 {
        return Ok(v as u8);
    }
    let v = v * 10 + u32::from(d2);
    if v > 255 {
        return Err(Error::V1Address(ep).into());
    }
    c.bump();
    Ok(v as u8)
}

#[inline(always)]
fn ipv4(c: &mut Cur<'_>, ep: Endpoint) -> R<Ipv4Addr> {
    let a = octet(c, ep)?;
    dot(c, ep)?;
    let b = octet(c, ep)?;
    dot(c, ep)?;
    let d = octet(c, ep)?;
    dot(c, ep)?;
    let e = octet(c, ep)?;
    Ok(Ipv4Addr::new(a, b, d, e))
}

#[inline(always)]
fn dot(c: &mut Cur<'_>, ep: Endpoint) -> R<()> {
    match c.next()? {
        b'.' => Ok(()),
        _ => Err(Error::V1Address(ep).into()),
    }
}

/// Hex digit values; 0xFF marks a non-hex byte.
static HEX: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

#[inline(always)]
fn hex(b: u8) -> Option<u16> {
    match HEX[usize::from(b)] {
        0xFF => None,
        h => Some(u16::from(h)),
    }
}

/// RFC 4291 text form, as `inet_pton` takes it: up to 4 hex digits per
/// group, one `::`, an optional trailing dotted quad (strict octets). No
/// zone id. Stops before the byte that ends the address.
fn ipv6(c: &mut Cur<'_>, ep: Endpoint) -> R<Ipv6Addr> {
    let bad = || Stop::from(Error::V1Address(ep));
    // Groups are shifted into `acc` as they come; at `::` the groups so far
    // move to `head`. No arrays: everything stays in registers.
    let mut acc: u128 = 0;
    let mut head: u128 = 0;
    let mut n_head = 0u32;
    let mut n = 0u32;
    let mut gap = false;
    if c.peek()? == b':' {
        c.bump();
        if c.next()? != b':' {
            return Err(bad());
        }
        gap = true;
    }
    loop {
        // Right after `::` the address may end.
        if gap && n == n_head && c.peek()? == b' ' {
            break;
        }
        let start = c.pos;
        let mut v = 0u16;
        let mut digits = 0;
        let mut b = c.peek()?;
        while let Some(h) = hex(b) {
            if digits == 4 {
                return Err(bad());
            }
            v = (v << 4) | h;
            digits += 1;
            c.bump();
            b = c.peek()?;
        }
        if digits == 0 {
            return Err(if b == b' ' && n == 0 && !gap {
                Stop::from(Error::V1Separator)
            } else {
                bad()
            });
        }
        // Room left: 8 groups, or 7 when `::` stands for at least one.
        let room = if gap { 7 } else { 8 };
        if b == b'.' {
            // Trailing dotted quad: it takes the last two groups.
            if (!gap && n != 6) || n + 2 > room {
                return Err(bad());
            }
            c.pos = start;
            let q = ipv4(c, ep)?;
            acc = (acc << 32) | u128::from(u32::from(q));
            n += 2;
            break;
        }
        if n + 1 > room {
            return Err(bad());
        }
        acc = (acc << 16) | u128::from(v);
        n += 1;
        if b != b':' {
            break;
        }
        c.bump();
        if c.peek()? == b':' {
            if gap || n >= 8 {
                return Err(bad());
            }
            c.bump();
            gap = true;
            head = acc;
            n_head = n;
            acc = 0;
        } else if !gap && n == 8 {
            return Err(bad());
        }
    }
    if gap {
        // `head` takes the top groups, `acc` the bottom ones.
        let head = head.checked_shl(16 * (8 - n_head)).unwrap_or(0);
        Ok(Ipv6Addr::from(head | acc))
    } else if n == 8 {
        Ok(Ipv6Addr::from(acc))
    } else {
        Err(bad())
    }
}

/// `<sport> <dport>\r\n`.
#[inline(always)]
fn ports(c: &mut Cur<'_>) -> R<(u16, u16)> {
    let sp = port(c, Endpoint::Source)?;
    match c.next()? {
        b' ' => {}
        b'\r' | b'\n' => return Err(Error::V1Truncated.into()),
        _ => return Err(Error::V1Port(Endpoint::Source).into()),
    }
    let dp = port(c, Endpoint::Destination)?;
    match c.next()? {
        b'\r' => {}
        _ => return Err(Error::V1Crlf.into()),
    }
    match c.next()? {
        b'\n' => Ok((sp, dp)),
        _ => Err(Error::V1Crlf.into()),
    }
}

/// Decimal 0..=65535 without a leading zero; stops before the next byte.
#[inline(always)]
fn port(c: &mut Cur<'_>, ep: Endpoint) -> R<u16> {
    let b = c.next()?;
    if !is_digit(b) {
        return Err(match b {
            b' ' => Error::V1Separator,
            b'\r' | b'\n' => Error::V1Truncated,
            _ => Error::V1Port(ep),
        }
        .into());
    }
    let mut v = u32::from(b - b'0');
    let first_zero = v == 0;
    loop {
        let b = c.peek()?;
        if !is_digit(b) {
            return Ok(v as u16);
        }
        if first_zero {
            return Err(Error::V1PortLeadingZero(ep).into());
        }
        v = v * 10 + u32::from(b - b'0');
        if v > 65535 {
            return Err(Error::V1PortRange(ep).into());
        }
        c.bump();
    }
}

/// After `UNKNOWN`: anything up to the first CR, which must be followed by
/// LF. A bare LF is not a line end.
fn unknown_rest(c: &mut Cur<'_>) -> R<()> {
    let end = c.buf.len();
    let rest = c.buf.get(c.pos..).unwrap_or(&[]);
    match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(i) => {
            c.pos += i;
            if c.next()? != b'\r' {
                return Err(Error::V1Crlf.into());
            }
            if c.next()? != b'\n' {
                return Err(Error::V1Crlf.into());
            }
            Ok(())
        }
        None => {
            c.pos = end;
            c.peek().map(|_| ())
        }
    }
}

/// Writes a v1 header for `addresses`: `TCP4`, `TCP6` or `UNKNOWN`.
///
/// ```
/// use realip::proxy::{v1, Addresses};
/// let mut out = Vec::new();
/// v1::write(&mut out, &Addresses::Ipv4 {
///     source: "192.0.2.7:56324".parse()?,
///     destination: "198.51.100.1:443".parse()?,
/// })?;
/// assert_eq!(out, b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write(out: &mut Vec<u8>, addresses: &Addresses<'_>) -> Result<usize, EncodeError> {
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = match addresses {
        Addresses::Unspec => out.write_all(b"PROXY UNKNOWN\r\n"),
        Addresses::Ipv4 {
            source,
            destination,
        } => write!(
            out,
            "PROXY TCP4 {} {} {} {}\r\n",
            source.ip(),
            destination.ip(),
            source.port(),
            destination.port()
        ),
        Addresses::Ipv6 {
            source,
            destination,
        } => write!(
            out,
            "PROXY TCP6 {} {} {} {}\r\n",
            source.ip(),
            destination.ip(),
            source.port(),
            destination.port()
        ),
        Addresses::Unix { .. } => return Err(EncodeError::V1Unix),
    };
    Ok(out.len() - start)
}
