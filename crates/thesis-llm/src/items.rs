//! The canonical conversation: the item kinds of the Responses API that the gateway understands,
//! parsed from and written back to their Responses JSON form.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    System,
    Developer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Developer => "developer",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "system" => Some(Role::System),
            "developer" => Some(Role::Developer),
            _ => None,
        }
    }
}

/// A content part of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// `input_text` or `output_text`.
    Text(String),
    /// `input_image` with a URL (http(s) or data URL).
    Image {
        url: String,
        detail: Option<String>,
    },
    Refusal(String),
    /// Anything else (files, audio): kept as sent.
    Other(Value),
}

/// A conversation item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Message {
        role: Role,
        content: Vec<Part>,
    },
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: String,
    },
    Reasoning {
        summary: Vec<String>,
        /// OpenAI's encrypted reasoning, or Anthropic's thinking signature.
        encrypted_content: Option<String>,
    },
    /// An item kind only the OpenAI Responses upstream understands (kept as sent).
    Other(Value),
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn parse_part(v: &Value, path: &str) -> Result<Part, String> {
    let kind = v.get("type").and_then(|t| t.as_str()).unwrap_or("");
    match kind {
        "input_text" | "output_text" | "text" => Ok(Part::Text(
            v.get("text")
                .and_then(|t| t.as_str())
                .ok_or_else(|| format!("{path}.text: must be a string"))?
                .to_string(),
        )),
        "input_image" => {
            let url = v.get("image_url").and_then(|u| {
                u.as_str()
                    .map(str::to_string)
                    .or_else(|| u.get("url")?.as_str().map(str::to_string))
            });
            match url {
                Some(url) => Ok(Part::Image {
                    url,
                    detail: v.get("detail").and_then(|d| d.as_str()).map(str::to_string),
                }),
                None => Ok(Part::Other(v.clone())),
            }
        }
        "refusal" => Ok(Part::Refusal(
            v.get("refusal")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_string(),
        )),
        "" => Err(format!("{path}.type: is required")),
        _ => Ok(Part::Other(v.clone())),
    }
}

