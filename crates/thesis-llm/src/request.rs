//! The `POST /v1/responses` request: parsed from JSON with errors naming the parameter.

use serde_json::{Map, Value};

use crate::items::{Item, parse_input};

/// A request error: a message and the parameter it concerns (OpenAI's `param`).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    pub message: String,
    pub param: Option<String>,
}

impl RequestError {
    fn new(param: &str, message: impl Into<String>) -> Self {
        RequestError {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }
}

/// A function tool.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTool {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Value,
    pub strict: Option<bool>,
}

/// A parsed request, before the gateway adds context.
#[derive(Debug, Clone)]
pub struct ResponsesRequest {
    pub model: String,
    pub instructions: Option<String>,
    pub input: Vec<Item>,
    /// Tools as sent (Responses form); `function_tools` are the function ones.
    pub tools: Vec<Value>,
    pub function_tools: Vec<FunctionTool>,
    pub tool_choice: Option<Value>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_output_tokens: Option<u64>,
    pub truncation: Truncation,
    pub stream: bool,
    pub reasoning: Option<Value>,
    pub include: Vec<String>,
    pub metadata: Option<Map<String, Value>>,
    pub parallel_tool_calls: Option<bool>,
    pub previous_response_id: Option<String>,
    pub store: bool,
    pub session_id: Option<String>,
    pub organization_id: Option<String>,
    /// Other fields (such as `text`), passed to OpenAI Responses upstreams as sent.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    Auto,
    Disabled,
}

impl Truncation {
    pub fn as_str(self) -> &'static str {
        match self {
            Truncation::Auto => "auto",
            Truncation::Disabled => "disabled",
        }
    }
}

/// What a provider is asked to do: the whole context, with the upstream's model name.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub upstream_model: String,
    pub instructions: Option<String>,
    pub items: Vec<Item>,
    pub tools: Vec<Value>,
    pub function_tools: Vec<FunctionTool>,
    pub tool_choice: Option<Value>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_output_tokens: Option<u64>,
    pub reasoning: Option<Value>,
    pub include: Vec<String>,
    pub parallel_tool_calls: Option<bool>,
    pub extra: Map<String, Value>,
}

const KNOWN: &[&str] = &[
    "model",
    "instructions",
    "input",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "max_output_tokens",
    "truncation",
    "stream",
    "reasoning",
    "include",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "store",
    "sessionId",
    "organizationId",
    "stream_options",
    "user",
];

fn opt_f64(
    body: &Map<String, Value>,
    name: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, RequestError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(Some(x)),
            _ => Err(RequestError::new(
                name,
                format!("{name} must be a number from {min} to {max}"),
            )),
        },
    }
}

fn opt_str(body: &Map<String, Value>, name: &str) -> Result<Option<String>, RequestError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(RequestError::new(name, format!("{name} must be a string"))),
    }
}

fn opt_bool(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, RequestError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(RequestError::new(name, format!("{name} must be a boolean"))),
    }
}

fn parse_tools(body: &Map<String, Value>) -> Result<(Vec<Value>, Vec<FunctionTool>), RequestError> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => return Ok((vec![], vec![])),
        Some(Value::Array(t)) => t.clone(),
        Some(_) => return Err(RequestError::new("tools", "tools must be a list")),
    };
    let mut functions = vec![];
    for (i, t) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        let kind = t.get("type").and_then(|k| k.as_str());
        match kind {
            Some("function") => {
                // Responses form {type, name, parameters}; Chat form {type, function: {...}} accepted too
                let f = t.get("function").unwrap_or(t);
                let name = f
                    .get("name")
                    .and_then(|n| n.as_str())
                    .filter(|n| !n.is_empty() && n.len() <= 128)
                    .ok_or_else(|| {
                        RequestError::new(
                            &format!("{param}.name"),
                            "a function tool needs a name (1 to 128 characters)",
                        )
                    })?;
                let parameters = f
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
                if !parameters.is_object() {
                    return Err(RequestError::new(
                        &format!("{param}.parameters"),
                        "parameters must be a JSON schema object",
                    ));
                }
                functions.push(FunctionTool {
                    name: name.to_string(),
                    description: f
                        .get("description")
                        .and_then(|d| d.as_str())
                        .map(str::to_string),
                    parameters,
                    strict: f.get("strict").and_then(|s| s.as_bool()),
                });
            }
            Some(_) => {}
            None => {
                return Err(RequestError::new(
                    &format!("{param}.type"),
                    "every tool needs a type",
                ));
            }
        }
    }
    Ok((tools, functions))
}

