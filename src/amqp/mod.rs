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

/// [`connect`], failing with an error that names the broker (its password
/// hidden): for the worker and the commands, which report it.
pub async fn connect_named(url: &str, name: &str) -> anyhow::Result<Connection> {
    use anyhow::Context as _;
    connect(url, name).await.with_context(|| {
        format!(
            "cannot connect to RabbitMQ at {}",
            crate::config::redact_url(url)
        )
    })
}

/// The text of header `name`, if it is a string.
pub fn header_text(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().iter().find(|(k, _)| k.as_str() == name)?.1 {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}