impl Item {
    /// Parses one Responses input item. `path` names it in errors (`input[2]`).
    pub fn from_value(v: &Value, path: &str) -> Result<Item, String> {
        if !v.is_object() {
            return Err(format!("{path}: must be an object"));
        }
        let kind = v.get("type").and_then(|t| t.as_str());
        match kind {
            Some("message") | None => {
                let role = v
                    .get("role")
                    .and_then(|r| r.as_str())
                    .ok_or_else(|| format!("{path}.role: is required"))?;
                let role = Role::parse(role).ok_or_else(|| {
                    format!("{path}.role: must be user, assistant, system or developer")
                })?;
                let content = match v.get("content") {
                    Some(Value::String(s)) => vec![Part::Text(s.clone())],
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .enumerate()
                        .map(|(i, p)| parse_part(p, &format!("{path}.content[{i}]")))
                        .collect::<Result<_, _>>()?,
                    _ => {
                        return Err(format!(
                            "{path}.content: must be a string or a list of parts"
                        ));
                    }
                };
                Ok(Item::Message { role, content })
            }
            Some("function_call") => {
                let field = |name: &str| {
                    v.get(name)
                        .and_then(|x| x.as_str())
                        .map(str::to_string)
                        .ok_or_else(|| format!("{path}.{name}: must be a string"))
                };
                Ok(Item::FunctionCall {
                    call_id: field("call_id")?,
                    name: field("name")?,
                    arguments: field("arguments")?,
                })
            }
            Some("function_call_output") => Ok(Item::FunctionCallOutput {
                call_id: v
                    .get("call_id")
                    .and_then(|x| x.as_str())
                    .ok_or_else(|| format!("{path}.call_id: must be a string"))?
                    .to_string(),
                output: text_of(v.get("output").unwrap_or(&Value::Null)),
            }),
            Some("reasoning") => Ok(Item::Reasoning {
                summary: v
                    .get("summary")
                    .and_then(|s| s.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| {
                                p.get("text").and_then(|t| t.as_str()).map(str::to_string)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                encrypted_content: v
                    .get("encrypted_content")
                    .and_then(|e| e.as_str())
                    .map(str::to_string),
            }),
            Some("item_reference") => Err(format!(
                "{path}: item references are not supported; send the item itself or use previous_response_id"
            )),
            Some(_) => Ok(Item::Other(v.clone())),
        }
    }

    /// The item in Responses JSON form (as stored in sessions and sent to OpenAI upstreams).
    pub fn to_value(&self) -> Value {
        match self {
            Item::Message { role, content } => {
                let text_type = if *role == Role::Assistant {
                    "output_text"
                } else {
                    "input_text"
                };
                let parts: Vec<Value> = content
                    .iter()
                    .map(|p| match p {
                        Part::Text(t) if *role == Role::Assistant => {
                            json!({"type": text_type, "text": t, "annotations": []})
                        }
                        Part::Text(t) => json!({"type": text_type, "text": t}),
                        Part::Image { url, detail } => {
                            json!({"type": "input_image", "image_url": url, "detail": detail.clone().unwrap_or_else(|| "auto".into())})
                        }
                        Part::Refusal(r) => json!({"type": "refusal", "refusal": r}),
                        Part::Other(v) => v.clone(),
                    })
                    .collect();
                json!({"type": "message", "role": role.as_str(), "content": parts})
            }
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                json!({"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments})
            }
            Item::FunctionCallOutput { call_id, output } => {
                json!({"type": "function_call_output", "call_id": call_id, "output": output})
            }
            Item::Reasoning {
                summary,
                encrypted_content,
            } => {
                let mut v = json!({
                    "type": "reasoning",
                    "summary": summary.iter().map(|s| json!({"type": "summary_text", "text": s})).collect::<Vec<_>>(),
                });
                if let Some(e) = encrypted_content {
                    v["encrypted_content"] = json!(e);
                }
                v
            }
            Item::Other(v) => v.clone(),
        }
    }

    /// Plain text of a message (for token estimates and the echo model).
    pub fn text(&self) -> String {
        match self {
            Item::Message { content, .. } => content
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) | Part::Refusal(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(""),
            Item::FunctionCall {
                name, arguments, ..
            } => format!("{name}{arguments}"),
            Item::FunctionCallOutput { output, .. } => output.clone(),
            Item::Reasoning { summary, .. } => summary.join(""),
            Item::Other(v) => v.to_string(),
        }
    }
}

/// Parses the `input` of a request: a string (one user message) or a list of items.
pub fn parse_input(input: &Value) -> Result<Vec<Item>, String> {
    match input {
        Value::String(s) => Ok(vec![Item::Message {
            role: Role::User,
            content: vec![Part::Text(s.clone())],
        }]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| Item::from_value(v, &format!("input[{i}]")))
            .collect(),
        Value::Null => Err("input: is required".into()),
        _ => Err("input: must be a string or a list of items".into()),
    }
}

/// Output items of a stored response, as conversation items for the next turn. Items the
/// gateway cannot replay (other kinds) are kept only for OpenAI upstreams.
pub fn from_output(output: &[Value]) -> Vec<Item> {
    output
        .iter()
        .filter_map(|v| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
                o.remove("status");
            }
            Item::from_value(&v, "output").ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strings_messages_calls() {
        let items = parse_input(&json!([
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "yo"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
        ]))
        .unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[1].text(), "yo");
        assert_eq!(
            Item::from_value(&items[2].to_value(), "x").unwrap(),
            items[2]
        );
        assert!(parse_input(&json!(5)).is_err());
        let err = parse_input(&json!([{"role": "robot", "content": "x"}])).unwrap_err();
        assert!(err.contains("input[0].role"), "{err}");
    }
}
