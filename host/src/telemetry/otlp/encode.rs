//! The OTLP protobuf encoding of finished spans, written straight from the
//! SDK's `SpanData` (`opentelemetry/proto/trace/v1/trace.proto`).
//!
//! A span is encoded once, when it ends, into the bytes of a
//! `ScopeSpans.spans` field; a batch is those bytes behind the resource and
//! scope they belong to. The tests decode the result with
//! `opentelemetry-proto` and compare it, field for field, with that crate's
//! own conversion of the same spans.

use bytes::BufMut;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::encoding::{WireType, encoded_len_varint, key_len};
use std::time::SystemTime;

/// Field numbers of the OTLP messages written here.
mod field {
    pub const REQUEST_RESOURCE_SPANS: u32 = 1;

    pub const RESOURCE_SPANS_RESOURCE: u32 = 1;
    pub const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
    pub const RESOURCE_SPANS_SCHEMA_URL: u32 = 3;
    pub const RESOURCE_ATTRIBUTES: u32 = 1;

    pub const SCOPE_SPANS_SCOPE: u32 = 1;
    pub const SCOPE_SPANS_SPANS: u32 = 2;
    pub const SCOPE_SPANS_SCHEMA_URL: u32 = 3;
    pub const SCOPE_NAME: u32 = 1;
    pub const SCOPE_VERSION: u32 = 2;
    pub const SCOPE_ATTRIBUTES: u32 = 3;

    pub const SPAN_TRACE_ID: u32 = 1;
    pub const SPAN_SPAN_ID: u32 = 2;
    pub const SPAN_TRACE_STATE: u32 = 3;
    pub const SPAN_PARENT_SPAN_ID: u32 = 4;
    pub const SPAN_NAME: u32 = 5;
    pub const SPAN_KIND: u32 = 6;
    pub const SPAN_START: u32 = 7;
    pub const SPAN_END: u32 = 8;
    pub const SPAN_ATTRIBUTES: u32 = 9;
    pub const SPAN_DROPPED_ATTRIBUTES: u32 = 10;
    pub const SPAN_EVENTS: u32 = 11;
    pub const SPAN_DROPPED_EVENTS: u32 = 12;
    pub const SPAN_LINKS: u32 = 13;
    pub const SPAN_DROPPED_LINKS: u32 = 14;
    pub const SPAN_STATUS: u32 = 15;
    pub const SPAN_FLAGS: u32 = 16;

    pub const EVENT_TIME: u32 = 1;
    pub const EVENT_NAME: u32 = 2;
    pub const EVENT_ATTRIBUTES: u32 = 3;
    pub const EVENT_DROPPED_ATTRIBUTES: u32 = 4;

    pub const LINK_TRACE_ID: u32 = 1;
    pub const LINK_SPAN_ID: u32 = 2;
    pub const LINK_TRACE_STATE: u32 = 3;
    pub const LINK_ATTRIBUTES: u32 = 4;
    pub const LINK_DROPPED_ATTRIBUTES: u32 = 5;
    pub const LINK_FLAGS: u32 = 6;

    pub const STATUS_MESSAGE: u32 = 2;
    pub const STATUS_CODE: u32 = 3;

    pub const KEY_VALUE_KEY: u32 = 1;
    pub const KEY_VALUE_VALUE: u32 = 2;
    pub const ANY_STRING: u32 = 1;
    pub const ANY_BOOL: u32 = 2;
    pub const ANY_INT: u32 = 3;
    pub const ANY_DOUBLE: u32 = 4;
    pub const ANY_ARRAY: u32 = 5;
    pub const ARRAY_VALUES: u32 = 1;
}

/// `SpanFlags`: the low byte is the W3C trace flags; these say whether the
/// parent (or linked span) is remote, and that the exporter knows.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// A varint. Most written here (tags, lengths of attributes, kinds, bools)
/// fit in one byte, so that case is a single push: prost's general-purpose
/// `encode_varint` through `BufMut` was a fifth of a span's encoding.
#[inline]
fn encode_varint(value: u64, bytes: &mut Vec<u8>) {
    if value < 0x80 {
        bytes.push(value as u8);
        return;
    }
    let mut rest = value;
    while rest >= 0x80 {
        bytes.push((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    bytes.push(rest as u8);
}

/// A field's key: its number and wire type.
#[inline]
fn encode_key(tag: u32, wire_type: WireType, bytes: &mut Vec<u8>) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), bytes);
}

