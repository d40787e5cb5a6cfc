//! How events are stored: a stable `event_type` name, an integer
//! `event_version` and a JSON object payload. Old versions are upcast to the
//! current one when read, so a stored event is never rewritten or renamed.

use cqrs_es::DomainEvent;
use serde_json::{Map, Value};

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CodecError {
    #[error("event {event_type} version {version} is not known to this build")]
    UnknownVersion { event_type: String, version: i32 },
    #[error("event {event_type} does not decode: {reason}")]
    Malformed { event_type: String, reason: String },
}

/// Rewrites one stored version of one event type into the next version.
pub struct Upcaster {
    pub event_type: &'static str,
    pub from_version: i32,
    pub upcast: fn(Map<String, Value>) -> Map<String, Value>,
}

/// Implemented by every aggregate's event enum. Enums serialize with
/// `#[serde(tag = "type", content = "data")]` and struct variants only.
pub trait EventCodec: DomainEvent + Sized {
    /// The version this build writes for `event_type`.
    fn current_version(_event_type: &str) -> i32 {
        1
    }

    /// Upcasters for older stored versions, oldest first.
    fn upcasters() -> &'static [Upcaster] {
        &[]
    }

    /// Split the event into its stored parts: type, version, payload object.
    fn encode(&self) -> Result<(String, i32, Value), CodecError> {
        let event_type = self.event_type();
        let malformed = |reason: String| CodecError::Malformed {
            event_type: event_type.clone(),
            reason,
        };
        let value = serde_json::to_value(self).map_err(|e| malformed(e.to_string()))?;
        let Value::Object(mut tagged) = value else {
            return Err(malformed("not an adjacently tagged object".into()));
        };
        let payload = tagged
            .remove("data")
            .unwrap_or_else(|| Value::Object(Map::new()));
        let version = Self::current_version(&event_type);
        Ok((event_type, version, payload))
    }

    /// Rebuild an event from its stored parts, upcasting older versions.
    fn decode(event_type: &str, version: i32, payload: Value) -> Result<Self, CodecError> {
        let malformed = |reason: String| CodecError::Malformed {
            event_type: event_type.to_string(),
            reason,
        };
        let Value::Object(mut data) = payload else {
            return Err(malformed("payload is not an object".into()));
        };
        let mut version = version;
        while let Some(up) = Self::upcasters()
            .iter()
            .find(|u| u.event_type == event_type && u.from_version == version)
        {
            data = (up.upcast)(data);
            version += 1;
        }
        if version != Self::current_version(event_type) {
            return Err(CodecError::UnknownVersion {
                event_type: event_type.to_string(),
                version,
            });
        }
        let mut tagged = Map::new();
        tagged.insert("type".into(), Value::String(event_type.to_string()));
        tagged.insert("data".into(), Value::Object(data));
        serde_json::from_value(Value::Object(tagged)).map_err(|e| malformed(e.to_string()))
    }
}

/// `DomainEvent::event_type` for a tagged enum: the variant's serialized tag.
pub fn variant_name<E: serde::Serialize>(event: &E) -> String {
    match serde_json::to_value(event) {
        Ok(Value::Object(m)) => m
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string(),
        _ => "Unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Sample {
        Renamed { name: String, reason: String },
        Touched {},
    }

    impl DomainEvent for Sample {
        fn event_type(&self) -> String {
            variant_name(self)
        }
        fn event_version(&self) -> String {
            Self::current_version(&self.event_type()).to_string()
        }
    }

    impl EventCodec for Sample {
        fn current_version(event_type: &str) -> i32 {
            if event_type == "Renamed" {
                2
            } else {
                1
            }
        }
        fn upcasters() -> &'static [Upcaster] {
            &[Upcaster {
                event_type: "Renamed",
                from_version: 1,
                upcast: |mut m| {
                    m.insert("reason".into(), Value::String("unknown".into()));
                    m
                },
            }]
        }
    }

    #[test]
    fn an_event_round_trips_through_its_stored_parts() {
        let event = Sample::Touched {};
        let (ty, version, payload) = event.encode().unwrap();
        assert_eq!((ty.as_str(), version), ("Touched", 1));
        assert_eq!(Sample::decode(&ty, version, payload).unwrap(), event);
    }

    #[test]
    fn an_old_version_is_upcast_when_read() {
        let old = serde_json::json!({"name": "Acme"});
        let decoded = Sample::decode("Renamed", 1, old).unwrap();
        assert_eq!(
            decoded,
            Sample::Renamed {
                name: "Acme".into(),
                reason: "unknown".into()
            }
        );
    }

    #[test]
    fn a_version_from_the_future_is_refused() {
        let err = Sample::decode("Touched", 7, serde_json::json!({})).unwrap_err();
        assert!(matches!(err, CodecError::UnknownVersion { version: 7, .. }));
    }
}
