//! W3C Trace Context (`traceparent`): an incoming request that carries one
//! joins the caller's trace; one without starts a new trace.

use rand::RngCore;

/// The trace an invocation runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 random bytes, never all zero.
    pub trace_id: [u8; 16],
    /// The caller's span, when the request carried a `traceparent`.
    pub parent_span_id: Option<[u8; 8]>,
    /// The caller's sampling decision (new traces are sampled).
    pub sampled: bool,
}

impl TraceContext {
    /// A new trace, not joined to anything.
    pub fn new_root() -> Self {
        let mut trace_id = [0u8; 16];
        while trace_id == [0; 16] {
            rand::rng().fill_bytes(&mut trace_id);
        }
        TraceContext { trace_id, parent_span_id: None, sampled: true }
    }

    /// The caller's trace from a `traceparent` header value, if it is valid:
    /// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, ids not all
    /// zero. Any other version is read by its first four fields, as the
    /// specification asks; anything malformed is ignored.
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = decode_lower_hex(trace)?;
        let span_id: [u8; 8] = decode_lower_hex(span)?;
        let flags: [u8; 1] = decode_lower_hex(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext { trace_id, parent_span_id: Some(span_id), sampled: flags[0] & 1 == 1 })
    }

    /// The trace id as 32 lower-case hex digits (what Jaeger shows).
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }
}

fn decode_lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_valid_traceparents_and_ignores_the_rest() {
        let joined = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(joined.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(joined.parent_span_id, Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]));
        assert!(joined.sampled);
        assert!(!TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap().sampled);
        // A future version may append fields.
        assert!(TraceContext::from_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad}");
        }
        let root = TraceContext::new_root();
        assert_eq!(root.trace_id_hex().len(), 32);
        assert_ne!(root.trace_id, TraceContext::new_root().trace_id);
    }
}
