//! W3C trace context (`traceparent`) across the worker: an inbound message's
//! `traceparent` AMQP header is continued by the worker's span for it (same
//! trace id, a new span id whose parent is the inbound one), and every
//! notification and event it causes carries the `traceparent` of that span,
//! so one change can be followed from the hub to each unit (OpenTelemetry
//! messaging conventions). A message without one starts a new trace.

use std::fmt;

/// A `traceparent`: version 00, trace id, span id, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceContext {
    /// Parses a `traceparent` header; `None` when it is not a valid one
    /// (then the message starts a new trace).
    pub fn parse(header: &str) -> Option<TraceContext> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || trace.len() != 32 || span.len() != 16 {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let hex = |s: &str, out: &mut [u8]| -> Option<()> {
            for (i, byte) in out.iter_mut().enumerate() {
                let pair = s.get(2 * i..2 * i + 2)?;
                if pair.bytes().any(|b| b.is_ascii_uppercase()) {
                    return None;
                }
                *byte = u8::from_str_radix(pair, 16).ok()?;
            }
            Some(())
        };
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        hex(trace, &mut trace_id)?;
        hex(span, &mut span_id)?;
        let mut f = [0u8; 1];
        hex(flags, &mut f)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags: f[0],
        })
    }

    /// A new span in `parent`'s trace, or the root of a new sampled trace.
    pub fn child_of(parent: Option<&TraceContext>) -> TraceContext {
        let span = *uuid::Uuid::new_v4().as_bytes();
        let mut span_id = [0u8; 8];
        span_id.copy_from_slice(&span[..8]);
        match parent {
            Some(p) => TraceContext {
                trace_id: p.trace_id,
                span_id,
                flags: p.flags,
            },
            None => TraceContext {
                trace_id: *uuid::Uuid::new_v4().as_bytes(),
                span_id,
                flags: 0x01,
            },
        }
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }
}

/// Lower-case hex, without a `format!` per byte (this runs several times
/// per message).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// The `traceparent` header value.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            self.span_id_hex(),
            self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_round_trips_and_a_child_keeps_the_trace() {
        let parent = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(parent.to_string(), EXAMPLE);
        let child = TraceContext::child_of(Some(&parent));
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_eq!(child.flags, 1);
        let root = TraceContext::child_of(None);
        assert_ne!(root.trace_id, parent.trace_id);
        assert!(TraceContext::parse(&root.to_string()).is_some());
    }

    #[test]
    fn invalid_headers_start_a_new_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }
}