/// A protobuf writer. A nested message is written into a scratch buffer and
/// then copied behind its length: the messages inside a span are tens of
/// bytes and a span a few hundred, so the copies cost less than measuring
/// every message twice. A span itself is copied behind its length once, as
/// it is queued ([`ScopeSpans::push_span`]), and a batch's envelope is
/// written from worked-out lengths ([`encode_request`]).
#[derive(Default)]
struct Message {
    bytes: Vec<u8>,
}

impl Message {
    fn string(&mut self, tag: u32, value: &str) {
        if !value.is_empty() {
            self.bytes_field(tag, value.as_bytes());
        }
    }

    fn bytes_field(&mut self, tag: u32, value: &[u8]) {
        self.length_delimited(tag, value.len());
        self.bytes.put_slice(value);
    }

    /// The key and length of a length-delimited field whose `len` bytes
    /// the caller writes next.
    fn length_delimited(&mut self, tag: u32, len: usize) {
        encode_key(tag, WireType::LengthDelimited, &mut self.bytes);
        encode_varint(len as u64, &mut self.bytes);
    }

    fn varint(&mut self, tag: u32, value: u64) {
        if value != 0 {
            encode_key(tag, WireType::Varint, &mut self.bytes);
            encode_varint(value, &mut self.bytes);
        }
    }

    fn fixed64(&mut self, tag: u32, value: u64) {
        if value != 0 {
            encode_key(tag, WireType::SixtyFourBit, &mut self.bytes);
            self.bytes.put_u64_le(value);
        }
    }

    fn fixed32(&mut self, tag: u32, value: u32) {
        if value != 0 {
            encode_key(tag, WireType::ThirtyTwoBit, &mut self.bytes);
            self.bytes.put_u32_le(value);
        }
    }

    /// A nested message, written by `write` into `scratch` (kept between
    /// calls so its allocation is reused) and appended here; written even
    /// when empty, as an empty message differs from an absent one.
    fn nested(&mut self, tag: u32, scratch: &mut Vec<u8>, write: impl FnOnce(&mut Message)) {
        let mut inner = Message { bytes: std::mem::take(scratch) };
        inner.bytes.clear();
        write(&mut inner);
        self.bytes_field(tag, &inner.bytes);
        *scratch = inner.bytes;
    }

