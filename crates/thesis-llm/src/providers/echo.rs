//! `thesis-echo`: answers with the last user message, without any network. Tokens are counted
//! as one per four characters, so usage and billing behave as with a real model.

use futures_util::stream;

use super::{Delta, ProviderEvent, ProviderStream};
use crate::emitter::{Finish, Usage};
use crate::items::{Item, Role};
use crate::request::ChatRequest;

pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

pub fn respond(req: &ChatRequest, streaming: bool) -> ProviderStream {
    let last_user = req
        .items
        .iter()
        .rev()
        .find(|i| {
            matches!(
                i,
                Item::Message {
                    role: Role::User,
                    ..
                }
            )
        })
        .map(Item::text)
        .unwrap_or_default();
    let last_output = req.items.iter().rev().find_map(|i| match i {
        Item::FunctionCallOutput { output, .. } => Some(output.clone()),
        _ => None,
    });
    let mut text = match (&last_output, req.items.last()) {
        (Some(out), Some(Item::FunctionCallOutput { .. })) => format!("Tool result: {out}"),
        _ => format!("Echo: {last_user}"),
    };
    let input_text: String = req.instructions.clone().unwrap_or_default()
        + &req
            .items
            .iter()
            .map(Item::text)
            .collect::<Vec<_>>()
            .join("\n");
    let mut finish = Finish::Completed;
    if let Some(max) = req.max_output_tokens
        && estimate_tokens(&text) > max
    {
        text = text.chars().take((max * 4) as usize).collect();
        finish = Finish::MaxTokens;
    }
    let usage = Usage {
        input_tokens: estimate_tokens(&input_text),
        cached_tokens: 0,
        output_tokens: estimate_tokens(&text),
        reasoning_tokens: 0,
    };
    let mut events: Vec<ProviderEvent> = if streaming {
        // word by word, as a model would stream
        text.split_inclusive(' ')
            .map(|w| ProviderEvent::Delta(Delta::Text(w.to_string())))
            .collect()
    } else {
        vec![ProviderEvent::Delta(Delta::Text(text))]
    };
    events.push(ProviderEvent::Delta(Delta::Usage(usage)));
    events.push(ProviderEvent::Done(finish));
    Box::pin(stream::iter(events.into_iter().map(Ok)))
}
