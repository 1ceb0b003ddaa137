// Manual check that the official OpenAI Node SDK (npm openai@4) works against `awq serve`:
//   build/release/awq serve MODEL --port 8080 --api-key k1 &
//   npm install openai@4 && node bench/serve_sdk_check.mjs 8080
// Prints models, a completion, a chat completion, both streamed, and three SDK error classes.
import OpenAI from "openai";
const port = process.argv[2];
const c = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "k1" });
const models = await c.models.list();
const id = models.data[0].id; console.log("models:", id);
const comp = await c.completions.create({ model: id, prompt: "The history of", max_tokens: 8, temperature: 0 });
console.log("completion:", JSON.stringify(comp.choices[0].text), comp.choices[0].finish_reason, JSON.stringify(comp.usage));
const chat = await c.chat.completions.create({ model: id, messages: [{ role: "user", content: "Hi" }], max_tokens: 8, temperature: 0 });
console.log("chat:", JSON.stringify(chat.choices[0].message));
const stream = await c.chat.completions.create({ model: id, messages: [{ role: "user", content: "Hi" }], max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
let text = ""; let fin = null; let usage = null;
for await (const ch of stream) { if (ch.choices[0]) { text += ch.choices[0].delta.content ?? ""; fin = ch.choices[0].finish_reason ?? fin; } if (ch.usage) usage = ch.usage; }
console.log("stream:", JSON.stringify(text), fin, JSON.stringify(usage), text === chat.choices[0].message.content ? "same as non-stream" : "DIFFERENT");
const cs = await c.completions.create({ model: id, prompt: "The history of", max_tokens: 8, temperature: 0, stream: true });
let t2 = ""; for await (const ch of cs) t2 += ch.choices[0]?.text ?? ""; console.log("completion stream:", JSON.stringify(t2), t2 === comp.choices[0].text ? "same" : "DIFFERENT");
try { await c.chat.completions.create({ model: "gpt-4", messages: [{ role: "user", content: "Hi" }] }); } catch (e) { console.log("unknown model:", e.constructor.name, e.status, e.message); }
try { await new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "bad", maxRetries: 0 }).models.list(); } catch (e) { console.log("bad key:", e.constructor.name, e.status, e.message); }
try { await c.completions.create({ model: id, prompt: "x", max_tokens: "many" }); } catch (e) { console.log("bad type:", e.constructor.name, e.status, e.message); }