    fn attributes<'a>(&mut self, tag: u32, attributes: impl IntoIterator<Item = (&'a str, &'a Value)>) {
        for (key, value) in attributes {
            self.key_value(tag, key, value);
        }
    }

    /// A `KeyValue`, its lengths worked out first: attributes are most of a
    /// span, and a scratch buffer per attribute would be an allocation each.
    fn key_value(&mut self, tag: u32, key: &str, value: &Value) {
        let scalar = match value {
            Value::Bool(b) => AttributeValue::Bool(*b),
            Value::I64(i) => AttributeValue::Int(*i),
            Value::String(s) => AttributeValue::Str(s.as_str()),
            _ => {
                let mut encoded = Message::default();
                encoded.any_value(value);
                let key_len = if key.is_empty() { 0 } else { field_len(field::KEY_VALUE_KEY, key.len()) };
                self.length_delimited(tag, key_len + field_len(field::KEY_VALUE_VALUE, encoded.bytes.len()));
                self.string(field::KEY_VALUE_KEY, key);
                self.bytes_field(field::KEY_VALUE_VALUE, &encoded.bytes);
                return;
            }
        };
        self.scalar_key_value(tag, key, scalar);
    }

    /// A `KeyValue` whose value is a scalar, its lengths worked out first.
    fn scalar_key_value(&mut self, tag: u32, key: &str, value: AttributeValue<'_>) {
        let value_len = match value {
            AttributeValue::Bool(_) => 2,
            AttributeValue::Int(i) => 1 + encoded_len_varint(i as u64),
            AttributeValue::Str(s) => field_len(field::ANY_STRING, s.len()),
        };
        let key_len = if key.is_empty() { 0 } else { field_len(field::KEY_VALUE_KEY, key.len()) };
        self.length_delimited(tag, key_len + field_len(field::KEY_VALUE_VALUE, value_len));
        self.string(field::KEY_VALUE_KEY, key);
        self.length_delimited(field::KEY_VALUE_VALUE, value_len);
        self.scalar_value(value);
    }

    /// An `AnyValue`'s one field, for a scalar. Proto3 drops zero scalars,
    /// but a oneof member is written even when zero: `false` and `0` are
    /// values.
    fn scalar_value(&mut self, value: AttributeValue<'_>) {
        match value {
            AttributeValue::Bool(b) => {
                encode_key(field::ANY_BOOL, WireType::Varint, &mut self.bytes);
                encode_varint(u64::from(b), &mut self.bytes);
            }
            AttributeValue::Int(i) => {
                encode_key(field::ANY_INT, WireType::Varint, &mut self.bytes);
                encode_varint(i as u64, &mut self.bytes);
            }
            AttributeValue::Str(s) => self.bytes_field(field::ANY_STRING, s.as_bytes()),
        }
    }

    /// An `AnyValue`'s one field, written even when zero (see
    /// [`Message::scalar_value`]).
    fn any_value(&mut self, value: &Value) {
        match value {
            Value::Bool(b) => self.scalar_value(AttributeValue::Bool(*b)),
            Value::I64(i) => self.scalar_value(AttributeValue::Int(*i)),
            Value::F64(f) => {
                encode_key(field::ANY_DOUBLE, WireType::SixtyFourBit, &mut self.bytes);
                self.bytes.put_f64_le(*f);
            }
            Value::String(s) => self.scalar_value(AttributeValue::Str(s.as_str())),
            Value::Array(array) => {
                let mut values = Message::default();
                let mut element = |value: Value| {
                    let mut any = Message::default();
                    any.any_value(&value);
                    values.bytes_field(field::ARRAY_VALUES, &any.bytes);
                };
                match array {
                    Array::Bool(items) => items.iter().for_each(|&b| element(Value::Bool(b))),
                    Array::I64(items) => items.iter().for_each(|&i| element(Value::I64(i))),
                    Array::F64(items) => items.iter().for_each(|&f| element(Value::F64(f))),
                    Array::String(items) => items.iter().for_each(|s| element(Value::String(s.clone()))),
                    // A kind of array this version does not know: sent empty.
                    _ => {}
                }
                self.bytes_field(field::ANY_ARRAY, &values.bytes);
            }
            // A kind of value this version does not know: an empty AnyValue.
            _ => {}
        }
    }
}

fn key_values(attributes: &[KeyValue]) -> impl Iterator<Item = (&str, &Value)> {
    attributes.iter().map(|kv| (kv.key.as_str(), &kv.value))
}

/// An attribute value of the host's own spans, borrowed: written straight
/// into the span's bytes, where `opentelemetry::Value` would own a copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttributeValue<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
}

/// Appends an attribute of a host span to its encoded attributes.
pub fn push_span_attribute(attributes: &mut Vec<u8>, key: &str, value: AttributeValue<'_>) {
    let mut message = Message { bytes: std::mem::take(attributes) };
    message.scalar_key_value(field::SPAN_ATTRIBUTES, key, value);
    *attributes = message.bytes;
}

/// A span the host timed itself (`telemetry::host_spans`): always sampled,
/// with no trace state, events or links, its attributes already encoded by
/// [`push_span_attribute`].
#[derive(Debug)]
pub struct HostSpanFields<'a> {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The parent's id, and whether it is another process's.
    pub parent: Option<([u8; 8], bool)>,
    pub name: &'a str,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: &'a [u8],
    /// The error status's description, when the span failed.
    pub error: Option<&'a str>,
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn flags(trace_flags: TraceFlags, remote: bool) -> u32 {
    u32::from(trace_flags.to_u8()) | FLAG_HAS_IS_REMOTE | if remote { FLAG_IS_REMOTE } else { 0 }
}

/// A `Status` message: `code` 0 (unset), 1 (ok) or 2 (error), with the
/// error's description.
fn status(message: &mut Message, description: &str, code: u64) {
    message.string(field::STATUS_MESSAGE, description);
    message.varint(field::STATUS_CODE, code);
}

fn trace_state(state: &TraceState) -> String {
    if *state == TraceState::NONE { String::new() } else { state.header() }
}

/// The spans of one instrumentation scope, waiting to be sent.
#[derive(Debug)]
pub struct ScopeSpans {
    pub scope: InstrumentationScope,
    /// Each span as a whole `ScopeSpans.spans` field (tag, length, message).
    encoded: Vec<u8>,
}

