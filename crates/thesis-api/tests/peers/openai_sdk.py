"""The official `openai` Python SDK against the Thesis gateway.

Run by tests/api/openai_sdk.rs with BASE_URL, API_KEY, LIMITED_KEY (an organization about to
reach its free daily limit), MODEL (a mock upstream model), PRICEY_MODEL and UPSTREAM_429_MODEL.
Prints one `ok NAME` line per scenario; any failure raises and exits non-zero.
"""

import json
import os

import openai

base = os.environ["BASE_URL"]
client = openai.OpenAI(base_url=base, api_key=os.environ["API_KEY"], max_retries=0)
model = os.environ["MODEL"]
TEXT = "Hello from the mock upstream Hello"
TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


def ok(name):
    print("ok", name, flush=True)


# plain create
r = client.responses.create(model=model, input="Say hello", instructions="Be brief.")
assert r.status == "completed", r
assert r.output_text == TEXT, r.output_text
assert r.usage.input_tokens == 20 and r.usage.output_tokens == 6, r.usage
assert r.usage.input_tokens_details.cached_tokens == 5
assert r.model == model
ok("create")

# streamed, through the SDK's own accumulator
with client.responses.stream(model=model, input="Say hello") as stream:
    kinds = [event.type for event in stream]
    final = stream.get_final_response()
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
assert "response.output_text.delta" in kinds
assert final.output_text == TEXT, final.output_text
assert final.usage.output_tokens == 6
ok("stream")

# raw streaming iteration with sequence numbers
events = list(client.responses.create(model=model, input="Say hello", stream=True))
assert [e.sequence_number for e in events] == list(range(len(events)))
assert len({e.response.id for e in events if hasattr(e, "response")}) == 1
ok("stream-raw")

# function calling round trip, whole and streamed
first = client.responses.create(model=model, input="Weather in Paris?", tools=TOOLS)
call = first.output[0]
assert call.type == "function_call" and call.name == "get_weather", first.output
assert json.loads(call.arguments) == {"city": "Paris"}
second = client.responses.create(
    model=model,
    tools=TOOLS,
    input=[
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ],
)
assert second.output_text == "The tool said: sunny", second.output_text
with client.responses.stream(model=model, input="Weather in Paris?", tools=TOOLS) as stream:
    for _ in stream:
        pass
    streamed = stream.get_final_response()
streamed_call = [o for o in streamed.output if o.type == "function_call"][0]
assert json.loads(streamed_call.arguments) == {"city": "Paris"}, streamed_call
ok("function-calling")

# previous_response_id chaining and retrieve
chained = client.responses.create(model=model, input="And then?", previous_response_id=r.id)
assert chained.previous_response_id == r.id
fetched = client.responses.retrieve(chained.id)
assert fetched.id == chained.id and fetched.output_text == chained.output_text
ok("previous-response-id")
ok("retrieve")

# errors the SDK maps to its exception types
try:
    client.responses.retrieve("resp_does_not_exist")
    raise AssertionError("no NotFoundError")
except openai.NotFoundError as e:
    assert e.status_code == 404
ok("not-found")

try:
    openai.OpenAI(base_url=base, api_key="thk_wrong", max_retries=0).responses.create(model=model, input="x")
    raise AssertionError("no AuthenticationError")
except openai.AuthenticationError as e:
    assert e.status_code == 401
ok("authentication")

try:
    client.responses.create(model=os.environ["UPSTREAM_429_MODEL"], input="x")
    raise AssertionError("no RateLimitError")
except openai.RateLimitError as e:
    assert e.status_code == 429
ok("upstream-rate-limit")

limited = openai.OpenAI(base_url=base, api_key=os.environ["LIMITED_KEY"], max_retries=0)
limited.responses.create(model=os.environ["PRICEY_MODEL"], input="x")  # starts under the limit
try:
    limited.responses.create(model=os.environ["PRICEY_MODEL"], input="x")
    raise AssertionError("no RateLimitError")
except openai.RateLimitError as e:
    assert e.status_code == 429
    assert e.response.headers.get("retry-after"), e.response.headers
ok("daily-limit")

deleted = client.responses.delete(chained.id)
try:
    client.responses.retrieve(chained.id)
    raise AssertionError("still there after delete")
except openai.NotFoundError:
    pass
ok("delete")
