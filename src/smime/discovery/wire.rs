//! The DNS wire format, as much of it as certificate discovery needs: one-question queries, and
//! responses read as untrusted input (the id, QR bit and echoed question checked, counts and
//! lengths bounded, compression pointers only backwards). Hand-written rather than hickory-proto:
//! see the note in `super`'s docs.

/// DNS RR type CERT (RFC 4398).
pub const TYPE_CERT: u16 = 37;
pub(super) const TYPE_CNAME: u16 = 5;
/// DNS RR type SRV (RFC 2782), for `_ldap._tcp.<domain>`.
pub const TYPE_SRV: u16 = 33;
pub(super) const CLASS_IN: u16 = 1;
/// CERT certificate types (RFC 4398 section 2.1).
pub const CERT_PKIX: u16 = 1;
pub const CERT_IPKIX: u16 = 4;

/// Upper bounds applied to untrusted messages.
const MAX_ANSWERS: usize = 64;
const MAX_POINTER_JUMPS: usize = 32;

pub(super) const HEADER_LEN: usize = 12;
pub(super) const FLAG_QR: u16 = 0x8000;
pub(super) const FLAG_TC: u16 = 0x0200;
pub(super) const FLAG_RD: u16 = 0x0100;

#[cfg(test)]
pub(super) fn build_query(id: u16, labels: &[Vec<u8>]) -> Vec<u8> {
    build_query_type(id, labels, TYPE_CERT)
}

