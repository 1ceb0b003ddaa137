// Correctness of an exported GGUF in llama.cpp (node-llama-cpp's prebuilt CPU binaries):
// for each `greedy` entry of a reference.json (PyTorch references of ../shared/models/
// tiny-llama-gqa), feed the reference prompt ids, generate greedily as many tokens as the
// reference has, and compare. Also compares llama.cpp's tokenization of the prompt text
// with the reference prompt ids (BOS + ids).
//
// node check.mjs --model FILE.gguf --reference reference.json [--threads 2] [--expect exact|report]
//                [--ids-key greedy_ids]   (rtn_w4g128_greedy_ids: the PyTorch RTN W4 g128 reference,
//                                          for a GGUF exported from `awq quantize --method rtn`)
// Prints one JSON object; exit status 1 with --expect exact when any token differs.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import {readFileSync} from "node:fs";

function args() {
  const a = {threads: 2, expect: "report", "ids-key": "greedy_ids"};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, "")] = argv[i + 1];
  if (!a.model || !a.reference) {
    console.error("usage: node check.mjs --model FILE.gguf --reference reference.json [--threads N] [--expect exact|report]");
    process.exit(2);
  }
  a.threads = Number(a.threads);
  return a;
}

const a = args();
const ref = JSON.parse(readFileSync(a.reference, "utf8"));
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: a.threads});
const model = await llama.loadModel({modelPath: a.model, gpuLayers: 0});
const results = [];
let allExact = true;
for (const g of ref.greedy) {
  const context = await model.createContext({contextSize: 512, threads: a.threads, sequences: 1});
  const seq = context.getSequence();
  const want = g[a["ids-key"]];
  if (!Array.isArray(want)) {
    console.error(`${a.reference}: greedy entry without '${a["ids-key"]}'`);
    process.exit(2);
  }
  const got = [];
  for await (const t of seq.evaluate(g.prompt_ids, {temperature: 0})) {
    got.push(t);
    if (got.length >= want.length) break;
  }
  let prefix = 0;
  while (prefix < want.length && got[prefix] === want[prefix]) prefix++;
  const same = got.filter((t, i) => t === want[i]).length;
  const tok = [model.tokens.bos, ...model.tokenize(g.prompt)];
  const tokenizerMatches = JSON.stringify(tok) === JSON.stringify(g.prompt_ids);
  if (prefix !== want.length) allExact = false;
  results.push({prompt: g.prompt, n: want.length, matching_prefix: prefix, same_positions: same,
                exact: prefix === want.length, tokenizer_matches: tokenizerMatches,
                llamacpp_text: model.detokenize(got), reference_text: g.greedy_text,
                ...(prefix === want.length ? {} : {first_diff: {at: prefix, llamacpp: got[prefix], reference: want[prefix]}})});
  await context.dispose();
}
console.log(JSON.stringify({model: a.model, threads: a.threads, reference_key: a["ids-key"], all_exact: allExact, prompts: results}, null, 2));
await model.dispose();
await llama.dispose();
if (a.expect === "exact" && !allExact) process.exit(1);
