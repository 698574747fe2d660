//! Server-sent events: a bounded decoder for upstream streams and the encoder for ours.

use bytes::{Bytes, BytesMut};

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental SSE decoder. A single event larger than `max_event` bytes is an error, so a
/// misbehaving upstream cannot grow memory without bound.
pub struct SseDecoder {
    buf: BytesMut,
    event: Option<String>,
    data: String,
    max_event: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("an upstream event exceeds {0} bytes")]
pub struct EventTooLarge(pub usize);

impl SseDecoder {
    pub fn new(max_event: usize) -> Self {
        SseDecoder {
            buf: BytesMut::new(),
            event: None,
            data: String::new(),
            max_event,
        }
    }

    /// Feeds bytes; returns the events completed by them.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, EventTooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line = self.buf.split_to(pos + 1);
            let mut line = &line[..line.len() - 1];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line);
            if line.is_empty() {
                if !self.data.is_empty() || self.event.is_some() {
                    out.push(SseEvent {
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // comment / keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_ref(), ""),
            };
            match field {
                "event" => self.event = Some(value.to_string()),
                "data" => {
                    if !self.data.is_empty() {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                }
                _ => {}
            }
            if self.data.len() > self.max_event {
                return Err(EventTooLarge(self.max_event));
            }
        }
        if self.buf.len() > self.max_event {
            return Err(EventTooLarge(self.max_event));
        }
        Ok(out)
    }
}

/// Encodes one event as OpenAI does: `event: TYPE` then `data: JSON`.
pub fn encode(event: &str, data: &serde_json::Value) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    let mut s = String::with_capacity(json.len() + event.len() + 16);
    s.push_str("event: ");
    s.push_str(event);
    s.push_str("\ndata: ");
    s.push_str(&json);
    s.push_str("\n\n");
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_split_events() {
        let mut d = SseDecoder::new(1024);
        let mut events = d.feed(b"event: a\ndata: {\"x\"").unwrap();
        assert!(events.is_empty());
        events.extend(d.feed(b":1}\n\n: ping\n\ndata: [DONE]\r\n\r\n").unwrap());
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("a".into()),
                    data: "{\"x\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                }
            ]
        );
    }

    #[test]
    fn refuses_huge_events() {
        let mut d = SseDecoder::new(16);
        assert!(d.feed(b"data: 0123456789abcdefghij").is_err());
    }
}
