//! How parties reach each other. A [`Transport`] carries [`Envelope`]s between named parties;
//! [`LocalTransport`] does it in process (parties as threads), and mutual-TLS HTTP will be
//! another implementation of the same trait. Every message is sized and logged — kind, sender,
//! receiver, bytes, never its values — and [`Capturing`] keeps a copy of the bytes of each for
//! tests that check what crosses the wire.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::FederationError;
use crate::message::Message;

/// Bytes one message may take on the wire, at most.
pub const MESSAGE_BYTES_MAX: usize = 1 << 30;

/// A message with its routing: the job it belongs to, who sent it to whom, and its number in
/// the sender's stream to that receiver (so a replayed or reordered message is caught).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The job's id.
    pub job: String,
    /// The sending party.
    pub from: String,
    /// The receiving party.
    pub to: String,
    /// 1 for the first message from `from` to `to` in this job, then 2, 3, …
    pub seq: u64,
    /// What is said.
    pub message: Message,
}

impl Envelope {
    /// The envelope's wire encoding (postcard), whose length is what gets logged.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FederationError> {
        let bytes = postcard::to_allocvec(self).map_err(|e| FederationError::Wire(e.to_string()))?;
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(FederationError::Wire(format!(
                "{} message of {} bytes; at most {MESSAGE_BYTES_MAX}",
                self.message.kind(),
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

/// Carries envelopes between parties.
pub trait Transport: Send + Sync {
    /// Delivers `envelope` to `envelope.to`, returning its size on the wire in bytes.
    fn send(&self, envelope: Envelope) -> Result<usize, FederationError>;
    /// The next envelope from `from` to `to`, waiting at most `timeout`.
    fn recv(&self, to: &str, from: &str, timeout: Duration) -> Result<Envelope, FederationError>;
}

type Link = (Sender<Envelope>, Mutex<Receiver<Envelope>>);

/// Parties in one process: one channel per ordered pair of parties.
pub struct LocalTransport {
    links: HashMap<(String, String), Link>,
}

impl LocalTransport {
    /// A transport joining every pair of `parties`.
    pub fn new(parties: &[&str]) -> Self {
        let mut links = HashMap::new();
        for from in parties {
            for to in parties {
                if from != to {
                    let (tx, rx) = mpsc::channel();
                    links.insert((from.to_string(), to.to_string()), (tx, Mutex::new(rx)));
                }
            }
        }
        Self { links }
    }

    fn link(&self, from: &str, to: &str) -> Result<&Link, FederationError> {
        self.links
            .get(&(from.to_string(), to.to_string()))
            .ok_or_else(|| FederationError::Transport(format!("no link from {from:?} to {to:?}")))
    }
}

impl Transport for LocalTransport {
    fn send(&self, envelope: Envelope) -> Result<usize, FederationError> {
        let bytes = envelope.to_bytes()?.len();
        tracing::debug!(kind = envelope.message.kind(), from = %envelope.from, to = %envelope.to, bytes, "federation message");
        let (tx, _) = self.link(&envelope.from, &envelope.to)?;
        let to = envelope.to.clone();
        tx.send(envelope).map_err(|_| FederationError::Transport(format!("party {to:?} has left")))?;
        Ok(bytes)
    }

    fn recv(&self, to: &str, from: &str, timeout: Duration) -> Result<Envelope, FederationError> {
        let (_, rx) = self.link(from, to)?;
        match rx.lock().recv_timeout(timeout) {
            Ok(envelope) => Ok(envelope),
            Err(RecvTimeoutError::Timeout) => Err(FederationError::Timeout { party: from.to_string(), secs: timeout.as_secs_f64() }),
            Err(RecvTimeoutError::Disconnected) => Err(FederationError::Transport(format!("party {from:?} has left"))),
        }
    }
}

/// One message as it crossed the wire.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The message's kind.
    pub kind: &'static str,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Its wire encoding.
    pub bytes: Vec<u8>,
}

/// Wraps a transport and keeps the wire bytes of every message sent through it.
pub struct Capturing<T> {
    inner: T,
    captured: Mutex<Vec<Captured>>,
}

impl<T: Transport> Capturing<T> {
    /// Captures what `inner` carries.
    pub fn new(inner: T) -> Self {
        Self { inner, captured: Mutex::new(Vec::new()) }
    }

    /// Everything sent so far, in order.
    pub fn captured(&self) -> Vec<Captured> {
        self.captured.lock().clone()
    }

    /// Messages and bytes sent so far, by kind, sorted by kind.
    pub fn totals_by_kind(&self) -> Vec<(&'static str, usize, usize)> {
        let mut totals: Vec<(&'static str, usize, usize)> = Vec::new();
        for c in self.captured.lock().iter() {
            match totals.iter_mut().find(|t| t.0 == c.kind) {
                Some(t) => {
                    t.1 += 1;
                    t.2 += c.bytes.len();
                }
                None => totals.push((c.kind, 1, c.bytes.len())),
            }
        }
        totals.sort();
        totals
    }
}

impl<T: Transport> Transport for Capturing<T> {
    fn send(&self, envelope: Envelope) -> Result<usize, FederationError> {
        let record =
            Captured { kind: envelope.message.kind(), from: envelope.from.clone(), to: envelope.to.clone(), bytes: envelope.to_bytes()? };
        let sent = self.inner.send(envelope)?;
        self.captured.lock().push(record);
        Ok(sent)
    }

    fn recv(&self, to: &str, from: &str, timeout: Duration) -> Result<Envelope, FederationError> {
        self.inner.recv(to, from, timeout)
    }
}

/// One party's end of a job: sends numbered envelopes and checks the numbers of those it gets.
pub struct Endpoint<'a> {
    transport: &'a dyn Transport,
    job: String,
    me: String,
    timeout: Duration,
    sent: Mutex<HashMap<String, u64>>,
    received: Mutex<HashMap<String, u64>>,
}

impl<'a> Endpoint<'a> {
    /// `me`'s end of job `job`; a receive waits at most `timeout` for the other party.
    pub fn new(transport: &'a dyn Transport, job: &str, me: &str, timeout: Duration) -> Self {
        Self { transport, job: job.to_string(), me: me.to_string(), timeout, sent: Mutex::default(), received: Mutex::default() }
    }

    /// This party's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Sends `message` to `to`; returns its size in bytes.
    pub fn send(&self, to: &str, message: Message) -> Result<usize, FederationError> {
        let seq = {
            let mut sent = self.sent.lock();
            let seq = sent.entry(to.to_string()).or_insert(0);
            *seq += 1;
            *seq
        };
        self.transport.send(Envelope { job: self.job.clone(), from: self.me.clone(), to: to.to_string(), seq, message })
    }

    /// The next message from `from`; an envelope of another job, or out of sequence, is an
    /// error, and so is an `Abort` (it carries the other party's reason).
    pub fn recv(&self, from: &str) -> Result<Message, FederationError> {
        let envelope = self.transport.recv(&self.me, from, self.timeout)?;
        let expected = {
            let mut received = self.received.lock();
            let last = received.entry(from.to_string()).or_insert(0);
            *last += 1;
            *last
        };
        if envelope.job != self.job || envelope.from != from || envelope.to != self.me {
            return Err(FederationError::Protocol(format!(
                "{} got a message of job {:?} from {:?} to {:?}; expected job {:?} from {from:?}",
                self.me, envelope.job, envelope.from, envelope.to, self.job
            )));
        }
        if envelope.seq != expected {
            return Err(FederationError::Protocol(format!(
                "message {} from {from:?} arrived where {expected} was due: replayed or out of order",
                envelope.seq
            )));
        }
        if let Message::Abort { reason } = envelope.message {
            return Err(FederationError::Aborted { party: from.to_string(), reason });
        }
        Ok(envelope.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_party_is_a_timeout_naming_it() {
        let transport = LocalTransport::new(&["a", "b"]);
        let a = Endpoint::new(&transport, "j", "a", Duration::from_millis(20));
        let err = a.recv("b").unwrap_err().to_string();
        assert!(err.contains("\"b\"") && err.contains("did not answer"), "{err}");
    }

    #[test]
    fn a_replayed_message_is_refused() {
        let transport = LocalTransport::new(&["a", "b"]);
        let a = Endpoint::new(&transport, "j", "a", Duration::from_secs(1));
        let b = Endpoint::new(&transport, "j", "b", Duration::from_secs(1));
        a.send("b", Message::Done).unwrap();
        let replay = Envelope { job: "j".into(), from: "a".into(), to: "b".into(), seq: 1, message: Message::Done };
        transport.send(replay).unwrap();
        assert!(matches!(b.recv("a"), Ok(Message::Done)));
        let err = b.recv("a").unwrap_err().to_string();
        assert!(err.contains("replayed"), "{err}");
    }

    #[test]
    fn a_message_of_another_job_is_refused() {
        let transport = LocalTransport::new(&["a", "b"]);
        let b = Endpoint::new(&transport, "j", "b", Duration::from_secs(1));
        transport.send(Envelope { job: "other".into(), from: "a".into(), to: "b".into(), seq: 1, message: Message::Done }).unwrap();
        assert!(b.recv("a").unwrap_err().to_string().contains("job \"other\""));
    }

    #[test]
    fn capturing_counts_bytes_by_kind() {
        let transport = Capturing::new(LocalTransport::new(&["a", "b"]));
        let a = Endpoint::new(&transport, "j", "a", Duration::from_secs(1));
        let bytes = a.send("b", Message::Done).unwrap();
        a.send("b", Message::Done).unwrap();
        assert_eq!(transport.totals_by_kind(), vec![("done", 2, 2 * bytes)]);
    }
}
