//! RabbitMQ: connection, topology, publishing.

pub mod publisher;
pub mod topology;

use anyhow::Context as _;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};

use crate::config::{redact_url, Settings};

/// Connects to the broker at `url`, naming the connection for the
/// management UI.
pub async fn connect(url: &str, name: &str) -> Result<Connection, lapin::Error> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, properties).await
}

/// For the commands: a connection named `name` to the broker of `settings`,
/// and a channel on which the topology is declared (so the command works on
/// a fresh broker, and fails clearly on one declared otherwise).
pub async fn connect_declared(
    settings: &Settings,
    name: &str,
) -> anyhow::Result<(Connection, Channel)> {
    let connection = connect(&settings.amqp.url, name).await.with_context(|| {
        format!(
            "cannot connect to RabbitMQ at {}",
            redact_url(&settings.amqp.url)
        )
    })?;
    let channel = connection.create_channel().await?;
    topology::declare(&channel, &settings.topology, settings.amqp.delivery_limit).await?;
    Ok((connection, channel))
}

/// The text of header `name`, if it is a string.
pub fn header_text(headers: &FieldTable, name: &str) -> Option<String> {
    match headers.inner().iter().find(|(k, _)| k.as_str() == name)?.1 {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}
