// The official Node SDKs (openai, @anthropic-ai/sdk) through the proxy: chat completions, the
// Responses API and Anthropic messages, streamed and not. Prints one JSON line per call:
// {call, id (x-cuewatch-request-id), text}. Usage: node node_client.mjs PROXY_URL
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const base = process.argv[2];
const key = process.env.API_KEY || "sk-node";
const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0 });
const ask = [{ role: "user", content: "Tell me about tea." }];

function out(call, response, text) {
  console.log(JSON.stringify({ call, id: response.headers.get("x-cuewatch-request-id"), text }));
}

{
  const { data, response } = await openai.chat.completions.create({ model: "gpt-sim", messages: ask }).withResponse();
  out("chat", response, data.choices[0].message.content);
}
{
  const { data, response } = await openai.chat.completions
    .create({ model: "gpt-sim", messages: ask, stream: true })
    .withResponse();
  let text = "";
  for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? "";
  out("chat-stream", response, text);
}
{
  const { data, response } = await openai.responses
    .create({ model: "gpt-sim", instructions: "Be brief.", input: "Tell me about tea." })
    .withResponse();
  out("responses", response, data.output_text);
}
{
  const { data, response } = await openai.responses
    .create({ model: "gpt-sim", input: "Tell me about tea.", stream: true })
    .withResponse();
  let text = "";
  for await (const event of data) if (event.type === "response.output_text.delta") text += event.delta;
  out("responses-stream", response, text);
}
{
  const { data, response } = await anthropic.messages
    .create({ model: "claude-sim", max_tokens: 200, messages: ask })
    .withResponse();
  out("messages", response, data.content.filter((b) => b.type === "text").map((b) => b.text).join(""));
}
{
  const { data, response } = await anthropic.messages
    .create({ model: "claude-sim", max_tokens: 200, messages: ask, stream: true })
    .withResponse();
  let text = "";
  for await (const event of data)
    if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text;
  out("messages-stream", response, text);
}
