//! A DNS responder for tests: answers TXT and MX questions for configured names over UDP on
//! 127.0.0.1 (an ephemeral port by default), as an authoritative server of those names would.
//! Messages are decoded and encoded with hickory-proto; nothing here parses wire format by hand.
//!
//! A configured name answers its records of the asked type (none: an empty NOERROR answer, as
//! a name with other records gets); a name not configured answers NXDOMAIN; a message that is
//! not a DNS query answers FORMERR when it has an id, else nothing. Every question is counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// The names a [`DnsEmulator`] answers for and their records.
#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    /// By lower-case name without the trailing dot.
    names: HashMap<String, Records>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

#[derive(Debug, Clone, Default)]
struct Records {
    /// Each record's character-strings.
    txt: Vec<Vec<String>>,
    /// (preference, exchange).
    mx: Vec<(u16, String)>,
}

impl DnsConfig {
    /// No names yet, on an ephemeral port.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(&mut self, name: &str) -> &mut Records {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.entry(key).or_default()
    }

    /// Adds a TXT record of one character-string (at most 255 bytes) at `name`.
    pub fn txt(self, name: &str, text: &str) -> Self {
        self.txt_strings(name, &[text])
    }

    /// Adds a TXT record made of several character-strings (how a long record is split).
    pub fn txt_strings(mut self, name: &str, strings: &[&str]) -> Self {
        let record = strings.iter().map(|s| (*s).to_owned()).collect();
        self.entry(name).txt.push(record);
        self
    }

    /// Adds an MX record at `name`.
    pub fn mx(mut self, name: &str, preference: u16, exchange: &str) -> Self {
        self.entry(name).mx.push((preference, exchange.to_owned()));
        self
    }

    /// Makes `name` exist without TXT or MX records (questions get an empty answer, not NXDOMAIN).
    pub fn name(mut self, name: &str) -> Self {
        self.entry(name);
        self
    }
}

/// A running DNS responder.
pub struct DnsEmulator {
    addr: SocketAddr,
    queries: Arc<AtomicU64>,
    stop: Arc<Notify>,
}

impl DnsEmulator {
    /// Binds 127.0.0.1 and answers until [`DnsEmulator::shutdown`] or drop.
    pub async fn start(config: DnsConfig) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(("127.0.0.1", config.port)).await?;
        let addr = socket.local_addr()?;
        let queries = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(Notify::new());
        let (counted, stopped) = (queries.clone(), stop.clone());
        let names = Arc::new(config.names);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (len, peer) = tokio::select! {
                    _ = stopped.notified() => return,
                    received = socket.recv_from(&mut buf) => match received {
                        Ok(r) => r,
                        Err(e) => {
                            tracing::debug!(error = %e, "DNS emulator receive failed");
                            continue;
                        }
                    },
                };
                if let Some(answer) = respond(&names, &buf[..len], &counted) {
                    let _ = socket.send_to(&answer, peer).await;
                }
            }
        });
        Ok(Self { addr, queries, stop })
    }

    /// Where it listens (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Questions answered so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Stops answering.
    pub fn shutdown(&self) {
        self.stop.notify_one();
    }
}

impl Drop for DnsEmulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The encoded answer to one datagram, or `None` when there is nothing to answer.
fn respond(names: &HashMap<String, Records>, datagram: &[u8], counted: &AtomicU64) -> Option<Vec<u8>> {
    let request = match Message::from_vec(datagram) {
        Ok(m) => m,
        Err(_) => {
            // An id is the first two bytes; without them there is no one to answer.
            let id = u16::from_be_bytes([*datagram.first()?, *datagram.get(1)?]);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .ok();
        }
    };
    let id = request.metadata.id;
    if request.metadata.message_type != MessageType::Query || request.metadata.op_code != OpCode::Query {
        return Message::error_msg(id, request.metadata.op_code, ResponseCode::NotImp)
            .to_vec()
            .ok();
    }
    let mut response = Message::response(id, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    for query in &request.queries {
        counted.fetch_add(1, Ordering::Relaxed);
        response.add_query(query.clone());
        let key = query.name().to_utf8().trim_end_matches('.').to_ascii_lowercase();
        let Some(records) = names.get(&key) else {
            response.metadata.response_code = ResponseCode::NXDomain;
            continue;
        };
        let owner: Name = query.name().clone();
        match query.query_type() {
            RecordType::TXT => {
                for strings in &records.txt {
                    let rdata = RData::TXT(TXT::new(strings.clone()));
                    response.add_answer(Record::from_rdata(owner.clone(), 300, rdata));
                }
            }
            RecordType::MX => {
                for (preference, exchange) in &records.mx {
                    let Ok(exchange) = Name::from_ascii(format!("{}.", exchange.trim_end_matches('.')))
                    else {
                        continue;
                    };
                    let rdata = RData::MX(MX::new(*preference, exchange));
                    response.add_answer(Record::from_rdata(owner.clone(), 300, rdata));
                }
            }
            _ => {}
        }
    }
    response.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn ask(names: &HashMap<String, Records>, name: &str, kind: RecordType) -> Message {
        let mut q = Message::query();
        q.metadata.id = 7;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        let counted = AtomicU64::new(0);
        let bytes = respond(names, &q.to_vec().unwrap(), &counted).unwrap();
        assert_eq!(counted.load(Ordering::Relaxed), 1);
        Message::from_vec(&bytes).unwrap()
    }

    #[test]
    fn answers_txt_and_mx_for_configured_names_and_nxdomain_for_others() {
        let config = DnsConfig::new()
            .txt("Acme.test", "acme-mail-verification=1f2e")
            .txt_strings("acme.test", &["v=spf1 ", "-all"])
            .mx("acme.test", 10, "mx1.acme-mail.test.")
            .name("bare.test");
        let names = config.names;

        let txt = ask(&names, "acme.test.", RecordType::TXT);
        assert_eq!(
            (txt.metadata.id, txt.metadata.response_code),
            (7, ResponseCode::NoError)
        );
        let texts: Vec<Vec<u8>> = txt
            .answers
            .iter()
            .map(|r| match &r.data {
                RData::TXT(t) => t.txt_data.iter().flat_map(|s| s.iter().copied()).collect(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            [b"acme-mail-verification=1f2e".to_vec(), b"v=spf1 -all".to_vec()]
        );

        let mx = ask(&names, "ACME.test.", RecordType::MX);
        match &mx.answers[0].data {
            RData::MX(m) => assert_eq!(
                (m.preference, m.exchange.to_utf8()),
                (10, "mx1.acme-mail.test.".into())
            ),
            other => panic!("{other:?}"),
        }

        let none = ask(&names, "bare.test.", RecordType::MX);
        assert_eq!(
            (none.metadata.response_code, none.answers.len()),
            (ResponseCode::NoError, 0)
        );
        let missing = ask(&names, "nobody.test.", RecordType::TXT);
        assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        let counted = AtomicU64::new(0);
        assert_eq!(respond(&HashMap::new(), &[1], &counted), None);
        let answer = respond(&HashMap::new(), &[0, 9, 0xff], &counted).unwrap();
        let m = Message::from_vec(&answer).unwrap();
        assert_eq!(
            (m.metadata.id, m.metadata.response_code),
            (9, ResponseCode::FormErr)
        );
    }
}