impl ScopeSpans {
    pub fn new(scope: InstrumentationScope) -> ScopeSpans {
        ScopeSpans { scope, encoded: Vec::new() }
    }

    /// The spans queued so far, as `spans` fields.
    #[cfg(test)]
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Appends a span [`Scratch::encode`] wrote, as a `spans` field.
    pub fn push_span(&mut self, span: &[u8]) {
        self.encoded.reserve(field_len(field::SCOPE_SPANS_SPANS, span.len()));
        encode_key(field::SCOPE_SPANS_SPANS, WireType::LengthDelimited, &mut self.encoded);
        encode_varint(span.len() as u64, &mut self.encoded);
        self.encoded.extend_from_slice(span);
    }
}

/// Buffers an encoder keeps between spans, so that encoding one allocates
/// nothing once they have grown.
#[derive(Debug, Default)]
pub struct Scratch {
    span: Vec<u8>,
    part: Vec<u8>,
}

impl Scratch {
    /// `span` as a `Span` message, valid until the next call; queued with
    /// [`ScopeSpans::push_span`].
    pub fn encode(&mut self, span: &SpanData) -> &[u8] {
        let mut message = Message { bytes: std::mem::take(&mut self.span) };
        message.bytes.clear();
        encode_span(&mut message, span, &mut self.part);
        self.span = message.bytes;
        &self.span
    }

    /// A host span as a `Span` message, valid until the next call: the same
    /// bytes [`Scratch::encode`] writes for the equivalent `SpanData`.
    pub fn encode_host(&mut self, span: &HostSpanFields<'_>) -> &[u8] {
        let mut message = Message { bytes: std::mem::take(&mut self.span) };
        message.bytes.clear();
        message.bytes_field(field::SPAN_TRACE_ID, &span.trace_id);
        message.bytes_field(field::SPAN_SPAN_ID, &span.span_id);
        if let Some((parent, _)) = &span.parent {
            message.bytes_field(field::SPAN_PARENT_SPAN_ID, parent);
        }
        message.string(field::SPAN_NAME, span.name);
        message.varint(field::SPAN_KIND, span_kind(&span.kind));
        message.fixed64(field::SPAN_START, unix_nanos(span.start));
        message.fixed64(field::SPAN_END, unix_nanos(span.end));
        message.bytes.extend_from_slice(span.attributes);
        message.nested(field::SPAN_STATUS, &mut self.part, |s| match span.error {
            None => status(s, "", 0),
            Some(description) => status(s, description, 2),
        });
        let remote = span.parent.is_some_and(|(_, remote)| remote);
        message.fixed32(field::SPAN_FLAGS, flags(TraceFlags::SAMPLED, remote));
        self.span = message.bytes;
        &self.span
    }
}

/// `ExportTraceServiceRequest` for `scopes`, under `resource`: one
/// `ResourceSpans` holding one `ScopeSpans` per scope. The small parts (the
/// resource, each scope, the schema URLs) are written first; the spans, all
/// but a few bytes of a batch, are then copied once, behind lengths worked
/// out from the parts.
pub fn encode_request(resource: &Resource, scopes: &[ScopeSpans]) -> Vec<u8> {
    let mut scratch = Vec::new();
    let mut resource_head = Message::default();
    resource_head.nested(field::RESOURCE_SPANS_RESOURCE, &mut scratch, |message| {
        message.attributes(field::RESOURCE_ATTRIBUTES, resource.iter().map(|(k, v)| (k.as_str(), v)));
    });
    let mut resource_tail = Message::default();
    resource_tail.string(field::RESOURCE_SPANS_SCHEMA_URL, resource.schema_url().unwrap_or_default());
    // Each ScopeSpans: (its scope field, its spans, its schema URL field).
    let parts: Vec<(Message, &[u8], Message)> = scopes
        .iter()
        .map(|batch| {
            let scope = &batch.scope;
            let mut head = Message::default();
            head.nested(field::SCOPE_SPANS_SCOPE, &mut scratch, |message| {
                message.string(field::SCOPE_NAME, scope.name());
                message.string(field::SCOPE_VERSION, scope.version().unwrap_or_default());
                message.attributes(field::SCOPE_ATTRIBUTES, scope.attributes().map(|kv| (kv.key.as_str(), &kv.value)));
            });
            let mut tail = Message::default();
            tail.string(field::SCOPE_SPANS_SCHEMA_URL, scope.schema_url().unwrap_or_default());
            (head, batch.encoded.as_slice(), tail)
        })
        .collect();
    let scope_len = |(head, spans, tail): &(Message, &[u8], Message)| head.bytes.len() + spans.len() + tail.bytes.len();
    let resource_spans_len = resource_head.bytes.len()
        + parts.iter().map(|part| field_len(field::RESOURCE_SPANS_SCOPE_SPANS, scope_len(part))).sum::<usize>()
        + resource_tail.bytes.len();
    let mut request = Message { bytes: Vec::with_capacity(field_len(field::REQUEST_RESOURCE_SPANS, resource_spans_len)) };
    request.length_delimited(field::REQUEST_RESOURCE_SPANS, resource_spans_len);
    request.bytes.put_slice(&resource_head.bytes);
    for part in &parts {
        request.length_delimited(field::RESOURCE_SPANS_SCOPE_SPANS, scope_len(part));
        let (head, spans, tail) = part;
        request.bytes.put_slice(&head.bytes);
        request.bytes.put_slice(spans);
        request.bytes.put_slice(&tail.bytes);
    }
    request.bytes.put_slice(&resource_tail.bytes);
    request.bytes
}

