//! RabbitMQ: connection, topology, publishing.

pub mod publisher;
pub mod topology;

use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};

/// Connects to the broker at `url`, naming the connection for the
/// management UI.
pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, properties).await
}

/// The text of header `name`, if it is a string.
pub fn header_text(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().iter().find(|(k, _)| k.as_str() == name)?.1 {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}