pub(super) fn build_query_type(id: u16, labels: &[Vec<u8>], qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER_LEN + 260);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&FLAG_RD.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // AN, NS, AR
    for label in labels {
        q.push(label.len() as u8);
        q.extend_from_slice(label);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

#[derive(Debug)]
pub(super) enum ParseError {
    /// Not an answer to our query (id or question differ): ignore on UDP.
    Mismatch,
    Bad(&'static str),
}

pub(super) struct Record {
    pub(super) owner: Vec<Vec<u8>>,
    pub(super) rtype: u16,
    pub(super) ttl: u32,
    pub(super) rdata: Vec<u8>,
}

pub(super) struct Parsed {
    pub(super) truncated: bool,
    pub(super) rcode: u8,
    pub(super) answers: Vec<Record>,
}

#[cfg(test)]
pub(super) fn parse_response(msg: &[u8], id: u16, qname: &[Vec<u8>]) -> Result<Parsed, ParseError> {
    parse_response_type(msg, id, qname, TYPE_CERT)
}

pub(super) fn parse_response_type(
    msg: &[u8],
    id: u16,
    qname: &[Vec<u8>],
    qtype: u16,
) -> Result<Parsed, ParseError> {
    if msg.len() < HEADER_LEN {
        return Err(ParseError::Bad("response shorter than a DNS header"));
    }
    let u16_at = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    if u16_at(0) != id {
        return Err(ParseError::Mismatch);
    }
    let flags = u16_at(2);
    if flags & FLAG_QR == 0 {
        return Err(ParseError::Mismatch);
    }
    if (flags >> 11) & 0xf != 0 {
        return Err(ParseError::Bad("unexpected opcode"));
    }
    let truncated = flags & FLAG_TC != 0;
    let rcode = (flags & 0xf) as u8;
    let qdcount = u16_at(4);
    let ancount = usize::from(u16_at(6));
    let mut pos = HEADER_LEN;
    // Some servers omit the question in error responses; otherwise it must echo ours.
    if qdcount != 1 {
        if qdcount == 0 && rcode != 0 {
            return Ok(Parsed {
                truncated,
                rcode,
                answers: Vec::new(),
            });
        }
        return Err(ParseError::Mismatch);
    }
    let (name, next) = read_name(msg, pos)?;
    pos = next;
    if pos + 4 > msg.len() {
        return Err(ParseError::Bad("question truncated"));
    }
    if !same_name(&name, qname) || u16_at(pos) != qtype || u16_at(pos + 2) != CLASS_IN {
        return Err(ParseError::Mismatch);
    }
    pos += 4;
    if truncated {
        // The rest is unreliable by definition; the caller retries over TCP.
        return Ok(Parsed {
            truncated,
            rcode,
            answers: Vec::new(),
        });
    }
    if ancount > MAX_ANSWERS {
        return Err(ParseError::Bad("too many answer records"));
    }
    let mut answers = Vec::with_capacity(ancount);
    for _ in 0..ancount {
        let (owner, next) = read_name(msg, pos)?;
        pos = next;
        if pos + 10 > msg.len() {
            return Err(ParseError::Bad("answer record header truncated"));
        }
        let rtype = u16_at(pos);
        let class = u16_at(pos + 2);
        let ttl = u32::from_be_bytes([msg[pos + 4], msg[pos + 5], msg[pos + 6], msg[pos + 7]]);
        let rdlen = usize::from(u16_at(pos + 8));
        pos += 10;
        if pos + rdlen > msg.len() {
            return Err(ParseError::Bad("RDATA runs past the end of the message"));
        }
        let rdata = if rtype == TYPE_CNAME {
            // CNAME targets may be compressed: decompress against the whole message.
            let (target, end) = read_name(msg, pos)?;
            if end != pos + rdlen {
                return Err(ParseError::Bad("CNAME RDATA length mismatch"));
            }
            encode_labels(&target)
        } else if rtype == TYPE_SRV {
            // Priority, weight, port, then a target RFC 2782 says is uncompressed; accept a
            // compressed one anyway, decompressed like a CNAME's.
            if rdlen < 7 {
                return Err(ParseError::Bad("SRV RDATA too short"));
            }
            let (target, end) = read_name(msg, pos + 6)?;
            if end != pos + rdlen {
                return Err(ParseError::Bad("SRV RDATA length mismatch"));
            }
            let mut rdata = msg[pos..pos + 6].to_vec();
            rdata.extend_from_slice(&encode_labels(&target));
            rdata
        } else {
            msg[pos..pos + rdlen].to_vec()
        };
        pos += rdlen;
        if class == CLASS_IN {
            answers.push(Record {
                owner,
                rtype,
                // RFC 2181: a TTL with the top bit set is treated as zero.
                ttl: if ttl > i32::MAX as u32 { 0 } else { ttl },
                rdata,
            });
        }
    }
    Ok(Parsed {
        truncated,
        rcode,
        answers,
    })
}

pub(super) fn encode_labels(labels: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    out
}

pub(super) fn decode_labels(wire: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < wire.len() && wire[i] != 0 {
        let len = usize::from(wire[i]);
        out.push(wire[i + 1..i + 1 + len].to_vec());
        i += 1 + len;
    }
    out
}

/// Reads a possibly compressed name at `start`; returns lower-cased labels and the offset just
/// past the name in the original position. Pointers must point strictly backwards.
pub(super) fn read_name(msg: &[u8], start: usize) -> Result<(Vec<Vec<u8>>, usize), ParseError> {
    let mut labels = Vec::new();
    let mut pos = start;
    let mut end = None;
    let mut jumps = 0;
    let mut wire_len = 1;
    loop {
        let len = *msg
            .get(pos)
            .ok_or(ParseError::Bad("name runs past the end"))?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok((labels, end.unwrap_or(pos + 1)));
                }
                let len = usize::from(len);
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(ParseError::Bad("label runs past the end"))?;
                wire_len += len + 1;
                if wire_len > 255 {
                    return Err(ParseError::Bad("name longer than 255 bytes"));
                }
                labels.push(label.to_ascii_lowercase());
                pos += 1 + len;
            }
            0xc0 => {
                let lo = *msg
                    .get(pos + 1)
                    .ok_or(ParseError::Bad("pointer truncated"))?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(lo);
                if target >= pos || jumps >= MAX_POINTER_JUMPS {
                    return Err(ParseError::Bad("bad compression pointer"));
                }
                jumps += 1;
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(ParseError::Bad("unsupported label type")),
        }
    }
}

pub(super) fn same_name(a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}
