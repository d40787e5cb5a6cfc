use crate::values::ValueError;
use serde::{Deserialize, Serialize};

/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;

/// A provider of the catalogue, with the shape of its keys when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Openai,
    Anthropic,
    Google,
    AzureOpenai,
    Mistral,
    Groq,
    Cohere,
    Deepgram,
    Elevenlabs,
    Twilio,
}

impl Provider {
    pub const ALL: [Self; 10] = [
        Self::Openai,
        Self::Anthropic,
        Self::Google,
        Self::AzureOpenai,
        Self::Mistral,
        Self::Groq,
        Self::Cohere,
        Self::Deepgram,
        Self::Elevenlabs,
        Self::Twilio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Google => "google",
            Self::AzureOpenai => "azure_openai",
            Self::Mistral => "mistral",
            Self::Groq => "groq",
            Self::Cohere => "cohere",
            Self::Deepgram => "deepgram",
            Self::Elevenlabs => "elevenlabs",
            Self::Twilio => "twilio",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                ValueError::new(
                    "unknown_provider",
                    format!("unknown provider; supported: {}", names.join(", ")),
                )
            })
    }

    /// A human description of the expected key shape.
    pub fn shape(self) -> &'static str {
        match self {
            Self::Openai => "starts with sk-, then 20 or more of A-Z a-z 0-9 _ -",
            Self::Anthropic => "starts with sk-ant-, then 20 or more of A-Z a-z 0-9 _ -",
            Self::Google => "AIza followed by 35 of A-Z a-z 0-9 _ -",
            Self::AzureOpenai => "32 hexadecimal characters",
            Self::Groq => "starts with gsk_, then 20 or more letters and digits",
            Self::Mistral | Self::Cohere | Self::Deepgram | Self::Elevenlabs | Self::Twilio => {
                "16 or more visible characters without spaces"
            }
        }
    }

    fn fits(self, key: &str) -> bool {
        let tail_ok = |prefix: &str, min: usize, extra: &dyn Fn(char) -> bool| {
            key.strip_prefix(prefix).is_some_and(|rest| {
                rest.len() >= min && rest.chars().all(|c| c.is_ascii_alphanumeric() || extra(c))
            })
        };
        let dash_underscore = |c: char| c == '-' || c == '_';
        match self {
            Self::Openai => !key.starts_with("sk-ant-") && tail_ok("sk-", 20, &dash_underscore),
            Self::Anthropic => tail_ok("sk-ant-", 20, &dash_underscore),
            Self::Google => key.len() == 39 && tail_ok("AIza", 35, &dash_underscore),
            Self::AzureOpenai => key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()),
            Self::Groq => tail_ok("gsk_", 20, &|_| false),
            _ => key.len() >= 16 && key.chars().all(|c| c.is_ascii_graphic()),
        }
    }

    /// Check a key's length and shape; the error never repeats the key.
    pub fn check_key(self, key: &str) -> Result<(), ValueError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(ValueError::new(
                "api_key_too_long",
                format!("a provider key is at most {MAX_KEY_BYTES} bytes"),
            ));
        }
        if self.fits(key) {
            Ok(())
        } else {
            Err(ValueError::new(
                "malformed_api_key",
                format!("a {} key {}", self.as_str(), self.shape()),
            ))
        }
    }
}

/// What lists show of a key: "…" and its last 4 characters.
pub fn key_hint(key: &str) -> String {
    let tail: Vec<char> = key.chars().rev().take(4).collect();
    format!("…{}", tail.into_iter().rev().collect::<String>())
}