impl ResponsesRequest {
    /// Parses a request body.
    pub fn parse(body: &Value) -> Result<ResponsesRequest, RequestError> {
        let body = body.as_object().ok_or(RequestError {
            message: "the request body must be a JSON object".into(),
            param: None,
        })?;
        let model = match body.get("model") {
            Some(Value::String(m)) if !m.is_empty() => m.clone(),
            _ => {
                return Err(RequestError::new(
                    "model",
                    "model is required (a model name)",
                ));
            }
        };
        let input = parse_input(body.get("input").unwrap_or(&Value::Null)).map_err(|m| {
            let param = m.split(':').next().unwrap_or("input").to_string();
            RequestError {
                message: m,
                param: Some(param),
            }
        })?;
        let (tools, function_tools) = parse_tools(body)?;
        let tool_choice = match body.get("tool_choice") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {
                Some(Value::String(s.clone()))
            }
            Some(v @ Value::Object(o)) if o.get("type").is_some() => {
                if o.get("type").and_then(|t| t.as_str()) == Some("function") {
                    let name = o.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                    if !function_tools.iter().any(|t| t.name == name) {
                        return Err(RequestError::new(
                            "tool_choice",
                            format!("tool_choice names `{name}`, which is not among the tools"),
                        ));
                    }
                }
                Some(v.clone())
            }
            Some(_) => {
                return Err(RequestError::new(
                    "tool_choice",
                    "tool_choice must be auto, none, required or {\"type\": \"function\", \"name\": ...}",
                ));
            }
        };
        let max_output_tokens = match body.get("max_output_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Some(n),
                _ => {
                    return Err(RequestError::new(
                        "max_output_tokens",
                        "max_output_tokens must be a whole number of at least 1",
                    ));
                }
            },
        };
        let truncation = match opt_str(body, "truncation")?.as_deref() {
            None | Some("disabled") => Truncation::Disabled,
            Some("auto") => Truncation::Auto,
            Some(_) => {
                return Err(RequestError::new(
                    "truncation",
                    "truncation must be auto or disabled",
                ));
            }
        };
        let reasoning = match body.get("reasoning") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(o)) => {
                if let Some(e) = o.get("effort")
                    && !e.is_null()
                    && !matches!(
                        e.as_str(),
                        Some("none" | "minimal" | "low" | "medium" | "high" | "xhigh")
                    )
                {
                    return Err(RequestError::new(
                        "reasoning.effort",
                        "reasoning.effort must be minimal, low, medium or high",
                    ));
                }
                Some(v.clone())
            }
            Some(_) => {
                return Err(RequestError::new(
                    "reasoning",
                    "reasoning must be an object",
                ));
            }
        };
        let include = match body.get("include") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| RequestError::new("include", "include must be a list of strings"))?,
            Some(_) => {
                return Err(RequestError::new(
                    "include",
                    "include must be a list of strings",
                ));
            }
        };
        let metadata = match body.get("metadata") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                if m.len() > 16 {
                    return Err(RequestError::new(
                        "metadata",
                        "metadata may have at most 16 keys",
                    ));
                }
                if m.iter().any(|(k, v)| {
                    k.len() > 64 || !v.is_string() || v.as_str().is_some_and(|s| s.len() > 512)
                }) {
                    return Err(RequestError::new(
                        "metadata",
                        "metadata values must be strings of at most 512 characters, keys at most 64",
                    ));
                }
                Some(m.clone())
            }
            Some(_) => return Err(RequestError::new("metadata", "metadata must be an object")),
        };
        let session_id = opt_str(body, "sessionId")?;
        if let Some(s) = &session_id
            && (s.is_empty() || s.len() > 128)
        {
            return Err(RequestError::new(
                "sessionId",
                "sessionId must be 1 to 128 characters",
            ));
        }
        let extra = body
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(ResponsesRequest {
            model,
            instructions: opt_str(body, "instructions")?,
            input,
            tools,
            function_tools,
            tool_choice,
            temperature: opt_f64(body, "temperature", 0.0, 2.0)?,
            top_p: opt_f64(body, "top_p", 0.0, 1.0)?,
            max_output_tokens,
            truncation,
            stream: opt_bool(body, "stream")?.unwrap_or(false),
            reasoning,
            include,
            metadata,
            parallel_tool_calls: opt_bool(body, "parallel_tool_calls")?,
            previous_response_id: opt_str(body, "previous_response_id")?,
            store: opt_bool(body, "store")?.unwrap_or(true),
            session_id,
            organization_id: opt_str(body, "organizationId")?,
            extra,
        })
    }

    /// The provider request for `context` (earlier turns) followed by this request's input.
    pub fn to_chat(&self, upstream_model: &str, context: Vec<Item>) -> ChatRequest {
        let mut items = context;
        items.extend(self.input.iter().cloned());
        ChatRequest {
            upstream_model: upstream_model.to_string(),
            instructions: self.instructions.clone(),
            items,
            tools: self.tools.clone(),
            function_tools: self.function_tools.clone(),
            tool_choice: self.tool_choice.clone(),
            temperature: self.temperature,
            top_p: self.top_p,
            max_output_tokens: self.max_output_tokens,
            reasoning: self.reasoning.clone(),
            include: self.include.clone(),
            parallel_tool_calls: self.parallel_tool_calls,
            extra: self.extra.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_names_bad_params() {
        let r = ResponsesRequest::parse(&json!({
            "model": "m", "input": "hi", "stream": true, "temperature": 0.5,
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "sessionId": "s1", "text": {"format": {"type": "text"}}
        }))
        .unwrap();
        assert!(r.stream);
        assert_eq!(r.function_tools[0].name, "get_weather");
        assert!(r.extra.contains_key("text"));
        for (body, param) in [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m"}), "input"),
            (
                json!({"model": "m", "input": "x", "temperature": 3}),
                "temperature",
            ),
            (
                json!({"model": "m", "input": "x", "truncation": "x"}),
                "truncation",
            ),
            (
                json!({"model": "m", "input": "x", "max_output_tokens": 0}),
                "max_output_tokens",
            ),
            (
                json!({"model": "m", "input": "x", "tool_choice": {"type": "function", "name": "nope"}}),
                "tool_choice",
            ),
            (
                json!({"model": "m", "input": [{"role": "user"}]}),
                "input[0].content",
            ),
        ] {
            let err = ResponsesRequest::parse(&body).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}: {err:?}");
        }
    }
}