/// Bytes a length-delimited field of `len` content bytes takes.
fn field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn encode_span(message: &mut Message, span: &SpanData, scratch: &mut Vec<u8>) {
    let context = &span.span_context;
    message.bytes_field(field::SPAN_TRACE_ID, &context.trace_id().to_bytes());
    message.bytes_field(field::SPAN_SPAN_ID, &context.span_id().to_bytes());
    message.string(field::SPAN_TRACE_STATE, &trace_state(context.trace_state()));
    if span.parent_span_id != SpanId::INVALID {
        message.bytes_field(field::SPAN_PARENT_SPAN_ID, &span.parent_span_id.to_bytes());
    }
    message.string(field::SPAN_NAME, &span.name);
    message.varint(field::SPAN_KIND, span_kind(&span.span_kind));
    message.fixed64(field::SPAN_START, unix_nanos(span.start_time));
    message.fixed64(field::SPAN_END, unix_nanos(span.end_time));
    message.attributes(field::SPAN_ATTRIBUTES, key_values(&span.attributes));
    message.varint(field::SPAN_DROPPED_ATTRIBUTES, u64::from(span.dropped_attributes_count));
    for event in &span.events.events {
        message.nested(field::SPAN_EVENTS, scratch, |e| {
            e.fixed64(field::EVENT_TIME, unix_nanos(event.timestamp));
            e.string(field::EVENT_NAME, &event.name);
            e.attributes(field::EVENT_ATTRIBUTES, key_values(&event.attributes));
            e.varint(field::EVENT_DROPPED_ATTRIBUTES, u64::from(event.dropped_attributes_count));
        });
    }
    message.varint(field::SPAN_DROPPED_EVENTS, u64::from(span.events.dropped_count));
    for link in &span.links.links {
        message.nested(field::SPAN_LINKS, scratch, |l| {
            l.bytes_field(field::LINK_TRACE_ID, &link.span_context.trace_id().to_bytes());
            l.bytes_field(field::LINK_SPAN_ID, &link.span_context.span_id().to_bytes());
            l.string(field::LINK_TRACE_STATE, &trace_state(link.span_context.trace_state()));
            l.attributes(field::LINK_ATTRIBUTES, key_values(&link.attributes));
            l.varint(field::LINK_DROPPED_ATTRIBUTES, u64::from(link.dropped_attributes_count));
            l.fixed32(field::LINK_FLAGS, flags(link.span_context.trace_flags(), link.span_context.is_remote()));
        });
    }
    message.varint(field::SPAN_DROPPED_LINKS, u64::from(span.links.dropped_count));
    message.nested(field::SPAN_STATUS, scratch, |s| match &span.status {
        Status::Unset => status(s, "", 0),
        Status::Ok => status(s, "", 1),
        Status::Error { description } => status(s, description, 2),
    });
    message.fixed32(field::SPAN_FLAGS, flags(context.trace_flags(), span.parent_span_is_remote));
}

